// Package verdict judges a harness run: from what the proxy counted (ops,
// compared, skipped by reason, divergences), what the clients saw (errors)
// and how the harness fared (drained, degraded bridges), it says PASS,
// FAIL or INCONCLUSIVE, with the report's last line and the command's exit
// status. It also owns the table of the command's exit statuses (exit.go).
//
// # Precedence
//
// Evidence against the candidate wins: divergences beyond the allowlist,
// then reads that did not match what the workload wrote (the oracle), then
// client-visible errors (FAIL, exit 1). Then the harness itself: the
// proxy behind the admin port did not count the run's ops, a bridge runs
// without its FUSE library, the mirror never caught up (FAIL, exit 4:
// nothing was judged). Then coverage: below MinCoverage of the ops
// compared, nothing proves the candidate right (INCONCLUSIVE, exit 3).
// Only then PASS.
package verdict

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Outcome is what a run proved.
type Outcome string

const (
	Pass         Outcome = "PASS"
	Fail         Outcome = "FAIL"
	Inconclusive Outcome = "INCONCLUSIVE"
)

// DefaultMinCoverage is --min-coverage's default: a run in which fewer
// than 95% of the ops were compared proves nothing either way.
const DefaultMinCoverage = 0.95

// Run is what a verdict is taken from.
type Run struct {
	// What the proxy counted for the run's ops: every op, those compared,
	// those not compared by reason, and the divergences beyond the
	// allowlist (a mirror-only error counts as one).
	Ops, Compared int64
	Skipped       map[string]int64
	Divergent     int64

	// What the clients saw: ops sent, those with no result, and the first
	// error (or the workload's own).
	ClientOps, ClientErrors int
	ClientError             string
	// Reads whose answer was not what the workload's model of what it
	// wrote says, by class (the oracle, package workload), and the bridge
	// that served them when the proxy's counters say ("": either).
	Mismatches   map[string]int
	MismatchSide string

	// How the harness fared: whether the mirror caught up within
	// DrainLimit before the counters were read (Drained), bridges not
	// running the FUSE library they should (Degraded, one phrase each),
	// and whether the proxy counted at least the ops its clients got
	// answers for (Uncounted: it did not, so it is not the proxy that
	// served them).
	Drained    bool
	DrainLimit time.Duration
	Degraded   []string
	Uncounted  bool
}

// Rules are the thresholds and where each kind of failure is explained.
type Rules struct {
	// MinCoverage is the smallest share of ops compared that can PASS
	// (0: no coverage rule).
	MinCoverage float64
	// Hints end the FAIL lines: where the divergences, the errors, and
	// the lag are explained ("see .lighthouse/divergences.jsonl").
	DivergenceHint, ErrorHint, DrainHint string
}

// Verdict is the judgement of a run.
type Verdict struct {
	Outcome  Outcome
	Line     string // the report's last line, "PASS: ...", "FAIL: ..."
	ExitCode int
}

// Err is nil for a PASS, otherwise an error with the verdict's line that
// ends the command with its exit status.
func (v Verdict) Err() error {
	if v.Outcome == Pass {
		return nil
	}
	return WithStatus(v.ExitCode, errors.New(v.Line))
}

