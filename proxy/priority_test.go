package proxy

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// prioBridge is a storeBridge that records what the proxy says of its
// priority.
type prioBridge struct {
	*storeBridge
	mu   sync.Mutex
	told []bool // mirrorOnly, in order
}

func (b *prioBridge) SetPriority(_ context.Context, mirrorOnly bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.told = append(b.told, mirrorOnly)
	return nil
}

func (b *prioBridge) last() (said, mirrorOnly bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.told) == 0 {
		return false, false
	}
	return true, b.told[len(b.told)-1]
}

// TestPriorityFollowsServing: while the primary serves, the shadow is told
// it only mirrors and the primary that it serves; when the routing sends
// everything to the shadow, the two swap. An idle proxy tells nothing.
func TestPriorityFollowsServing(t *testing.T) {
	pb, sb := &prioBridge{storeBridge: newStoreBridge()}, &prioBridge{storeBridge: newStoreBridge()}
	var mu sync.Mutex
	serving := Primary
	route := func(*fsop.Op, string) Side { mu.Lock(); defer mu.Unlock(); return serving }
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb, Route: route})

	time.Sleep(3 * priorityTick)
	if said, _ := sb.last(); said {
		t.Fatalf("an idle proxy set a priority")
	}
	waitFor := func(want [2]bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := p.Exec(context.Background(), &fsop.Op{Kind: fsop.Stat, Path: "."}); err != nil {
				t.Fatal(err)
			}
			ps, pm := pb.last()
			ss, sm := sb.last()
			if ps && ss && pm == want[0] && sm == want[1] {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("priorities: primary %v, shadow %v; want mirror-only %v", pb.told, sb.told, want)
	}
	waitFor([2]bool{false, true})
	mu.Lock()
	serving = Shadow
	mu.Unlock()
	waitFor([2]bool{true, false})
}
