package proxy

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// sumOutcomes is Compared plus every skip reason.
func sumOutcomes(v StatsView) int64 {
	n := v.Compared
	for _, c := range v.Skipped {
		n += c
	}
	return n
}

// TestEveryOpAccounted: every op served ends compared or skipped with a
// reason, exactly once, across a resync in the middle of the traffic and
// a shutdown with mirrored ops still in flight.
func TestEveryOpAccounted(t *testing.T) {
	pb, sb := newStoreBridge(), newStoreBridge()
	pb.jitter, sb.jitter = 100*time.Microsecond, 300*time.Microsecond
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb})

	// Traffic, with a resync of the shadow half-way.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		workload(t, p, 8, 300, overlapping, 3)
	}()
	waitFor(t, "half the traffic served", func() bool { return p.Stats().Ops >= 8*300/2 })
	if err := p.Resync(Shadow); err != nil {
		t.Fatalf("resync: %v", err)
	}
	wg.Wait()
	waitIdle(t, p)
	v := p.Stats()
	if v.Resyncs == 0 {
		t.Fatal("no resync happened: the test did not cross one")
	}
	if got := sumOutcomes(v); got != v.Ops || v.Pending != 0 {
		t.Fatalf("after the traffic: %d ops served, %d accounted (compared %d, skipped %v), %d pending", v.Ops, got, v.Compared, v.Skipped, v.Pending)
	}

	// Shutdown: the shadow stops answering, so the mirrored ops wait.
	sb.gate = make(chan struct{})
	defer close(sb.gate)
	const held = 20
	for i := 0; i < held; i++ {
		op := fsop.Op{Kind: fsop.WriteFile, Path: "late", Data: []byte{byte(i)}}
		if _, err := p.Exec(context.Background(), &op); err != nil {
			t.Fatal(err)
		}
	}
	if v := p.Stats(); v.Pending < held {
		t.Fatalf("%d ops pending with the shadow held, want at least %d", v.Pending, held)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	v = p.Stats()
	if got := sumOutcomes(v); got != v.Ops || v.Pending != 0 {
		t.Fatalf("after Close: %d ops served, %d accounted (compared %d, skipped %v), %d pending", v.Ops, got, v.Compared, v.Skipped, v.Pending)
	}
	if v.Skipped[SkipShutdown] < held {
		t.Fatalf("%d ops accounted as in flight at shutdown, want at least %d: %v", v.Skipped[SkipShutdown], held, v.Skipped)
	}
}

// waitFor polls cond (a counter or state of the proxy) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
