package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// ErrRegression is returned (wrapped) by Compare when a ratio worsened by
// more than the threshold.
var ErrRegression = errors.New("benchmark regression")

// RatioChange is one ratio in a baseline and in this run.
type RatioChange struct {
	Ratio
	Baseline float64 `json:"baseline"`
	// Change is now/baseline - 1: +0.30 is 30% worse.
	Change  float64 `json:"change"`
	Verdict string  `json:"verdict"` // ok, better, WORSE
	// Ops are the ops of a family row (Op is FamilyOp): the geometric mean
	// of the family's ratios over them.
	Ops []string `json:"ops,omitempty"`
}

// FamilyOp is the op column of a family row: the geometric mean of one
// ratio definition's ratios over every op both runs have. One op's ratio
// moves by up to 90% between runs on these machines, a family's mean by
// under 10%: a cost added to every op of a layer (200 us in the code both
// bridges share) moves each ratio by 25-190%, under the per-ratio
// threshold, and the family's mean by 45-70%, over its own.
const FamilyOp = "geomean"

// minFamily is the fewest ops a family row takes: with fewer it says
// little more than its ratios.
const minFamily = 3

// Thresholds are the relative worsenings that fail a check (0.5: 50%).
type Thresholds struct {
	Ratio  float64 // one op's ratio
	Family float64 // a family's geometric mean (FamilyOp)
}

func (th Thresholds) of(c RatioChange) float64 {
	if c.Op == FamilyOp {
		return th.Family
	}
	return th.Ratio
}

func (th Thresholds) String() string {
	return fmt.Sprintf("a ratio +%.0f%%, a family's geometric mean +%.0f%%", th.Ratio*100, th.Family*100)
}

// families adds a row per ratio definition and concurrency with at least
// minFamily ops: the geometric means of its baseline and current ratios.
func families(changes []RatioChange) []RatioChange {
	type key struct {
		name string
		conc int
	}
	groups := map[key][]RatioChange{}
	var order []key
	for _, c := range changes {
		k := key{c.Name, c.Concurrency}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], c)
	}
	var out []RatioChange
	for _, k := range order {
		g := groups[k]
		if len(g) < minFamily {
			continue
		}
		var lb, ln float64
		ops := make([]string, len(g))
		for i, c := range g {
			lb, ln, ops[i] = lb+math.Log(c.Baseline), ln+math.Log(c.Value), c.Op
		}
		n := float64(len(g))
		f := RatioChange{Ratio: Ratio{Name: k.name, Num: g[0].Num, Den: g[0].Den, Op: FamilyOp, Concurrency: k.conc,
			Value: math.Exp(ln / n)}, Baseline: math.Exp(lb / n), Ops: ops}
		f.Change = f.Value/f.Baseline - 1
		out = append(out, f)
	}
	return out
}

// String names the ratio with its baseline, value now and change.
func (c RatioChange) String() string {
	return fmt.Sprintf("%s (%.2f -> %.2f, %+.0f%%)", c.Key(), c.Baseline, c.Value, c.Change*100)
}

// Compare checks the ratios of now against those of base, and each
// family's geometric mean (FamilyOp): one that grew by more than its
// threshold is a regression. It writes the table of the ratios both runs
// have (baseline, now, change, verdict) to w and returns an error wrapping
// ErrRegression naming the worsened ones, or an error if the runs share
// no ratio (nothing was checked). Only ratios are compared, never absolute
// times: the machines are noisy, and a ratio measured in one run cancels
// most of the noise.
func Compare(w io.Writer, base, now *Report, th Thresholds) ([]RatioChange, error) {
	if th.Ratio <= 0 || th.Family <= 0 {
		return nil, fmt.Errorf("thresholds %s: want positive fractions", th)
	}
	old := map[string]Ratio{}
	for _, r := range Ratios(base.Results) {
		old[r.Key()] = r
	}
	var changes []RatioChange
	for _, r := range Ratios(now.Results) {
		b, ok := old[r.Key()]
		if !ok || b.Value <= 0 {
			continue
		}
		changes = append(changes, RatioChange{Ratio: r, Baseline: b.Value, Change: r.Value/b.Value - 1})
	}
	if len(changes) == 0 {
		return nil, errors.New("the baseline and this run have no ratio in common (different targets, ops or concurrency): nothing was compared")
	}
	changes = append(changes, families(changes)...)
	for i := range changes {
		c, t := &changes[i], th.of(changes[i])
		switch c.Verdict = "ok"; {
		case c.Change > t:
			c.Verdict = "WORSE"
		case c.Change < -t:
			c.Verdict = "better"
		}
	}
	if d := settingsDiff(base.Settings, now.Settings); d != "" {
		fmt.Fprintf(w, "note: the baseline was made with other settings (%s): its ratios may differ for that reason alone\n", d)
	}
	sort.SliceStable(changes, func(i, j int) bool { return orderOf(changes[i].Ratio) < orderOf(changes[j].Ratio) })
	fmt.Fprintf(w, "ratios against the baseline (thresholds: %s)\n", th)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ratio\top\tc\tbaseline\tnow\tchange\tverdict\t")
	var worse []string
	for _, c := range changes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.2f\t%+.0f%%\t%s\t\n", c.Name, c.Op, c.Concurrency, c.Baseline, c.Value, c.Change*100, c.Verdict)
		if c.Verdict == "WORSE" {
			worse = append(worse, c.String())
		}
	}
	tw.Flush()
	if len(worse) > 0 {
		return changes, fmt.Errorf("%w: %d of %d ratios worse than the baseline (thresholds: %s): %v", ErrRegression, len(worse), len(changes), th, worse)
	}
	fmt.Fprintf(w, "all %d ratios within their thresholds (%s)\n", len(changes), th)
	return changes, nil
}

