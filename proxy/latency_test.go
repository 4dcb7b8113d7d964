package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/rollout"
)

// slowBridge is a storeBridge whose ops take extra time by kind: a FUSE
// library's latency, injected.
type slowBridge struct {
	*storeBridge
	delay map[fsop.Kind]time.Duration // read-only once the proxy runs
}

func (b *slowBridge) Exec(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
	if d := b.delay[op.Kind]; d > 0 {
		time.Sleep(d)
	}
	return b.storeBridge.Exec(ctx, op)
}

// rolloutRun is one run of a canary: ops until the controller rolled
// back (0 if it did not), and its last status.
type rolloutRun struct {
	ops     int64
	trigger string
	status  rollout.Status
}

// runCanary sends up to n ops (stat, read, write, chmod over 400 files)
// from 8 clients through a real proxy at canary weight with a real
// rollout controller, and counts the ops the controller observed until it
// rolled back. Both bridges' stat takes 1 ms; slow (if set) is the
// candidate's stat time, corrupt (if set) the fraction of the candidate's
// stat results given a wrong mode.
func runCanary(t *testing.T, n int64, slow time.Duration, corrupt float64) rolloutRun {
	t.Helper()
	pb := &slowBridge{newStoreBridge(), map[fsop.Kind]time.Duration{fsop.Stat: time.Millisecond}}
	sb := &slowBridge{newStoreBridge(), map[fsop.Kind]time.Duration{fsop.Stat: time.Millisecond}}
	if slow > 0 {
		sb.delay[fsop.Stat] = slow
	}
	if corrupt > 0 {
		// Both bridges pay storeBridge's cost of an inject hook (it
		// renders each result twice), so the corruption alone differs.
		pb.inject = func(*fsop.Op, *fsop.Result) bool { return false }
		sb.inject = func(op *fsop.Op, res *fsop.Result) bool {
			if op.Kind == fsop.Stat && res.Stat != nil && sb.rand(100000) < int(corrupt*100000) {
				a := *res.Stat
				a.Mode ^= 0o004
				res.Stat = &a
			}
			return false
		}
	}
	th := rollout.DefaultThresholds()
	if corrupt > 0 {
		// The divergence run measures the divergence trigger alone: on a
		// loaded machine the candidate's served writes, which wait for its
		// mirror queue, can pass the latency trigger's thresholds first
		// (seen once in CI beside other test runs: write_file 7x, z 5.3).
		th.LatencyMinDelta = time.Hour
	}
	ctrl, err := rollout.New(rollout.Config{Initial: rollout.PhaseWeight[rollout.PhaseCanary], Registerer: prometheus.NewRegistry(),
		Thresholds: th, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var armed atomic.Bool
	var seen, at atomic.Int64
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb, ReadbackRate: 0.1, Route: CandidateRoute(ctrl.ServesCandidate),
		Observe: func(o rollout.Observation) {
			ctrl.Observe(o)
			if armed.Load() && o.Op != "" {
				if k := seen.Add(1); ctrl.Weight() == 0 {
					at.CompareAndSwap(0, k)
				}
			}
		}})
	ctx := context.Background()
	names := make([]string, 400)
	for i := range names {
		names[i] = fmt.Sprintf("f%03d", i)
		if _, err := p.Exec(ctx, &fsop.Op{Kind: fsop.WriteFile, Path: names[i], Data: []byte("content of " + names[i])}); err != nil {
			t.Fatal(err)
		}
	}
	waitIdle(t, p)
	armed.Store(true)
	var issued atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(11, uint64(c)))
			for ctrl.Weight() > 0 && issued.Add(1) <= n {
				name := names[r.IntN(len(names))]
				op := fsop.Op{Kind: fsop.Stat, Path: name}
				switch x := r.IntN(10); {
				case x < 3:
					op = fsop.Op{Kind: fsop.ReadFile, Path: name}
				case x < 5:
					op = fsop.Op{Kind: fsop.WriteFile, Path: name, Data: []byte(fmt.Sprint("data ", r.IntN(1000)))}
				case x < 6:
					op = fsop.Op{Kind: fsop.Chmod, Path: name, Mode: uint32(0o600 + r.IntN(0o100))}
				}
				if _, err := p.Exec(ctx, &op); err != nil {
					t.Error(err)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	waitIdle(t, p)
	run := rolloutRun{ops: at.Load(), status: ctrl.Status()}
	if d := run.status.State.Decision; d != nil {
		run.trigger = d.Trigger
	}
	return run
}

// TestLatencyTriggerWithinDivergenceBudget: a real proxy at canary weight
// (10% of paths served by the candidate). The candidate's stat slowed
// from 1 ms to 5 ms rolls back on latency within the divergence trigger's
// detection budget (5,000 ops: docs/rollout.md); 0.5% divergence, the
// divergence trigger's design rate, measured in the same run for
// comparison; a control run four times as long raises nothing.
func TestLatencyTriggerWithinDivergenceBudget(t *testing.T) {
	const budget = 5000
	// 1.6% of stats (40% of the ops, some answered ENOENT) is about 0.5% of
	// the compared ops.
	div := runCanary(t, 4*budget, 0, 0.016)
	lat := runCanary(t, 4*budget, 5*time.Millisecond, 0)
	ctl := runCanary(t, 4*budget, 0, 0)
	t.Logf("ops observed to rollback: divergence (0.5%%) %d (%s), latency (stat 1 ms -> 5 ms) %d (%s); control over %d ops: %q",
		div.ops, div.trigger, lat.ops, lat.trigger, 4*budget, ctl.trigger)
	for _, r := range []rolloutRun{div, lat} {
		if d := r.status.State.Decision; d != nil {
			t.Logf("%s decision: %s", d.Trigger, d.Reason)
		}
	}
	for _, v := range ctl.status.Latency {
		t.Logf("control: %v", v)
	}
	if div.trigger != rollout.TriggerDivergence || div.ops == 0 {
		t.Errorf("0.5%% divergence: trigger %q after %d ops", div.trigger, div.ops)
	}
	if lat.trigger != rollout.TriggerLatencyRatio || lat.ops == 0 || lat.ops > budget {
		t.Errorf("a 5x stat slowdown: trigger %q after %d ops, want %s within %d", lat.trigger, lat.ops, rollout.TriggerLatencyRatio, budget)
	}
	if ctl.trigger != "" || ctl.status.State.Weight != rollout.PhaseWeight[rollout.PhaseCanary] {
		t.Errorf("control run: %+v", ctl.status.State.Decision)
	}
}

// TestNicedServingIsNoLatencySample: an op the candidate serves while it
// was told it only mirrors (nice 19: it served nothing in the last tick)
// is no latency sample; once it is told it serves, its ops are.
func TestNicedServingIsNoLatencySample(t *testing.T) {
	pb, sb := &prioBridge{storeBridge: newStoreBridge()}, &prioBridge{storeBridge: newStoreBridge()}
	var mu sync.Mutex
	var cand []rollout.Observation // of the ops the candidate served
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb,
		Route: func(op *fsop.Op, _ string) Side {
			if op.Path == "cand" {
				return Shadow
			}
			return Primary
		},
		Observe: func(o rollout.Observation) {
			if o.CandidateServed {
				mu.Lock()
				cand = append(cand, o)
				mu.Unlock()
			}
		}})
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the primary serves all along
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			p.Exec(ctx, &fsop.Op{Kind: fsop.Stat, Path: "."})
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	waitTold := func(mirrorOnly bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if said, m := sb.last(); said && m == mirrorOnly && p.sides[Shadow].yielding.Load() == mirrorOnly {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the candidate was never told mirrorOnly=%v", mirrorOnly)
			}
		}
	}
	waitTold(true)
	p.Exec(ctx, &fsop.Op{Kind: fsop.Stat, Path: "cand"}) // served at nice 19
	waitTold(false)
	p.Exec(ctx, &fsop.Op{Kind: fsop.Stat, Path: "cand"}) // served at full priority
	waitIdle(t, p)
	mu.Lock()
	defer mu.Unlock()
	if len(cand) != 2 || cand[0].Op != "" || cand[1].Op != string(fsop.Stat) || cand[1].ServingTime <= 0 {
		t.Fatalf("observations of the candidate's two ops: %+v, want the first without a latency sample, the second with one", cand)
	}
}
