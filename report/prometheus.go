package report

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lighthouse-fs/lighthouse/dashboards"
)

// RangeSeries is one series of a query_range answer.
type RangeSeries struct {
	Labels map[string]string
	Points []Point
}

// ParseMatrix reads a Prometheus /api/v1/query_range answer.
func ParseMatrix(body []byte) ([]RangeSeries, error) {
	var out struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("query_range answer: %w", err)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s: %s", out.ErrorType, out.Error)
	}
	if out.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("query_range answered a %s, want a matrix", out.Data.ResultType)
	}
	var series []RangeSeries
	for _, r := range out.Data.Result {
		s := RangeSeries{Labels: r.Metric}
		for _, v := range r.Values {
			ts, ok := v[0].(float64)
			str, ok2 := v[1].(string)
			if !ok || !ok2 {
				return nil, fmt.Errorf("bad sample %v", v)
			}
			f, err := strconv.ParseFloat(str, 64) // "NaN", "+Inf" included
			if err != nil {
				return nil, fmt.Errorf("bad sample value %q: %w", str, err)
			}
			s.Points = append(s.Points, Point{T: time.UnixMilli(int64(math.Round(ts * 1000))).UTC(), V: f})
		}
		series = append(series, s)
	}
	sort.Slice(series, func(i, j int) bool { return labelKey(series[i].Labels) < labelKey(series[j].Labels) })
	return series, nil
}

func labelKey(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + l[k] + ",")
	}
	return b.String()
}

// Prometheus queries a Prometheus server's HTTP API.
type Prometheus struct {
	URL    string // e.g. http://127.0.0.1:9090
	Client *http.Client
}

// QueryRange runs expr over [start, end] every step.
func (p Prometheus) QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]RangeSeries, error) {
	v := url.Values{
		"query": {expr},
		"start": {strconv.FormatFloat(float64(start.UnixMilli())/1000, 'f', 3, 64)},
		"end":   {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(p.URL, "/")+"/api/v1/query_range?"+v.Encode(), nil)
	if err != nil {
		return nil, err
	}
	c := p.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus at %s: %w", p.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return nil, fmt.Errorf("prometheus at %s: %s: %s", p.URL, resp.Status, strings.TrimSpace(string(body)))
	}
	return ParseMatrix(body)
}

// WithGaps returns points with a NaN inserted wherever two samples are
// more than 1.5 steps apart (Prometheus leaves out the steps where a
// series has no value), so the line breaks there instead of bridging.
func WithGaps(points []Point, step time.Duration) []Point {
	var out []Point
	for i, p := range points {
		if i > 0 && p.T.Sub(points[i-1].T) > step*3/2 {
			out = append(out, Point{T: points[i-1].T.Add(step), V: math.NaN()})
		}
		out = append(out, p)
	}
	return out
}

// Options choose what Build queries.
type Options struct {
	Title      string
	From, To   time.Time
	Step       time.Duration // resolution
	RateWindow string        // the rate() window, a Prometheus duration ("1m")
	Status     []KV
}