// orderOf sorts ratios as the tables show them: by definition, op, then
// concurrency.
func orderOf(r Ratio) int {
	d := 0
	for i, def := range ratioDefs {
		if def.name == r.Name {
			d = i
		}
	}
	o := len(AllOps) // a family row last
	for i, op := range AllOps {
		if op == r.Op {
			o = i
		}
	}
	return d<<24 | o<<16 | r.Concurrency
}

// settingsDiff names the settings that change ratios and differ.
func settingsDiff(a, b Settings) string {
	var d []string
	add := func(name string, x, y any) {
		if fmt.Sprint(x) != fmt.Sprint(y) {
			d = append(d, fmt.Sprintf("%s %v, now %v", name, x, y))
		}
	}
	add("iterations", a.Iterations, b.Iterations)
	add("warm-up", a.Warmup, b.Warmup)
	add("rounds", a.Rounds, b.Rounds)
	add("cached", a.Cached, b.Cached)
	add("read-back rate", a.ReadbackRate, b.ReadbackRate)
	add("cpus", a.CPUs, b.CPUs)
	return strings.Join(d, "; ")
}

// Worse returns the changes whose verdict is WORSE.
func Worse(changes []RatioChange) []RatioChange {
	var out []RatioChange
	for _, c := range changes {
		if c.Verdict == "WORSE" {
			out = append(out, c)
		}
	}
	return out
}

// Recheck narrows cfg to what re-measuring the worsened ratios takes: their
// ops, the two targets of each and their concurrencies, without the
// lagging-shadow scenario. A regression check re-measures before it fails:
// on the shared 2-core machines one run in many moves a ratio of two
// ~100 us medians by more than the threshold (a wake-up on the wrong CPU,
// a neighbour's burst); a real slowdown is there every time.
func Recheck(cfg Config, worse []RatioChange) Config {
	ops, targets, conc := map[string]bool{}, map[string]bool{}, map[int]bool{}
	for _, c := range worse {
		targets[c.Num], targets[c.Den], conc[c.Concurrency] = true, true, true
		for _, op := range c.Ops {
			ops[op] = true
		}
		if c.Op != FamilyOp {
			ops[c.Op] = true
		}
	}
	cfg.Ops, cfg.Targets = slices.Sorted(maps.Keys(ops)), slices.Sorted(maps.Keys(targets))
	cfg.Concurrency, cfg.Lag = slices.Sorted(maps.Keys(conc)), 0
	return cfg
}

// Confirmed returns the ratios WORSE in both first and again (two
// comparisons against one baseline), as measured in again: the
// regressions that reproduced.
func Confirmed(first, again []RatioChange) []RatioChange {
	worseFirst := map[string]bool{}
	for _, c := range Worse(first) {
		worseFirst[c.Key()] = true
	}
	var out []RatioChange
	for _, c := range Worse(again) {
		if worseFirst[c.Key()] {
			out = append(out, c)
		}
	}
	return out
}

// RegressionError is the error a check returns for the regressions that
// reproduced (see Confirmed), wrapping ErrRegression.
func RegressionError(confirmed []RatioChange, th Thresholds, runs int) error {
	if len(confirmed) == 0 {
		return nil
	}
	names := make([]string, len(confirmed))
	for i, c := range confirmed {
		names[i] = c.String()
	}
	return fmt.Errorf("%w: %d ratios worse than the baseline (thresholds: %s) in all %d runs: %v",
		ErrRegression, len(confirmed), th, runs, names)
}

// CheckOptions configure CheckBaseline.
type CheckOptions struct {
	Thresholds Thresholds // the relative worsenings that fail
	Confirm    int        // how many times at most the worsened ratios are re-measured
	Out        io.Writer  // the comparisons, and what is re-measured
	// Measure runs a re-measurement; nil: Run.
	Measure func(context.Context, Config) (*Report, error)
}

// CheckBaseline compares rep's ratios with base's and re-measures the
// worsened ones up to o.Confirm times (Recheck of cfg): a ratio fails the
// check only if it is worse in every run, so one noisy run is no
// regression. A failed check wraps ErrRegression.
func CheckBaseline(ctx context.Context, cfg Config, base, rep *Report, o CheckOptions) error {
	measure := o.Measure
	if measure == nil {
		measure = Run
	}
	fmt.Fprintln(o.Out)
	changes, err := Compare(o.Out, base, rep, o.Thresholds)
	if err != nil && !errors.Is(err, ErrRegression) {
		return err
	}
	worse, runs := Worse(changes), 1
	for ; len(worse) > 0 && runs <= o.Confirm; runs++ {
		again := Recheck(cfg, worse)
		again.Progress = nil
		fmt.Fprintf(o.Out, "\n%d ratios worse than the baseline: re-measuring %s on %s to confirm (run %d of up to %d)\n",
			len(worse), strings.Join(again.Ops, ","), strings.Join(again.Targets, ","), runs+1, o.Confirm+1)
		rep, err := measure(ctx, again)
		if err != nil {
			return fmt.Errorf("re-measuring to confirm a regression: %w", err)
		}
		changes, err := Compare(o.Out, base, rep, o.Thresholds)
		if err != nil && !errors.Is(err, ErrRegression) {
			return err
		}
		worse = Confirmed(worse, changes)
	}
	if err := RegressionError(worse, o.Thresholds, runs); err != nil {
		return err
	}
	if runs > 1 {
		fmt.Fprintf(o.Out, "no regression: what the first run found worse did not reproduce in %d more run(s)\n", runs-1)
	}
	return nil
}
