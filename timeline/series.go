package timeline

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/metrics"
	"github.com/lighthouse-fs/lighthouse/report"
)

// AutoWindow is the window Series uses for a recording that spans span,
// sampled every interval: a twentieth of the run, between 5 s and a
// minute, and at least 3 intervals, so a one-minute run gets 20 points of
// smooth rates and an hour's run its dashboard's 1m windows.
func AutoWindow(span, interval time.Duration) time.Duration {
	w := min(max(span/20, 5*time.Second), time.Minute)
	return max(w, 3*interval).Round(time.Second)
}

// Series turns the samples into the report's series: each point at a
// sample's time is taken over the window before it (every rate, ratio and
// quantile), as PromQL's rate() over [window] would. window 0: AutoWindow.
func (r *Recorder) Series(window time.Duration) report.RunSeries {
	samples := r.Samples()
	out := report.RunSeries{ByClass: map[string][]report.Point{}, Latency: map[string][]report.Point{}, Nice: map[string]int{}}
	if len(samples) == 0 {
		return out
	}
	out.From, out.To = samples[0].T, samples[len(samples)-1].T
	if window <= 0 {
		window = AutoWindow(out.To.Sub(out.From), r.Interval())
	}
	out.Window = window

	classes := map[string]bool{}
	backends := map[string]bool{}
	for _, s := range samples {
		for c := range s.Divergences {
			classes[c] = true
		}
		for b := range s.Latency {
			backends[b] = true
		}
		for b, n := range s.Nice {
			out.Nice[b] = max(out.Nice[b], int(n))
		}
	}
	j := 0 // the first sample inside the window before sample i
	for i := 1; i < len(samples); i++ {
		cur := samples[i]
		for j < i-1 && cur.T.Sub(samples[j].T) > window {
			j++
		}
		prev := samples[j]
		secs := cur.T.Sub(prev.T).Seconds()
		pt := func(v float64) report.Point { return report.Point{T: cur.T, V: v} }

		out.Ops = append(out.Ops, pt((cur.Ops-prev.Ops)/secs))
		compared, skipped := cur.Compared-prev.Compared, cur.Skipped-prev.Skipped
		out.Coverage = append(out.Coverage, pt(ratio(compared, compared+skipped)))
		counted := 0.0
		for c := range classes {
			d := cur.Divergences[c] - prev.Divergences[c]
			out.ByClass[c] = append(out.ByClass[c], pt(d/secs))
			if c != compare.ClassAllowed && c != compare.ClassShadowError {
				counted += d
			}
		}
		out.Ratio = append(out.Ratio, pt(ratio(counted, compared)))
		for b := range backends {
			for _, q := range []float64{0.5, 0.99} {
				name := fmt.Sprintf("%s p%g", b, 100*q)
				out.Latency[name] = append(out.Latency[name], pt(windowQuantile(q, prev.Latency[b], cur.Latency[b])))
			}
		}
		out.Weight = append(out.Weight, pt(cur.Weight))
		for trigger, n := range cur.Rollbacks {
			if n > samples[i-1].Rollbacks[trigger] {
				out.Rollbacks = append(out.Rollbacks, report.Marker{T: cur.T, Label: "rollback (" + trigger + ")"})
			}
		}
	}
	slices.SortFunc(out.Rollbacks, func(a, b report.Marker) int { return a.T.Compare(b.T) })
	return out
}

// ratio is a/b, NaN (a gap, not a zero) when b is 0.
func ratio(a, b float64) float64 {
	if b <= 0 {
		return math.NaN()
	}
	return a / b
}

// windowQuantile is the q-quantile of the observations between two
// samples of a histogram: NaN when there were none. A histogram the
// earlier sample lacks counts from zero (a bridge creates it at its first
// op).
func windowQuantile(q float64, prev, cur Hist) float64 {
	if len(cur.Cum) == 0 {
		return math.NaN()
	}
	d := slices.Clone(cur.Cum)
	if len(prev.Cum) == len(cur.Cum) {
		for i := range d {
			d[i] -= prev.Cum[i]
		}
	}
	if d[len(d)-1] <= 0 {
		return math.NaN()
	}
	return metrics.Quantile(q, cur.Bounds, d)
}