// Build queries the report's series from p and assembles the report:
// the divergence ratio with the 0.1% threshold, P50 and P99 latency per
// backend with the 1 s threshold, the candidate's weight, and rollbacks
// marked on each.
func Build(ctx context.Context, p Prometheus, o Options) (Report, error) {
	r := Report{Title: o.Title, Source: p.URL, From: o.From, To: o.To, Generated: time.Now().UTC(), Status: o.Status}
	if r.Title == "" {
		r.Title = "Lighthouse: bazil vs go-fuse"
	}
	get := func(expr string) ([]RangeSeries, error) {
		return p.QueryRange(ctx, expr, o.From, o.To, o.Step)
	}

	rb, err := get("lighthouse_rollout_rollbacks_total")
	if err != nil {
		return r, err
	}
	markers := RollbackMarkers(rb, o.From, o.Step)

	div, err := get(dashboards.DivergenceRatio(o.RateWindow))
	if err != nil {
		return r, err
	}
	divChart := Chart{ID: "divergence-chart", Title: "Divergence ratio", Unit: Percent, From: o.From, To: o.To, Markers: markers,
		Thresholds: []Threshold{{Value: dashboards.DivergenceThreshold, Label: "rollback threshold 0.1%"}}}
	for _, s := range div {
		divChart.Series = append(divChart.Series, Series{Name: "divergent / compared", Points: WithGaps(s.Points, o.Step)})
	}
	if len(div) == 0 {
		r.Notes = append(r.Notes, "divergence ratio: no compared ops in this range (is the proxy scraped?)")
	}

	latChart := Chart{ID: "latency-chart", Title: "Op latency per backend", Unit: Seconds, Log: true, From: o.From, To: o.To, Markers: markers,
		Thresholds: []Threshold{{Value: dashboards.P99Threshold, Label: "P99 rollback threshold 1s"}}}
	for _, q := range []float64{0.5, 0.99} {
		lat, err := get(dashboards.LatencyQuantile(q, "", o.RateWindow))
		if err != nil {
			return r, err
		}
		for _, s := range lat {
			latChart.Series = append(latChart.Series, Series{Name: fmt.Sprintf("%s p%g", s.Labels["backend"], 100*q), Points: WithGaps(s.Points, o.Step)})
		}
	}
	sort.SliceStable(latChart.Series, func(i, j int) bool { return latChart.Series[i].Name < latChart.Series[j].Name })
	if len(latChart.Series) == 0 {
		r.Notes = append(r.Notes, "latency: no bridge ops in this range (are the bridges scraped?)")
	}

	wt, err := get("max(lighthouse_rollout_candidate_weight)")
	if err != nil {
		return r, err
	}
	wChart := Chart{ID: "weight-chart", Title: "Candidate weight", Unit: Percent, YLabel: "% of ops served by go-fuse", Max: 1, From: o.From, To: o.To, Markers: markers}
	for _, s := range wt {
		wChart.Series = append(wChart.Series, Series{Name: "go-fuse weight", Points: WithGaps(s.Points, o.Step)})
	}

	r.Sections = []Section{
		{Heading: "Divergence ratio", Chart: divChart,
			Note: fmt.Sprintf("Compared ops whose results differ between bazil and go-fuse (allowlisted differences and shadow errors excluded), over %s windows. Above the dashed line (0.1%%) the rollout rolls back. Dotted red lines: rollbacks.", o.RateWindow)},
		{Heading: "Latency per backend", Chart: latChart,
			Note: fmt.Sprintf("P50 and P99 of one op through each bridge's FUSE mount, over %s windows, log scale. A go-fuse P99 above the dashed line (1 s) rolls back.", o.RateWindow)},
		{Heading: "Candidate weight", Chart: wChart,
			Note: "The share of ops go-fuse serves: 0 in the shadow phase, 10% canary, 50-90% progressive, 100% full; a rollback sets it to 0."},
	}
	return r, nil
}

// RollbackMarkers turns lighthouse_rollout_rollbacks_total series into one
// marker per rollback: each rise of a counter, and a counter's first
// sample when it appears after the range began (the controller creates a
// trigger's series at its first rollback).
func RollbackMarkers(series []RangeSeries, from time.Time, step time.Duration) []Marker {
	var out []Marker
	for _, s := range series {
		label := "rollback (" + s.Labels["trigger"] + ")"
		for i, p := range s.Points {
			switch {
			case i == 0 && p.T.Sub(from) > 2*step && p.V > 0:
				out = append(out, Marker{T: p.T, Label: label})
			case i > 0 && p.V > s.Points[i-1].V:
				out = append(out, Marker{T: p.T, Label: label})
			case i > 0 && p.V < s.Points[i-1].V && p.V > 0: // a restarted proxy counting again
				out = append(out, Marker{T: p.T, Label: label})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].T.Before(out[j].T) })
	return out
}
