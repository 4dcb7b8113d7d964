// Package report renders Lighthouse's key series as one self-contained
// HTML page with inline SVG charts: no JavaScript, no external assets, so
// it opens anywhere and can be attached to an incident or a review.
//
// The rendering (Chart, SVG, HTML) is pure: series in, markup out. The
// series come from a Prometheus server's query_range API (prometheus.go),
// with the dashboard's own expressions (package dashboards), so the report
// and the Grafana dashboard show the same numbers. `lighthouse report` is
// the command.
package report

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
	"time"
)

// Point is one sample; V may be NaN (no value at that time: a gap).
type Point struct {
	T time.Time
	V float64
}

// Series is one line of a chart.
type Series struct {
	Name   string
	Points []Point
}

// Threshold is a horizontal line drawn across a chart.
type Threshold struct {
	Value float64
	Label string
}

// Marker is a vertical line at an event (a rollback).
type Marker struct {
	T     time.Time
	Label string
}

// Unit formats a chart's values.
type Unit int

// Units.
const (
	Plain   Unit = iota
	Percent      // a ratio shown as a percentage
	Seconds      // a duration, shown in us, ms or s
)

// Chart is one SVG chart.
type Chart struct {
	ID     string // the svg element's id
	Title  string
	Unit   Unit
	YLabel string // the y axis title (default: from Unit)
	Log    bool   // logarithmic y axis (values <= 0 are left out)
	// Max is the top of a linear y axis for a bounded quantity (1 for a
	// share of ops), unless the data go above it; 0: fitted to the data.
	Max        float64
	From, To   time.Time
	Series     []Series
	Thresholds []Threshold
	Markers    []Marker
}

// Layout of every chart, in SVG user units (pixels).
const (
	Width        = 1100
	Height       = 340
	MarginLeft   = 80
	MarginRight  = 230 // the legend
	MarginTop    = 20
	MarginBottom = 40
	PlotLeft     = MarginLeft
	PlotRight    = Width - MarginRight
	PlotTop      = MarginTop
	PlotBottom   = Height - MarginBottom
)

// Palette colours the series in order; red is kept for thresholds and
// rollbacks.
var Palette = []string{"#3274d9", "#ff9830", "#56a64b", "#a352cc", "#2ca5a5", "#e0b400", "#8f3bb8", "#705da0"}

// ThresholdColor is the colour of threshold lines and rollback markers.
const ThresholdColor = "#d62728"

// yScale maps values to the plot's y coordinates.
type yScale struct {
	lo, hi float64 // axis bounds (for log: > 0)
	log    bool
}

func (s yScale) f(v float64) float64 {
	if s.log {
		return math.Log10(v)
	}
	return v
}

// y is the SVG y of v (top is 0).
func (s yScale) y(v float64) float64 {
	return PlotBottom - (s.f(v)-s.f(s.lo))/(s.f(s.hi)-s.f(s.lo))*(PlotBottom-PlotTop)
}

// ok reports whether v can be drawn.
func (s yScale) ok(v float64) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0) && (!s.log || v > 0)
}

// scaleOf fits the y axis to the data and the thresholds: linear from 0 to
// a round number above the largest value (so a threshold is always in
// view), or whole decades for a log axis.
func scaleOf(c Chart) yScale {
	s := yScale{log: c.Log}
	lo, hi := math.Inf(1), math.Inf(-1)
	see := func(v float64) {
		if s.ok(v) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	for _, sr := range c.Series {
		for _, p := range sr.Points {
			see(p.V)
		}
	}
	for _, th := range c.Thresholds {
		see(th.Value)
	}
	if c.Log {
		if math.IsInf(lo, 1) {
			lo, hi = 1e-3, 1
		}
		s.lo = math.Pow(10, math.Floor(math.Log10(lo)))
		s.hi = math.Pow(10, math.Ceil(math.Log10(hi)))
		if s.hi <= s.lo {
			s.hi = s.lo * 10
		}
		return s
	}
	if math.IsInf(hi, -1) || hi <= 0 {
		hi = 1
	}
	s.lo, s.hi = 0, NiceCeil(hi*1.15)
	if c.Max > 0 && s.hi > c.Max && hi <= c.Max {
		s.hi = c.Max
	}
	return s
}

// NiceCeil rounds v > 0 up to 1, 2, 2.5 or 5 times a power of ten.
func NiceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v*(1-1e-12) {
			return m * p
		}
	}
	return 10 * p
}

