package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// TestCloseWithPendingResync: Close returns once its grace is over while a
// resync's barrier still waits behind an op that has not finished on the
// source bridge, and accounts the ops it gave up on.
func TestCloseWithPendingResync(t *testing.T) {
	pb, sb := newStoreBridge(), newStoreBridge()
	pb.gate = make(chan struct{})
	t.Cleanup(func() { close(pb.gate) })
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb, ReadbackRate: -1, CloseGrace: 50 * time.Millisecond})
	go p.Exec(context.Background(), &fsop.Op{Kind: fsop.Mkdir, Path: "d", Mode: 0o755}) // held by the gate
	waitFor(t, "the mkdir admitted", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.seqNo == 1
	})
	p.mu.Lock()
	p.markStale(p.sides[Shadow], "test", p.seqNo)
	p.mu.Unlock()
	waitFor(t, "the resync's barrier admitted behind the mkdir", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.sides[Shadow].settled) > 0
	})

	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs while a resync barrier waits behind an op in flight")
	}
}

// TestCloseWaitsForMirroredOps: ops whose mirror is still running when
// Close is called are compared, not given up on, within the grace.
func TestCloseWaitsForMirroredOps(t *testing.T) {
	pb, sb := newStoreBridge(), newStoreBridge()
	sb.gate = make(chan struct{})
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb, ReadbackRate: -1, CloseGrace: time.Minute})
	for _, d := range []string{"a", "b", "c"} {
		if _, err := p.Exec(context.Background(), &fsop.Op{Kind: fsop.Mkdir, Path: d, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	close(sb.gate) // the mirror finishes while Close waits
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := p.Stats(); v.Compared != 3 || v.Skipped[SkipShutdown] != 0 {
		t.Fatalf("compared %d, skipped at shutdown %d: want 3 and 0", v.Compared, v.Skipped[SkipShutdown])
	}
}
