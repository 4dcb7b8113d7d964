package report

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/dashboards"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/verdict"
	"github.com/lighthouse-fs/lighthouse/workload"
)

// The page of one harness run (`lighthouse up --html`): the verdict, the
// counts, the divergences by class with their lines in the divergence log,
// and the charts of the series recorded during the run (package timeline),
// over the run's own time span.

// RunSeries are the series of one run, each point taken over Window
// before its time.
type RunSeries struct {
	From, To  time.Time
	Window    time.Duration
	Ops       []Point            // ops per second the proxy served
	Coverage  []Point            // compared / (compared + skipped)
	Ratio     []Point            // divergences beyond the allowlist / compared
	ByClass   map[string][]Point // divergences per second, by class
	Latency   map[string][]Point // "bazil p50", "gofuse p99": each bridge's op latency
	Weight    []Point            // the candidate's serving weight
	Rollbacks []Marker
	Nice      map[string]int // the highest nice value of each backend's bridge during the run
}

// RunSummary heads a run's page.
type RunSummary struct {
	Verdict verdict.Verdict // a zero Outcome: not judged
	// VerdictNote says what the verdict was taken from when it is not a
	// finished workload's ("interrupted: ...").
	VerdictNote string
	Counts      []KV
	Classes     []ClassEntries // every class with a divergence, most first
	// DivergenceLog is the divergence log's path as the page shows it.
	DivergenceLog string
}

// Judged says whether the run has a verdict.
func (s *RunSummary) Judged() bool { return s.Verdict.Outcome != "" }

// VerdictClass is the verdict's CSS class: pass, fail, inconclusive, none.
func (s *RunSummary) VerdictClass() string {
	switch s.Verdict.Outcome {
	case verdict.Pass:
		return "pass"
	case verdict.Fail:
		return "fail"
	case verdict.Inconclusive:
		return "inconclusive"
	}
	return "none"
}

// shareLine says how much of the tree the proxy mirrored (--mirror-share):
// all of it, or the lowest share and what it cost.
func shareLine(v proxy.StatsView) string {
	if v.MinMirrorShare >= 1 {
		return "100% of the tree: every op was mirrored"
	}
	return fmt.Sprintf("fell to %s of the tree (the mirror could not keep up): %d ops sampled out, not compared by design",
		trimFloat(100*v.MinMirrorShare)+"%", v.Skipped[proxy.SkipSampled])
}

// RunCounts are the counts of a run: what the clients sent (when a
// workload ran: res not nil), what the proxy served, compared and skipped,
// the coverage against minCoverage, and the divergences.
func RunCounts(v proxy.StatsView, res *workload.Result, minCoverage float64) []KV {
	var rows []KV
	add := func(k, format string, args ...any) { rows = append(rows, KV{k, fmt.Sprintf(format, args...)}) }
	if res != nil {
		add("ops sent by the workload", "%d in %s, %d without a result", res.Ops, res.Elapsed.Round(time.Millisecond), res.Errors)
		add("reads checked by the workload", "%d, wrong: %s", res.Verified, Counts(res.Mismatches))
	}
	add("ops the proxy served", "%d (%s)", v.Ops, Counts(v.ServedBy))
	add("compared", "%d", v.Compared)
	add("skipped, by reason", "%s", Counts(v.Skipped))
	if v.Pending > 0 {
		add("outcome not known yet", "%d (the mirror had not finished them)", v.Pending)
	}
	cov := fmt.Sprintf("%.2f%% of the ops whose outcome is known", 100*v.Coverage())
	if v.Skipped[proxy.SkipSampled] > 0 {
		cov = fmt.Sprintf("%.2f%% of the ops in the mirror share whose outcome is known", 100*v.Coverage())
	}
	if minCoverage > 0 {
		cov += fmt.Sprintf(" (a PASS needs %s)", trimFloat(100*minCoverage)+"%")
	}
	add("coverage", "%s", cov)
	add("mirror share", "%s", shareLine(v))
	add("divergences beyond the allowlist", "%d", v.Divergent+v.ByClass[compare.ClassShadowError])
	add("divergences by class", "%s", Counts(v.ByClass))
	add("state read-backs, resyncs", "%d, %d", v.Readbacks, v.Resyncs)
	return rows
}