// timeRange is the chart's x extent: From/To, else the data's.
func timeRange(c Chart) (time.Time, time.Time) {
	from, to := c.From, c.To
	if from.IsZero() || to.IsZero() {
		for _, s := range c.Series {
			for _, p := range s.Points {
				if from.IsZero() || p.T.Before(from) {
					from = p.T
				}
				if to.IsZero() || p.T.After(to) {
					to = p.T
				}
			}
		}
	}
	if !to.After(from) {
		to = from.Add(time.Minute)
	}
	return from, to
}

// X is the SVG x of t on a chart spanning from..to.
func X(t, from, to time.Time) float64 {
	return PlotLeft + float64(t.Sub(from))/float64(to.Sub(from))*(PlotRight-PlotLeft)
}

// Y is the SVG y of v on c's y axis.
func Y(c Chart, v float64) float64 { return scaleOf(c).y(v) }

func num(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', 1, 64) }

// Format renders v in unit u.
func Format(v float64, u Unit) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case u == Percent:
		return trimFloat(v*100) + "%"
	case u == Seconds:
		switch av := math.Abs(v); {
		case av == 0:
			return "0"
		case av < 1e-3:
			return trimFloat(v*1e6) + "µs"
		case av < 1:
			return trimFloat(v*1e3) + "ms"
		}
		return trimFloat(v) + "s"
	}
	return trimFloat(v)
}

