package rollout

import (
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// simulate feeds n observations with the given true rate of one signal to
// a controller at canary weight and returns the op at which it rolled
// back, or -1.
func simulate(t testing.TB, signal string, rate float64, n int, seed uint64) int {
	c, err := New(Config{Initial: 0.10, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 17))
	for i := 1; i <= n; i++ {
		bad := r.Float64() < rate
		o := Observation{Compared: true, CandidateRan: true, CandidateTime: time.Millisecond}
		switch signal {
		case TriggerDivergence:
			o.Divergent = bad
		case TriggerErrors:
			o.CandidateFailed = bad
		case TriggerLatency:
			if bad {
				o.CandidateTime = 1500 * time.Millisecond
			}
		}
		c.Observe(o)
		if c.Weight() == 0 {
			if got := c.Status().State.Decision.Trigger; got != signal {
				t.Fatalf("seed %d: rolled back on %s, injected only %s", seed, got, signal)
			}
			return i
		}
	}
	return -1
}

// TestTriggersAreSound is the simulation the rollout's numbers come from:
// for each trigger, 100 seeds at a rate well under its threshold over
// 200,000 ops (false rollbacks), and 100 seeds at a rate well over it
// (rollback within 5,000 ops).
func TestTriggersAreSound(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	tests := []struct {
		trigger          string
		under, over      float64
		maxFalse, minHit int
	}{
		{TriggerDivergence, 0.0005, 0.005, 1, 99},
		{TriggerErrors, 0.005, 0.02, 1, 99},
		{TriggerLatency, 0.005, 0.02, 1, 99},
	}
	for _, tt := range tests {
		t.Run(tt.trigger, func(t *testing.T) {
			falses := 0
			for seed := uint64(0); seed < 100; seed++ {
				if simulate(t, tt.trigger, tt.under, 200000, seed) > 0 {
					falses++
				}
			}
			hits, worst, total := 0, 0, 0
			for seed := uint64(1000); seed < 1100; seed++ {
				if at := simulate(t, tt.trigger, tt.over, 5000, seed); at > 0 {
					hits++
					worst = max(worst, at)
					total += at
				}
			}
			t.Logf("%s: %d/100 false rollbacks at %.2f%% over 200000 ops; %d/100 rollbacks within 5000 ops at %.2f%% (mean %d ops, worst %d)",
				tt.trigger, falses, 100*tt.under, hits, 100*tt.over, total/max(hits, 1), worst)
			if falses > tt.maxFalse || hits < tt.minHit {
				t.Fatalf("unsound: %d false rollbacks (max %d), %d detections (min %d)", falses, tt.maxFalse, hits, tt.minHit)
			}
		})
	}
}

// TestEarlyDivergenceIsNotARollback: one divergence in the first ten ops,
// and no data at all, leave the weight alone.
func TestEarlyDivergenceIsNotARollback(t *testing.T) {
	c, _ := New(Config{Initial: 0.10, Logger: quiet()})
	for i := 0; i < 10; i++ {
		c.Observe(Observation{Compared: true, Divergent: i == 3, CandidateRan: true})
	}
	if c.Weight() != 0.10 {
		t.Fatalf("weight %v after one early divergence", c.Weight())
	}
	// 20 divergences in a row: overwhelming evidence, but under MinSample.
	for i := 0; i < 20; i++ {
		c.Observe(Observation{Compared: true, Divergent: true, CandidateRan: true})
	}
	if c.Weight() != 0.10 {
		t.Fatal("rolled back before the minimum sample")
	}
}

func TestRollbackPersistsAndNeverReadvances(t *testing.T) {
	state := filepath.Join(t.TempDir(), "rollout.json")
	c, err := New(Config{Initial: 0.10, StateFile: state, AdvanceAfter: 100, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; c.Weight() > 0 && i < 100000; i++ {
		c.Observe(Observation{Compared: true, Divergent: i%20 == 0, CandidateRan: true})
	}
	if c.Weight() != 0 {
		t.Fatal("5% divergence never rolled back")
	}
	if got := testutil.ToFloat64(c.mRollbacks.WithLabelValues(TriggerDivergence)); got != 1 {
		t.Fatalf("rollbacks_total{divergence} = %v", got)
	}
	for i := 0; i < 5000; i++ { // healthy again: still no re-advance
		c.Observe(Observation{Compared: true, CandidateRan: true})
	}
	if c.Weight() != 0 {
		t.Fatal("re-advanced after a rollback without an operator")
	}
	again, err := New(Config{Initial: 0.5, StateFile: state, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	st := again.Status().State
	if again.Weight() != 0 || !st.RolledBack || st.Decision == nil || st.Decision.Trigger != TriggerDivergence || st.Decision.Rates.Compared == 0 {
		t.Fatalf("restart did not keep the rollback: %+v", st)
	}
}

func TestAutoAdvance(t *testing.T) {
	c, _ := New(Config{Initial: 0.10, AdvanceAfter: 1000, Logger: quiet()})
	for i := 0; i < 1000; i++ {
		c.Observe(Observation{Compared: true, CandidateRan: true})
	}
	if c.Weight() != 0.50 {
		t.Fatalf("weight %v after 1000 quiet ops, want 0.5", c.Weight())
	}
}

// TestNoAdvanceOnLowCoverage: a quiet window in which few ops were
// compared does not advance the rollout; the same window compared does.
func TestNoAdvanceOnLowCoverage(t *testing.T) {
	c, _ := New(Config{Initial: 0.10, AdvanceAfter: 1000, Logger: quiet()})
	for i := 0; i < 4000; i++ {
		// 3 of 4 ops skipped (stale, quarantined): 25% compared.
		c.Observe(Observation{Compared: i%4 == 0, CandidateRan: true})
	}
	if c.Weight() != 0.10 {
		t.Fatalf("advanced to %v on a window with 25%% of ops compared", c.Weight())
	}
	if cov := c.Status().Rates.Coverage; cov < 0.24 || cov > 0.26 {
		t.Fatalf("coverage %v, want 0.25", cov)
	}
	for i := 0; i < 5000; i++ {
		c.Observe(Observation{Compared: true, CandidateRan: true})
	}
	if c.Weight() != 0.50 {
		t.Fatalf("weight %v once the window was fully compared, want 0.5", c.Weight())
	}
}

func TestRouteIsStableAndWeighted(t *testing.T) {
	c, _ := New(Config{Initial: 0.10, Logger: quiet()})
	n := 0
	for i := 0; i < 20000; i++ {
		key := "src/file" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		a, b := c.ServesCandidate(key), c.ServesCandidate(key)
		if a != b {
			t.Fatal("the same path routed two ways")
		}
		if a {
			n++
		}
	}
	if n < 1700 || n > 2300 {
		t.Fatalf("%d of 20000 paths served by the candidate at weight 0.1", n)
	}
}

func TestAdminAPI(t *testing.T) {
	c, _ := New(Config{Logger: quiet()})
	mux := http.NewServeMux()
	c.Register(mux, "s3cret", func() any { return map[string]int{"ops": 7} }, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	do := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if method == "POST" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"status without token", "GET", "/admin/status", "", "", 401},
		{"status wrong token", "GET", "/admin/status", "nope", "", 401},
		{"promote without token", "POST", "/admin/promote", "", `{"phase":"canary"}`, 401},
		{"rollback without token", "POST", "/admin/rollback", "", "", 401},
		{"status", "GET", "/admin/status", "s3cret", "", 200},
		{"promote bad phase", "POST", "/admin/promote", "s3cret", `{"phase":"everything"}`, 400},
		{"promote bad weight", "POST", "/admin/promote", "s3cret", `{"weight":1.5}`, 400},
		{"promote unknown field", "POST", "/admin/promote", "s3cret", `{"phaze":"canary"}`, 400},
		{"promote canary", "POST", "/admin/promote", "s3cret", `{"phase":"canary","reason":"test"}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, body := do(tt.method, tt.path, tt.token, tt.body); got != tt.want {
				t.Fatalf("%s %s: %d %s, want %d", tt.method, tt.path, got, body, tt.want)
			}
		})
	}
	if c.Weight() != 0.10 {
		t.Fatalf("weight %v after promote canary", c.Weight())
	}
	if code, _ := do("POST", "/admin/rollback?reason=drill", "s3cret", ""); code != 200 || c.Weight() != 0 {
		t.Fatalf("rollback: %d, weight %v", code, c.Weight())
	}
	_, body := do("GET", "/admin/status", "s3cret", "")
	var st AdminStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Rollout.State.Decision.Trigger != TriggerManual || st.Proxy == nil {
		t.Fatalf("status %s (%v)", body, err)
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "rollout.yaml")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	f, err := LoadFile(write("phase: canary\nthresholds:\n  divergence: 0.002\n  p99: 500ms\n  window: 1000\n"))
	if err != nil {
		t.Fatal(err)
	}
	th, _ := f.Apply(DefaultThresholds())
	if w, ok := f.TargetWeight(); !ok || w != 0.10 || th.Divergence != 0.002 || th.P99 != 500*time.Millisecond || th.Window != 1000 {
		t.Fatalf("parsed %+v %+v", f, th)
	}
	f, err = LoadFile(write("thresholds:\n  latency_ratio: 3\n  latency_z: 4\n  latency_min_sample: 100\n  latency_window: 500\n  latency_min_delta: 1ms\n"))
	if err != nil {
		t.Fatal(err)
	}
	if th, _ := f.Apply(DefaultThresholds()); th.LatencyRatio != 3 || th.LatencyZ != 4 || th.LatencyMinSample != 100 || th.LatencyWindow != 500 || th.LatencyMinDelta != time.Millisecond || th.P99 != time.Second {
		t.Fatalf("latency thresholds parsed as %+v", th)
	}
	for _, bad := range []string{"phase: everywhere\n", "weight: 2\n", "thresholds:\n  p99: soon\n", "thresholds:\n  divergence: -1\n", ": not yaml [",
		"thresholds:\n  latency_ratio: 0.9\n", "thresholds:\n  latency_min_sample: 3\n", "thresholds:\n  latency_window: 60\n",
		"thresholds:\n  latency_min_delta: -1ms\n", "thresholds:\n  latency_min_delta: soon\n"} {
		if _, err := LoadFile(write(bad)); err == nil {
			t.Errorf("accepted a bad file: %q", bad)
		}
	}
}
