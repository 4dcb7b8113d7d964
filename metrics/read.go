package metrics

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Quantiles are estimated p50/p95/p99 of a histogram, in its unit, and its
// sample count.
type Quantiles struct {
	N             float64
	P50, P95, P99 float64
}

// Families are gathered metric families by name: from a registry in this
// process (Gather) or a child's /metrics page (Scrape).
type Families map[string]*dto.MetricFamily

// Gather reads the metrics of a registry in this process.
func Gather(g prometheus.Gatherer) (Families, error) {
	mfs, err := g.Gather()
	out := Families{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out, err
}

// Scrape reads another process's /metrics page (text exposition format).
func Scrape(ctx context.Context, url string) (Families, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return mfs, nil
}

// Remote is a Gatherer that scrapes another process's /metrics page at
// url, for code that reads registries in this process and children's
// pages alike.
func Remote(url string) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		fams, err := Scrape(context.Background(), url)
		out := make([]*dto.MetricFamily, 0, len(fams))
		for _, mf := range fams {
			out = append(out, mf)
		}
		return out, err
	})
}

// Gauge is the value of an unlabelled gauge.
func (f Families) Gauge(name string) (float64, bool) {
	mf := f[name]
	if mf == nil || len(mf.GetMetric()) == 0 || mf.GetMetric()[0].GetGauge() == nil {
		return 0, false
	}
	return mf.GetMetric()[0].GetGauge().GetValue(), true
}

// Sum adds the values of counter or gauge name over the series whose
// labels include match.
func (f Families) Sum(name string, match map[string]string) float64 {
	var sum float64
	for _, m := range f[name].GetMetric() {
		if hasLabels(m, match) {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return sum
}

// SumBy is Sum per value of label by.
func (f Families) SumBy(name, by string, match map[string]string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range f[name].GetMetric() {
		if hasLabels(m, match) {
			out[labelValue(m, by)] += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return out
}

func hasLabels(m *dto.Metric, match map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := match[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(match)
}

func labelValue(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// HistogramQuantiles estimates the quantiles of histogram name per value
// of label (summing the other labels' series), interpolating linearly
// inside a bucket as PromQL's histogram_quantile does.
func (f Families) HistogramQuantiles(name, label string) map[string]Quantiles {
	buckets := map[string]map[float64]float64{} // label value -> upper bound -> cumulative count
	for _, m := range f[name].GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		key := labelValue(m, label)
		if buckets[key] == nil {
			buckets[key] = map[float64]float64{}
		}
		inf := false // a parsed page lists the +Inf bucket, a registry does not
		for _, b := range h.GetBucket() {
			buckets[key][b.GetUpperBound()] += float64(b.GetCumulativeCount())
			inf = inf || math.IsInf(b.GetUpperBound(), 1)
		}
		if !inf {
			buckets[key][math.Inf(1)] += float64(h.GetSampleCount())
		}
	}
	out := map[string]Quantiles{}
	for key, m := range buckets {
		les := make([]float64, 0, len(m))
		for le := range m {
			les = append(les, le)
		}
		slices.Sort(les)
		total := m[math.Inf(1)]
		if total == 0 {
			continue
		}
		cum := make([]float64, len(les))
		for i, le := range les {
			cum[i] = m[le]
		}
		out[key] = Quantiles{N: total, P50: Quantile(0.50, les, cum), P95: Quantile(0.95, les, cum), P99: Quantile(0.99, les, cum)}
	}
	return out
}

// Quantile is PromQL's histogram_quantile over cumulative counts cum[i]
// of the sorted upper bounds les[i], the last of them +Inf.
func Quantile(phi float64, les, cum []float64) float64 {
	rank := phi * cum[len(cum)-1]
	prevLe, prevCum := 0.0, 0.0
	for i, le := range les {
		c := cum[i]
		if c >= rank {
			if math.IsInf(le, 1) {
				return prevLe // beyond the last bound: the bound is all we know
			}
			if c == prevCum {
				return le
			}
			return prevLe + (le-prevLe)*(rank-prevCum)/(c-prevCum)
		}
		prevLe, prevCum = le, c
	}
	return prevLe
}
