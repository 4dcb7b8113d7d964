package proxy

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// nullBridge answers every op with success and keeps nothing: the proxy's
// own memory is all that grows.
type nullBridge struct{}

func (nullBridge) Exec(_ context.Context, op *fsop.Op) (fsop.Result, error) {
	return fsop.Result{N: int64(len(op.Data))}, nil
}
func (nullBridge) State(context.Context, string, int64, int64) (fsop.Result, error) {
	return fsop.Result{}, nil
}
func (nullBridge) SnapshotSubtree(context.Context, string) ([]byte, error) { return nil, nil }
func (nullBridge) RestoreSubtree(context.Context, string, []byte) error    { return nil }

// TestProxyMemoryBounded: 64 KiB writes to 8,000 distinct paths, three
// rounds (issue 13, item 2: the heap grew to 696 MiB after 8k ops, 1.4 GiB
// after 16k and 2.8 GiB after 24k, because the op history kept every
// payload). The history keeps digests and 4 KiB heads within a 32 MiB
// budget, so the live heap stays under 96 MiB after each round.
func TestProxyMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1.5 GiB through the proxy")
	}
	p, _ := newTestProxy(t, Config{Primary: nullBridge{}, Shadow: nullBridge{}, ReadbackRate: -1})
	data := make([]byte, 64<<10)
	const paths = 8000
	var heap [3]uint64
	for round := range 3 {
		for i := range paths {
			op := fsop.Op{Kind: fsop.WriteFile, Path: fmt.Sprintf("d%02d/f%04d", i%100, i), Data: data}
			if _, err := p.Exec(context.Background(), &op); err != nil {
				t.Fatal(err)
			}
		}
		waitIdle(t, p)
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		heap[round] = m.HeapAlloc
	}
	t.Logf("live heap after %d, %d, %d writes of 64 KiB: %d, %d, %d MiB", paths, 2*paths, 3*paths, heap[0]>>20, heap[1]>>20, heap[2]>>20)
	for i, h := range heap {
		if h > 96<<20 {
			t.Fatalf("live heap after %d writes: %d MiB, want under 96 MiB", (i+1)*paths, h>>20)
		}
	}
}