// Judge takes the verdict of r under rules.
func Judge(r Run, rules Rules) Verdict {
	fail := func(code int, format string, args ...any) Verdict {
		return Verdict{Outcome: Fail, Line: "FAIL: " + fmt.Sprintf(format, args...), ExitCode: code}
	}
	switch {
	case r.Divergent > 0:
		return fail(ExitFail, "%d divergences%s", r.Divergent, hint(rules.DivergenceHint))
	case r.mismatches() > 0:
		side := "either bridge (the proxy's answers do not say which)"
		if r.MismatchSide != "" {
			side = r.MismatchSide
		}
		return fail(ExitFail, "%d reads did not match what the workload wrote (%s), served by %s",
			r.mismatches(), counts(r.Mismatches), side)
	case r.ClientErrors > 0 || r.ClientError != "":
		why := r.ClientError
		if rules.ErrorHint != "" {
			why += "; " + rules.ErrorHint
		}
		return fail(ExitFail, "%d ops got no result from the proxy (%s)", r.ClientErrors, why)
	case r.Uncounted:
		return fail(ExitInfra, "%d ops were answered but the proxy behind --admin counted %d: is --target that proxy?",
			r.ClientOps-r.ClientErrors, r.Ops)
	case len(r.Degraded) > 0:
		return fail(ExitInfra, "%s: no FUSE library in its results (see its log)", strings.Join(r.Degraded, "; "))
	case !r.Drained:
		return fail(ExitInfra, "the mirror did not catch up within %s%s", duration(r.DrainLimit), hint(rules.DrainHint))
	}
	mirrored := r.mirrored()
	if rules.MinCoverage > 0 && (mirrored <= 0 || float64(r.Compared) < rules.MinCoverage*float64(mirrored)) {
		return Verdict{Outcome: Inconclusive, ExitCode: ExitInconclusive,
			Line: fmt.Sprintf("INCONCLUSIVE: %s compared%s, below --min-coverage %s",
				r.share(), breakdown(r), strings.TrimSuffix(fmt.Sprintf("%.1f", 100*rules.MinCoverage), ".0")+"%")}
	}
	// A PASS says how much of the traffic it speaks for.
	return Verdict{Outcome: Pass, ExitCode: ExitPass,
		Line: fmt.Sprintf("PASS: no divergence beyond the allowlist in %s compared%s", r.share(), breakdown(r))}
}

// SampledOut is the proxy's skip reason for ops outside its mirror share
// (proxy.SkipSampled): not compared by design, so coverage is judged
// among the rest.
const SampledOut = "sampled_out"

// mirrored is how many ops were in the mirror share.
func (r Run) mirrored() int64 { return r.Ops - r.Skipped[SampledOut] }

// share is "97.1% of ops", or "99.9% of the 51.8% of ops in the mirror
// share" when some were sampled out.
func (r Run) share() string {
	if r.Skipped[SampledOut] == 0 {
		return floorPercent(r.Compared, r.Ops) + " of ops"
	}
	return fmt.Sprintf("%s of the %s of ops in the mirror share", floorPercent(r.Compared, r.mirrored()), percent(r.mirrored(), r.Ops))
}

func (r Run) mismatches() int {
	n := 0
	for _, m := range r.Mismatches {
		n += m
	}
	return n
}

// counts is "content 3, size 1", by name.
func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// Coverage is the share of ops compared of those in the mirror share, 0
// with none.
func (r Run) Coverage() float64 {
	if r.mirrored() <= 0 {
		return 0
	}
	return float64(r.Compared) / float64(r.mirrored())
}

func hint(h string) string {
	if h == "" {
		return ""
	}
	return " (" + h + ")"
}

// breakdown is " (stale 30.2%, quarantined 8.8%)": the ops not compared by
// reason, largest first, as shares of all ops; ops neither compared nor
// skipped for a reason (in flight when the counters were read) are
// "unaccounted".
func breakdown(r Run) string {
	if r.Ops == 0 {
		return " (no op reached the proxy)"
	}
	reasons := make([]string, 0, len(r.Skipped))
	var skipped int64
	for k, n := range r.Skipped {
		if n > 0 {
			reasons = append(reasons, k)
			skipped += n
		}
	}
	slices.SortFunc(reasons, func(a, b string) int {
		return cmp.Or(cmp.Compare(r.Skipped[b], r.Skipped[a]), strings.Compare(a, b))
	})
	parts := make([]string, 0, len(reasons)+1)
	for _, k := range reasons {
		parts = append(parts, k+" "+percent(r.Skipped[k], r.Ops))
	}
	if rest := r.Ops - r.Compared - skipped; rest > 0 {
		parts = append(parts, "unaccounted "+percent(rest, r.Ops))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func percent(n, of int64) string {
	if of == 0 {
		return "0.0%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

// floorPercent rounds down, so that a share below a threshold never
// prints as the threshold.
func floorPercent(n, of int64) string {
	if of == 0 {
		return "0.0%"
	}
	return fmt.Sprintf("%.1f%%", math.Floor(1000*float64(n)/float64(of))/10)
}

// duration says "2 minutes" for whole minutes, else the Go form.
func duration(d time.Duration) string {
	switch {
	case d == time.Minute:
		return "1 minute"
	case d > 0 && d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}
