package verdict

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	rules := Rules{MinCoverage: DefaultMinCoverage, DivergenceHint: "see div.jsonl", ErrorHint: "see proxy.log", DrainHint: "see proxy.log"}
	good := Run{Ops: 1000, Compared: 990, Skipped: map[string]int64{"stale": 10}, ClientOps: 1000, Drained: true, DrainLimit: 2 * time.Minute}
	with := func(f func(*Run)) Run { r := good; r.Skipped = map[string]int64{"stale": 10}; f(&r); return r }
	for _, tc := range []struct {
		name    string
		run     Run
		rules   Rules
		outcome Outcome
		code    int
		line    string
	}{
		{"pass", good, rules, Pass, ExitPass, "PASS: no divergence beyond the allowlist in 99.0% of ops compared (stale 1.0%)"},
		{"divergences", with(func(r *Run) { r.Divergent = 3 }), rules, Fail, ExitFail, "FAIL: 3 divergences (see div.jsonl)"},
		{"client errors", with(func(r *Run) { r.ClientErrors, r.ClientError = 2, "EOF" }), rules, Fail, ExitFail,
			"FAIL: 2 ops got no result from the proxy (EOF; see proxy.log)"},
		{"workload error, no hint", with(func(r *Run) { r.ClientError = "interrupted" }), Rules{}, Fail, ExitFail,
			"FAIL: 0 ops got no result from the proxy (interrupted)"},
		{"oracle mismatches", with(func(r *Run) { r.Mismatches, r.MismatchSide = map[string]int{"size": 1, "content": 3}, "bazil" }), rules, Fail, ExitFail,
			"FAIL: 4 reads did not match what the workload wrote (content 3, size 1), served by bazil"},
		{"oracle mismatches win over errors, side unknown", with(func(r *Run) { r.Mismatches, r.ClientErrors = map[string]int{"existence": 2}, 1 }), rules, Fail, ExitFail,
			"FAIL: 2 reads did not match what the workload wrote (existence 2), served by either bridge (the proxy's answers do not say which)"},
		{"divergences win over errors", with(func(r *Run) { r.Divergent, r.ClientErrors, r.ClientError = 1, 5, "x" }), rules, Fail, ExitFail,
			"FAIL: 1 divergences (see div.jsonl)"},
		{"uncounted", with(func(r *Run) { r.Uncounted, r.Ops, r.Compared = true, 10, 10 }), rules, Fail, ExitInfra,
			"FAIL: 1000 ops were answered but the proxy behind --admin counted 10: is --target that proxy?"},
		{"degraded", with(func(r *Run) { r.Degraded = []string{`the shadow bridge runs "degraded", not gofuse`} }), rules, Fail, ExitInfra,
			`FAIL: the shadow bridge runs "degraded", not gofuse: no FUSE library in its results (see its log)`},
		{"not drained", with(func(r *Run) { r.Drained = false }), rules, Fail, ExitInfra,
			"FAIL: the mirror did not catch up within 2 minutes (see proxy.log)"},
		{"not drained, seconds", with(func(r *Run) { r.Drained, r.DrainLimit = false, 90*time.Second }), Rules{}, Fail, ExitInfra,
			"FAIL: the mirror did not catch up within 1m30s"},
		{"low coverage", with(func(r *Run) {
			r.Compared, r.Skipped = 610, map[string]int64{"stale": 302, "quarantined": 88}
		}), rules, Inconclusive, ExitInconclusive,
			"INCONCLUSIVE: 61.0% of ops compared (stale 30.2%, quarantined 8.8%), below --min-coverage 95%"},
		{"unaccounted ops", with(func(r *Run) { r.Compared, r.Skipped = 900, nil }), rules, Inconclusive, ExitInconclusive,
			"INCONCLUSIVE: 90.0% of ops compared (unaccounted 10.0%), below --min-coverage 95%"},
		{"just below rounds down", with(func(r *Run) { r.Ops, r.Compared, r.Skipped = 10000, 9499, map[string]int64{"stale": 501} }), rules,
			Inconclusive, ExitInconclusive, "INCONCLUSIVE: 94.9% of ops compared (stale 5.0%), below --min-coverage 95%"},
		{"exactly at the threshold", with(func(r *Run) { r.Ops, r.Compared, r.Skipped = 100, 95, nil }), rules, Pass, ExitPass,
			"PASS: no divergence beyond the allowlist in 95.0% of ops compared (unaccounted 5.0%)"},
		{"no op", with(func(r *Run) { r.Ops, r.Compared, r.Skipped = 0, 0, nil }), rules, Inconclusive, ExitInconclusive,
			"INCONCLUSIVE: 0.0% of ops compared (no op reached the proxy), below --min-coverage 95%"},
		{"no coverage rule", with(func(r *Run) { r.Compared = 1 }), Rules{}, Pass, ExitPass, "PASS: no divergence beyond the allowlist in 0.1% of ops compared (stale 1.0%, unaccounted 98.9%)"},
		{"FAIL wins over INCONCLUSIVE", with(func(r *Run) { r.Compared, r.Divergent = 100, 1 }), rules, Fail, ExitFail,
			"FAIL: 1 divergences (see div.jsonl)"},
		{"client errors win over INCONCLUSIVE", with(func(r *Run) { r.Compared, r.ClientErrors, r.ClientError = 100, 1, "EOF" }), rules, Fail, ExitFail,
			"FAIL: 1 ops got no result from the proxy (EOF; see proxy.log)"},
		{"sampled out by the mirror share", with(func(r *Run) { r.Compared, r.Skipped = 518, map[string]int64{SampledOut: 482} }), rules, Pass, ExitPass,
			"PASS: no divergence beyond the allowlist in 100.0% of the 51.8% of ops in the mirror share compared (sampled_out 48.2%)"},
		{"low coverage within the mirror share", with(func(r *Run) { r.Compared, r.Skipped = 400, map[string]int64{SampledOut: 500, "stale": 100} }), rules,
			Inconclusive, ExitInconclusive,
			"INCONCLUSIVE: 80.0% of the 50.0% of ops in the mirror share compared (sampled_out 50.0%, stale 10.0%), below --min-coverage 95%"},
		{"everything sampled out", with(func(r *Run) { r.Compared, r.Skipped = 0, map[string]int64{SampledOut: 1000} }), rules,
			Inconclusive, ExitInconclusive,
			"INCONCLUSIVE: 0.0% of the 0.0% of ops in the mirror share compared (sampled_out 100.0%), below --min-coverage 95%"},
		{"min coverage 0.5", with(func(r *Run) { r.Compared, r.Skipped = 600, map[string]int64{"stale": 400} }), Rules{MinCoverage: 0.5}, Pass, ExitPass,
			"PASS: no divergence beyond the allowlist in 60.0% of ops compared (stale 40.0%)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Judge(tc.run, tc.rules)
			if v.Outcome != tc.outcome || v.ExitCode != tc.code || v.Line != tc.line {
				t.Errorf("got %s %d %q\nwant %s %d %q", v.Outcome, v.ExitCode, v.Line, tc.outcome, tc.code, tc.line)
			}
			err := v.Err()
			if (err == nil) != (tc.outcome == Pass) || Status(err) != tc.code {
				t.Errorf("Err() = %v with status %d, want status %d", err, Status(err), tc.code)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	base := errors.New("boom")
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, ExitPass},
		{base, ExitInfra},
		{Usage(base), ExitUsage},
		{Failed(base), ExitFail},
		{fmt.Errorf("wrapped: %w", Usage(base)), ExitUsage},
		{WithStatus(ExitInconclusive, base), ExitInconclusive},
		{Failed(Usage(base)), ExitUsage},
	} {
		if got := Status(tc.err); got != tc.want {
			t.Errorf("Status(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	if Usage(nil) != nil {
		t.Error("Usage(nil) is not nil")
	}
	if !errors.Is(Failed(base), base) {
		t.Error("a marked error does not unwrap")
	}
}

func TestHelpListsEveryStatus(t *testing.T) {
	h := Help()
	for code := ExitPass; code <= ExitInfra; code++ {
		if !strings.Contains(h, fmt.Sprintf("\n  %d  ", code)) {
			t.Errorf("Help lacks status %d:\n%s", code, h)
		}
	}
}

func TestServingSide(t *testing.T) {
	for _, tc := range []struct {
		served map[string]int64
		want   string
	}{
		{map[string]int64{"bazil": 10, "gofuse": 0}, "bazil"},
		{map[string]int64{"bazil": 10, "gofuse": 1}, ""},
		{nil, ""},
	} {
		if got := ServingSide(tc.served); got != tc.want {
			t.Errorf("ServingSide(%v) = %q, want %q", tc.served, got, tc.want)
		}
	}
}