// RunSections are the charts of a recorded run: ops, coverage against
// minCoverage, the divergence ratio against the rollback threshold,
// divergences by class, each bridge's latency (with a caveat for a bridge
// that ran at a nice value) and the candidate's weight, rollbacks marked
// on each.
func RunSections(s RunSeries, minCoverage float64) []Section {
	chart := func(id, title string, u Unit) Chart {
		return Chart{ID: id, Title: title, Unit: u, From: s.From, To: s.To, Markers: s.Rollbacks}
	}
	win := s.Window.String()

	ops := chart("ops-chart", "Ops served", Plain)
	ops.YLabel = "ops/s"
	ops.Series = []Series{{Name: "ops/s", Points: s.Ops}}

	cov := chart("coverage-chart", "Coverage", Percent)
	cov.YLabel, cov.Max = "% of ops compared", 1
	cov.Series = []Series{{Name: "ops compared", Points: s.Coverage}}
	if minCoverage > 0 {
		cov.Thresholds = []Threshold{{Value: minCoverage, Label: "--min-coverage " + Format(minCoverage, Percent)}}
	}

	div := chart("divergence-chart", "Divergence ratio", Percent)
	div.Series = []Series{{Name: "divergent / compared", Points: s.Ratio}}
	div.Thresholds = []Threshold{{Value: dashboards.DivergenceThreshold, Label: "rollback threshold 0.1%"}}

	byClass := chart("class-chart", "Divergences by class", Plain)
	byClass.YLabel = "divergences/s"
	for _, c := range SortedKeys(s.ByClass) {
		if slices.ContainsFunc(s.ByClass[c], func(p Point) bool { return p.V > 0 }) {
			byClass.Series = append(byClass.Series, Series{Name: c, Points: s.ByClass[c]})
		}
	}
	if len(byClass.Series) == 0 {
		byClass.Series = []Series{{Name: "none", Points: zeros(s.Ops)}}
	}

	lat := chart("latency-chart", "Op latency per backend", Seconds)
	lat.Log = true
	lat.Thresholds = []Threshold{{Value: dashboards.P99Threshold, Label: "P99 rollback threshold 1s"}}
	for _, name := range SortedKeys(s.Latency) {
		lat.Series = append(lat.Series, Series{Name: name, Points: s.Latency[name]})
	}
	latNote := fmt.Sprintf("P50 and P99 of one op through each bridge's FUSE mount (the bridges' histograms), over %s windows, log scale. A go-fuse P99 above the dashed line (1 s) rolls back.", win)
	for _, b := range SortedKeys(s.Nice) {
		if n := s.Nice[b]; n > 0 {
			latNote += fmt.Sprintf(" Caveat: the %s bridge ran at nice %d while it only mirrored: its times then include waiting for the CPU behind the serving bridge, not only %s's own cost; they are no evidence that %s is slower.", b, n, b, b)
		}
	}

	wt := chart("weight-chart", "Candidate weight", Percent)
	wt.YLabel, wt.Max = "% of ops served by go-fuse", 1
	wt.Series = []Series{{Name: "go-fuse weight", Points: s.Weight}}

	return []Section{
		{Heading: "Ops served", Chart: ops, Note: fmt.Sprintf("Ops per second the proxy served (clients' and the front mount's), over %s windows.", win)},
		{Heading: "Coverage", Chart: cov, Note: fmt.Sprintf("The share of ops whose outcome became known in each %s window that were compared; the rest were skipped (stale, quarantined, ...). The verdict speaks only for the compared share.", win)},
		{Heading: "Divergence ratio", Chart: div, Note: fmt.Sprintf("Compared ops whose results differ between bazil and go-fuse (allowlisted differences and shadow errors excluded), over %s windows. Above the dashed line (0.1%%) the rollout rolls back. Dotted red lines: rollbacks.", win)},
		{Heading: "Divergences by class", Chart: byClass, Note: fmt.Sprintf("Divergences per second by class (allowed and shadow_error included), over %s windows.", win)},
		{Heading: "Latency per backend", Chart: lat, Note: latNote},
		{Heading: "Candidate weight", Chart: wt, Note: "The share of ops go-fuse serves: 0 in the shadow phase, 10% canary, 50-90% progressive, 100% full; a rollback sets it to 0."},
	}
}

// zeros is a 0 at each time of points.
func zeros(points []Point) []Point {
	out := make([]Point, len(points))
	for i, p := range points {
		out[i] = Point{T: p.T, V: 0}
		if math.IsNaN(p.V) {
			out[i].V = math.NaN()
		}
	}
	return out
}
