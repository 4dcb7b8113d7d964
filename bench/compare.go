package bench

import (
	"errors"
	"fmt"
	"io"
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
}

// Compare checks the ratios of now against those of base: a ratio that
// grew by more than threshold (relative: 0.5 is 50%) is a regression. It
// writes the table of the ratios both runs have (baseline, now, change,
// verdict) to w and returns an error wrapping ErrRegression naming the
// worsened ones, or an error if the runs share no ratio (nothing was
// checked). Only ratios are compared, never absolute times: the machines
// are noisy, and a ratio measured in one run cancels most of the noise.
func Compare(w io.Writer, base, now *Report, threshold float64) ([]RatioChange, error) {
	if threshold <= 0 {
		return nil, fmt.Errorf("threshold %g: want a positive fraction", threshold)
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
		c := RatioChange{Ratio: r, Baseline: b.Value, Change: r.Value/b.Value - 1, Verdict: "ok"}
		switch {
		case c.Change > threshold:
			c.Verdict = "WORSE"
		case c.Change < -threshold:
			c.Verdict = "better"
		}
		changes = append(changes, c)
	}
	if len(changes) == 0 {
		return nil, errors.New("the baseline and this run have no ratio in common (different targets, ops or concurrency): nothing was compared")
	}
	if d := settingsDiff(base.Settings, now.Settings); d != "" {
		fmt.Fprintf(w, "note: the baseline was made with other settings (%s): its ratios may differ for that reason alone\n", d)
	}
	sort.SliceStable(changes, func(i, j int) bool { return orderOf(changes[i].Ratio) < orderOf(changes[j].Ratio) })
	fmt.Fprintf(w, "ratios against the baseline (threshold +%.0f%%)\n", threshold*100)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ratio\top\tc\tbaseline\tnow\tchange\tverdict\t")
	var worse []string
	for _, c := range changes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.2f\t%+.0f%%\t%s\t\n", c.Name, c.Op, c.Concurrency, c.Baseline, c.Value, c.Change*100, c.Verdict)
		if c.Verdict == "WORSE" {
			worse = append(worse, fmt.Sprintf("%s (%.2f -> %.2f, %+.0f%%)", c.Key(), c.Baseline, c.Value, c.Change*100))
		}
	}
	tw.Flush()
	if len(worse) > 0 {
		return changes, fmt.Errorf("%w: %d of %d ratios worse than the baseline by more than %.0f%%: %v", ErrRegression, len(worse), len(changes), threshold*100, worse)
	}
	fmt.Fprintf(w, "all %d ratios within %.0f%% of the baseline\n", len(changes), threshold*100)
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
	o := 0
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
