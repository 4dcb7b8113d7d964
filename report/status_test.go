package report

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/rollout"
)

func rolledBack() rollout.Status {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return rollout.Status{
		State: rollout.State{Phase: "shadow", Weight: 0, RolledBack: true,
			Decision: &rollout.Decision{Time: at, Action: "rollback", Trigger: "divergence", From: 0.1, To: 0, Reason: "divergence rate 0.8%",
				Rates:      rollout.Rates{Divergence: 0.008, Compared: 856, Coverage: 0.951, Observed: 900, CandidateOp: 900},
				Statistics: [3]float64{12.5, 0, 0}}},
		Thresholds: rollout.DefaultThresholds(),
		Rates:      rollout.Rates{Compared: 40, Coverage: 1, Observed: 40}, // the windows after the rollback
		Latency: []rollout.LatencyVerdict{{Op: "stat", Candidate: 5 * time.Millisecond, Primary: time.Millisecond, Ratio: 5, Z: 9.5,
			NCand: 50, NPrim: 450}},
	}
}

func TestWriteStatus(t *testing.T) {
	var out bytes.Buffer
	since := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	WriteStatus(&out, rolledBack(), &proxy.Status{Ops: 10, Compared: 8, Divergent: 1, Coverage: 0.8,
		Skipped: map[string]int64{"stale": 2, "shutdown": 0},
		Bridges: []proxy.BridgeStatus{{Backend: "bazil", Role: "primary", Record: true},
			{Backend: "gofuse", Role: "shadow", Stale: true, StaleReason: "lag", QueueDepth: 4, LagSeconds: 1.5,
				OutOfStep: []proxy.ScopeStatus{{Subtree: ".", Reason: "lag", Since: since, Fix: "a resync from bazil, now"},
					{Subtree: "src", Reason: "diverged", Since: since, Held: "write_file src/a: gofuse holds what bazil acknowledged", Fix: "an operator"}}}}})
	for _, want := range []string{`(?m)^phase +shadow$`, `(?m)^rolled back +true$`,
		`(?m)^window +now +before the rollback at 2026-01-02T03:04:05Z +trigger$`,
		`(?m)^divergence +0\.000% of 40 compared, cusum 0\.0 +0\.800% of 856 compared, cusum 12\.5 +0\.10%$`,
		`(?m)^candidate errors +0\.000% of 0 ops, cusum 0\.0 +0\.000% of 900 ops, cusum 0\.0 +1\.00%$`,
		`(?m)^coverage \(window\) +100\.0% of 40 ops compared +95\.1% of 900 ops compared +advance at 95% or more$`,
		`(?m)^last decision +2026-01-02T03:04:05Z rollback +divergence -> 0%: divergence rate 0\.8%$`,
		`(?m)^ops / compared / divergent +10 / 8 / 1$`,
		`(?m)^coverage +80\.0% of ops compared \(not compared: stale 2\)$`,
		`(?m)^bridge bazil \(primary\) +store of record +queue 0, lag 0\.00s$`,
		`(?m)^bridge gofuse \(shadow\) +OUT OF STEP: lag +queue 4, lag 1\.50s$`,
		`(?m)^  \. +lag since 2026-01-02T03:00:00Z +fix: a resync from bazil, now$`,
		`(?m)^  src +HELD: write_file src/a: gofuse holds what bazil acknowledged since 2026-01-02T03:00:00Z +fix: an operator$`,
		`(?m)^latency vs primary, stat +5\.00x \(5ms / 1ms\), z 9\.5 +\(trigger at 2x and z 5; 50 / 450 served ops\)$`} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("status does not match %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	WriteStatus(&out, rollout.Status{}, nil)
	if regexp.MustCompile(`ops / compared|last decision|before the`).MatchString(out.String()) {
		t.Errorf("no proxy and no decision, yet:\n%s", out.String())
	}
}

func TestRolloutRows(t *testing.T) {
	rows := RolloutRows(rolledBack())
	if len(rows) != 7 || rows[0] != (KV{Key: "phase", Value: "shadow"}) ||
		rows[5].Value != "2026-01-02T03:04:05Z rollback (divergence): weight 10% -> 0%: divergence rate 0.8%" ||
		rows[6] != (KV{Key: "window before the rollback", Value: "divergence 0.800% of 856 compared, candidate errors 0.000% of 900 ops, coverage 95.1% of 900 ops"}) {
		t.Errorf("%+v", rows)
	}
}