// trimFloat prints v with at most 3 significant decimals, no trailing 0.
func trimFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', 3, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// Path is the SVG path data of a series: one M...L run per stretch of
// drawable points, so a gap (NaN) breaks the line.
func Path(points []Point, x func(time.Time) float64, s yScale) string {
	var b strings.Builder
	pen := false
	for _, p := range points {
		if !s.ok(p.V) {
			pen = false
			continue
		}
		cmd := "L"
		if !pen {
			cmd = "M"
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
		} else {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s%s %s", cmd, num(x(p.T)), num(s.y(p.V)))
		pen = true
	}
	return b.String()
}

// SVG renders c as a standalone <svg> element with id c.ID: axes and grid,
// one <path class="series"> per series, one dashed <line
// class="threshold"> per threshold, one <line class="marker"> per marker,
// and the legend.
func SVG(c Chart) string {
	s := scaleOf(c)
	from, to := timeRange(c)
	x := func(t time.Time) float64 { return X(t, from, to) }
	esc := html.EscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-title">`+"\n",
		esc(c.ID), Width, Height, Width, Height, esc(c.ID))
	fmt.Fprintf(&b, `<title id="%s-title">%s</title>`+"\n", esc(c.ID), esc(c.Title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", Width, Height)
	svgAxes(&b, c, s, from, to, x)
	svgSeries(&b, c, s, x)
	svgLines(&b, c, s, from, to, x)
	svgLegend(&b, c)
	b.WriteString("</svg>")
	return b.String()
}

// svgAxes draws the grid, the tick labels, the frame and the y axis title.
func svgAxes(b *strings.Builder, c Chart, s yScale, from, to time.Time, x func(time.Time) float64) {
	esc := html.EscapeString
	for _, v := range yTicks(s) {
		y := num(s.y(v))
		fmt.Fprintf(b, `<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s" stroke="#e4e4e4"/>`+"\n", PlotLeft, y, PlotRight, y)
		fmt.Fprintf(b, `<text x="%d" y="%s" text-anchor="end" dominant-baseline="middle" font-size="12" fill="#555">%s</text>`+"\n", PlotLeft-6, y, esc(Format(v, c.Unit)))
	}
	for _, t := range xTicks(from, to) {
		xv := num(x(t))
		fmt.Fprintf(b, `<line class="grid" x1="%s" y1="%d" x2="%s" y2="%d" stroke="#eeeeee"/>`+"\n", xv, PlotTop, xv, PlotBottom)
		fmt.Fprintf(b, `<text x="%s" y="%d" text-anchor="middle" font-size="12" fill="#555">%s</text>`+"\n", xv, PlotBottom+18, t.UTC().Format("15:04:05"))
	}
	fmt.Fprintf(b, `<rect class="frame" x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", PlotLeft, PlotTop, PlotRight-PlotLeft, PlotBottom-PlotTop)
	axis := "linear"
	if c.Log {
		axis = "log"
	}
	fmt.Fprintf(b, `<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle" font-size="12" fill="#555">%s (%s)</text>`+"\n",
		(PlotTop+PlotBottom)/2, (PlotTop+PlotBottom)/2, esc(yLabel(c)), axis)
}

// svgSeries draws a path per series, or says that there is no data.
func svgSeries(b *strings.Builder, c Chart, s yScale, x func(time.Time) float64) {
	esc := html.EscapeString
	drawable := 0
	for i, sr := range c.Series {
		d := Path(sr.Points, x, s)
		if d == "" {
			continue
		}
		drawable++
		fmt.Fprintf(b, `<path class="series" id="%s-series-%d" d="%s" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round"><title>%s</title></path>`+"\n",
			esc(c.ID), i, d, Palette[i%len(Palette)], esc(sr.Name))
	}
	if drawable == 0 {
		fmt.Fprintf(b, `<text class="nodata" x="%d" y="%d" text-anchor="middle" font-size="16" fill="#888">no data in this range</text>`+"\n",
			(PlotLeft+PlotRight)/2, (PlotTop+PlotBottom)/2)
	}
}

// svgLines draws the thresholds (horizontal) and the markers (vertical)
// that fall in the chart, with their labels.
func svgLines(b *strings.Builder, c Chart, s yScale, from, to time.Time, x func(time.Time) float64) {
	esc := html.EscapeString
	for i, th := range c.Thresholds {
		if !s.ok(th.Value) {
			continue
		}
		y := num(s.y(th.Value))
		fmt.Fprintf(b, `<line class="threshold" id="%s-threshold-%d" x1="%d" y1="%s" x2="%d" y2="%s" stroke="%s" stroke-width="1.5" stroke-dasharray="8 5"><title>%s</title></line>`+"\n",
			esc(c.ID), i, PlotLeft, y, PlotRight, y, ThresholdColor, esc(th.Label))
		fmt.Fprintf(b, `<text x="%d" y="%s" text-anchor="end" font-size="11" fill="%s">%s</text>`+"\n", PlotRight-4, num(s.y(th.Value)-4), ThresholdColor, esc(th.Label))
	}
	for i, m := range c.Markers {
		if m.T.Before(from) || m.T.After(to) {
			continue
		}
		xv := num(x(m.T))
		fmt.Fprintf(b, `<line class="marker" id="%s-marker-%d" x1="%s" y1="%d" x2="%s" y2="%d" stroke="%s" stroke-width="1.5" stroke-dasharray="2 3"><title>%s</title></line>`+"\n",
			esc(c.ID), i, xv, PlotTop, xv, PlotBottom, ThresholdColor, esc(m.Label))
		fmt.Fprintf(b, `<text x="%s" y="%d" font-size="11" fill="%s">%s</text>`+"\n", num(x(m.T)+3), PlotTop+12+12*(i%3), ThresholdColor, esc(m.Label))
	}
}

// svgLegend lists each series with its last value, then the thresholds
// and the markers.
func svgLegend(b *strings.Builder, c Chart) {
	ly := PlotTop + 6
	item := func(color, dash, label string) {
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`, PlotRight+14, ly, PlotRight+36, ly, color, dash)
		fmt.Fprintf(b, `<text x="%d" y="%d" dominant-baseline="middle" font-size="12" fill="#222">%s</text>`+"\n", PlotRight+42, ly, html.EscapeString(label))
		ly += 18
	}
	for i, sr := range c.Series {
		item(Palette[i%len(Palette)], "", sr.Name+"  "+Format(last(sr.Points), c.Unit))
	}
	for _, th := range c.Thresholds {
		item(ThresholdColor, ` stroke-dasharray="8 5"`, th.Label)
	}
	if len(c.Markers) > 0 {
		item(ThresholdColor, ` stroke-dasharray="2 3"`, "rollback")
	}
}

func yLabel(c Chart) string {
	if c.YLabel != "" {
		return c.YLabel
	}
	switch c.Unit {
	case Percent:
		return "% of compared ops"
	case Seconds:
		return "seconds"
	}
	return "value"
}

// last is the last non-NaN value of points (NaN if none).
func last(points []Point) float64 {
	for i := len(points) - 1; i >= 0; i-- {
		if !math.IsNaN(points[i].V) {
			return points[i].V
		}
	}
	return math.NaN()
}

// yTicks are the y axis labels: 5 even steps, or each decade.
func yTicks(s yScale) []float64 {
	var out []float64
	if s.log {
		for v := s.lo; v <= s.hi*(1+1e-9); v *= 10 {
			out = append(out, v)
		}
		return out
	}
	for i := 0; i <= 5; i++ {
		out = append(out, s.lo+(s.hi-s.lo)*float64(i)/5)
	}
	return out
}

// xTicks are round times between from and to, about six of them.
func xTicks(from, to time.Time) []time.Time {
	span := to.Sub(from)
	step := time.Second
	for _, st := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		step = st
		if span/st <= 7 {
			break
		}
	}
	var out []time.Time
	for t := from.Truncate(step); !t.After(to); t = t.Add(step) {
		if !t.Before(from) {
			out = append(out, t)
		}
	}
	return out
}
