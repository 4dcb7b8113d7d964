// Package timeline records, during a run, the time series its HTML report
// charts, so the report needs no Prometheus: a Recorder samples
// prometheus.Gatherers (the proxy's registry in this process, the bridges'
// /metrics pages through metrics.Remote) every second or so and keeps the
// counters and histograms of each sample; Series turns them into the
// rates, ratios and quantiles of report.RunSeries.
//
// # Memory bound
//
// A Recorder keeps at most Max samples (DefaultMax). When it is full it
// drops every second sample and samples half as often, so the whole run
// stays covered at a coarser resolution: the first 10 minutes at 1 s,
// up to 20 at 2 s, and so on. A sample holds a few counters, one value
// per divergence class, rollback trigger and bridge, and one bucket array
// per backend's latency histogram (the bounds shared): about 2 KiB with
// two bridges (TestMemoryBound measures it), so the default 600 samples
// stay under 1.5 MiB whatever the run's length.
package timeline

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/lighthouse-fs/lighthouse/metrics"
)

// DefaultMax is the number of samples a Recorder keeps by default.
const DefaultMax = 600

// Hist is a latency histogram's cumulative counts: Cum[i] observations at
// or below Bounds[i]; the last bound is +Inf (Cum's last is the count).
type Hist struct {
	Bounds, Cum []float64
}

// Count is the number of observations.
func (h Hist) Count() float64 {
	if len(h.Cum) == 0 {
		return 0
	}
	return h.Cum[len(h.Cum)-1]
}

// Sample is what the sources said at one time: counters as they were
// (cumulative), gauges as they were.
type Sample struct {
	T                      time.Time
	Ops, Compared, Skipped float64
	Divergences            map[string]float64 // by class, allowed and shadow_error included
	Rollbacks              map[string]float64 // by trigger
	Weight                 float64            // the candidate's weight; NaN when no source has it
	Latency                map[string]Hist    // each bridge's op latency, by backend
	Nice                   map[string]float64 // each bridge's nice value, by backend
}

// Recorder samples its sources until Run's context ends.
type Recorder struct {
	sources []prometheus.Gatherer
	max     int

	mu      sync.Mutex
	samples []Sample
	every   time.Duration // the sampling interval; doubles at each downsampling
	errs    int           // sources that failed to answer, over the run
}

// New returns a recorder of sources that samples every interval (1 s if
// 0) and keeps at most max samples (DefaultMax if 0; at least 4).
func New(interval time.Duration, max int, sources ...prometheus.Gatherer) *Recorder {
	if interval <= 0 {
		interval = time.Second
	}
	if max <= 0 {
		max = DefaultMax
	}
	return &Recorder{sources: sources, max: (max + 1) &^ 1 /* even */, every: interval}
}

// Run samples now and then every interval until ctx ends, and once more
// as it ends, so the recording reaches the moment the run stopped.
func (r *Recorder) Run(ctx context.Context) {
	for {
		r.Sample(time.Now())
		t := time.NewTimer(r.Interval())
		select {
		case <-ctx.Done():
			t.Stop()
			r.Sample(time.Now())
			return
		case <-t.C:
		}
	}
}

// Interval is the current sampling interval.
func (r *Recorder) Interval() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.every
}

// Errors is how many times a source failed to answer.
func (r *Recorder) Errors() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs
}

// Sample reads every source once and keeps what they said at now. A
// source that fails is left out of this sample (its series have a gap).
func (r *Recorder) Sample(now time.Time) {
	s := Sample{T: now, Weight: math.NaN(), Divergences: map[string]float64{}, Rollbacks: map[string]float64{},
		Latency: map[string]Hist{}, Nice: map[string]float64{}}
	errs := 0
	for _, g := range r.sources {
		mfs, err := g.Gather()
		if err != nil {
			errs++
		}
		s.add(mfs)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs += errs
	if n := len(r.samples); n > 0 && !now.After(r.samples[n-1].T) {
		return // a clock that did not move: nothing new
	}
	if n := len(r.samples); n > 0 {
		s.shareBounds(&r.samples[n-1])
	}
	if len(r.samples) == r.max {
		// Keep the first and every second one after it, and sample half
		// as often: the whole run, coarser.
		kept := r.samples[:0]
		for i := 0; i < len(r.samples); i += 2 {
			kept = append(kept, r.samples[i])
		}
		clear(r.samples[len(kept):])
		r.samples = kept
		r.every *= 2
	}
	r.samples = append(r.samples, s)
}

// Samples returns a copy of the samples kept, oldest first.
func (r *Recorder) Samples() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.samples)
}

// shareBounds makes s's histograms use prev's bucket bounds where they
// are the same (they always are): one copy for the whole recording.
func (s *Sample) shareBounds(prev *Sample) {
	for b, h := range s.Latency {
		if p, ok := prev.Latency[b]; ok && slices.Equal(p.Bounds, h.Bounds) {
			h.Bounds = p.Bounds
			s.Latency[b] = h
		}
	}
}

// add takes what one source's families say into s.
func (s *Sample) add(mfs []*dto.MetricFamily) {
	fams := metrics.Families{}
	for _, mf := range mfs {
		fams[mf.GetName()] = mf
	}
	s.Ops += fams.Sum("lighthouse_proxy_operations_total", nil)
	s.Compared += fams.Sum("lighthouse_proxy_compared_total", nil)
	s.Skipped += fams.Sum("lighthouse_proxy_mirror_skipped_total", nil)
	for class, n := range fams.SumBy(metrics.DivergenceTotal, "class", nil) {
		s.Divergences[class] += n
	}
	for trigger, n := range fams.SumBy(metrics.RollbacksTotal, "trigger", nil) {
		s.Rollbacks[trigger] += n
	}
	if w, ok := fams.Gauge("lighthouse_rollout_candidate_weight"); ok {
		s.Weight = w
	}
	for backend, h := range histograms(fams[metrics.OperationDuration], "backend") {
		s.Latency[backend] = h
	}
	// A bridge's nice value has no backend label: its page says which
	// backend it runs (the active series).
	if n, ok := fams.Gauge("lighthouse_bridge_nice"); ok {
		for _, m := range fams[metrics.BackendActive].GetMetric() {
			if m.GetGauge().GetValue() == 1 {
				s.Nice[label(m, "backend")] = n
			}
		}
	}
}

// histograms sums the series of histogram family mf per value of by.
func histograms(mf *dto.MetricFamily, by string) map[string]Hist {
	out := map[string]Hist{}
	for _, m := range mf.GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		var bounds, cum []float64
		for _, b := range h.GetBucket() {
			if !math.IsInf(b.GetUpperBound(), 1) { // a parsed page lists +Inf, a registry does not
				bounds, cum = append(bounds, b.GetUpperBound()), append(cum, float64(b.GetCumulativeCount()))
			}
		}
		bounds, cum = append(bounds, math.Inf(1)), append(cum, float64(h.GetSampleCount()))
		key := label(m, by)
		prev, ok := out[key]
		if ok && slices.Equal(prev.Bounds, bounds) {
			for i := range cum {
				cum[i] += prev.Cum[i]
			}
		}
		out[key] = Hist{Bounds: bounds, Cum: cum}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}
