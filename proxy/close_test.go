package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// TestCloseWithPendingResync: Close returns while a resync's barrier still
// waits behind an op that has not finished on the source bridge.
func TestCloseWithPendingResync(t *testing.T) {
	pb, sb := newStoreBridge(), newStoreBridge()
	pb.gate = make(chan struct{})
	t.Cleanup(func() { close(pb.gate) })
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb, ReadbackRate: -1})
	go p.Exec(context.Background(), &fsop.Op{Kind: fsop.Mkdir, Path: "d", Mode: 0o755}) // held by the gate
	time.Sleep(50 * time.Millisecond)
	p.mu.Lock()
	p.markStale(p.sides[Shadow], "test", p.seqNo)
	p.mu.Unlock()
	time.Sleep(300 * time.Millisecond) // the resync loop admits the barrier, behind the mkdir

	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs while a resync barrier waits behind an op in flight")
	}
}
