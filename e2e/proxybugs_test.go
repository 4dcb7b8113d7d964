package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/bridgeclient"
	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

// The tests below are regression tests of four proxy bugs that once made
// false divergences, each reproduced deterministically on real bridges:
// a handle that followed a rename which then failed, a failed read-back
// compared as a state, a change through a handle opened before a resync
// that reached only the serving bridge, and an allowlisted mutation (bazil
// refusing a renameat2 go-fuse performs) that left the trees apart.

// bugShadow forwards to a real bridge, optionally delaying pwrite or
// failing read-backs (State) like a bridge that went away.
type bugShadow struct {
	*bridgeclient.Client
	delayPwrite atomic.Bool
	pwriteLate  atomic.Bool // a delayed pwrite is under way on the shadow
	failState   atomic.Bool
}

func (s *bugShadow) State(ctx context.Context, path string, off, n int64) (fsop.Result, error) {
	if s.failState.Load() {
		return fsop.Result{}, fmt.Errorf("%w: connection lost (injected)", bridgeclient.ErrUnavailable)
	}
	return s.Client.State(ctx, path, off, n)
}

func (s *bugShadow) Exec(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
	if op.Kind == fsop.Pwrite && s.delayPwrite.Load() {
		s.pwriteLate.Store(true)
		time.Sleep(300 * time.Millisecond)
	}
	return s.Client.Exec(ctx, op)
}

// bugProxy is an in-process proxy over a real bazil primary and a real
// go-fuse shadow behind bugShadow, with no resync during the test.
type bugProxy struct {
	t      *testing.T
	p      *proxy.Proxy
	shadow *bugShadow
	mu     sync.Mutex
	divs   []proxy.Divergence
}

func newBugProxy(t *testing.T) *bugProxy {
	t.Helper()
	requireE2E(t)
	root := testRoot(t)
	prim := startBridge(t, root, "bazil", "primary", "127.0.0.1:0")
	shad := startBridge(t, root, "gofuse", "shadow", "127.0.0.1:0")
	pc, err := bridgeclient.New(prim.url(), bridgeclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := bridgeclient.New(shad.url(), bridgeclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := &bugProxy{t: t, shadow: &bugShadow{Client: sc}}
	b.p, err = proxy.New(proxy.Config{Primary: pc, Shadow: b.shadow, PrimaryName: "bazil", ShadowName: "gofuse",
		ResyncInterval: time.Hour, OnDivergence: func(d proxy.Divergence) {
			b.mu.Lock()
			b.divs = append(b.divs, d)
			b.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.p.Close(); pc.Close(); sc.Close() })
	if err := b.p.Resync(proxy.Shadow); err != nil { // and none for an hour
		t.Fatal(err)
	}
	return b
}

func (b *bugProxy) exec(op fsop.Op) fsop.Result {
	res, err := b.p.Exec(context.Background(), &op)
	if err != nil {
		b.t.Fatalf("%s: %v", opString(op), err)
	}
	return res
}

// drain waits until every op sent so far is compared or accounted.
func (b *bugProxy) drain() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.p.Drain(ctx); err != nil {
		b.t.Fatalf("the proxy did not account every op within a minute: %v (%+v)", err, b.p.Status())
	}
}

// divergences waits until every op sent is compared or accounted and
// returns the divergences outside the allowlist.
func (b *bugProxy) divergences() []proxy.Divergence {
	b.drain()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []proxy.Divergence
	for _, d := range b.divs {
		if d.Class != compare.ClassAllowed {
			out = append(out, d)
			b.t.Logf("divergence %s on %s: %s / %s", d.Class, opString(d.Op), outcomeString(d.Serving), outcomeString(d.Mirror))
		}
	}
	return out
}

// TestProxyBugHandleFollowsFailedRename: admit (proxy/proxy.go) moves every
// handle under a rename's source to its destination when the rename is
// admitted, before anyone knows whether it succeeds. After a failed rename
// the handle's ops are ordered by a name that is not its file's, so a
// pwrite through it and a truncate of the file's real name run in
// different orders on the two bridges.
func TestProxyBugHandleFollowsFailedRename(t *testing.T) {
	b := newBugProxy(t)
	b.exec(fsop.Op{Kind: fsop.Mkdir, Path: "a", Mode: 0o755})
	b.exec(fsop.Op{Kind: fsop.WriteFile, Path: "a/f", Data: []byte("0123456789")})
	b.exec(fsop.Op{Kind: fsop.Open, Path: "a/f", Flags: unix.O_RDWR, Handle: 77})
	if res := b.exec(fsop.Op{Kind: fsop.Rename, Path: "a", To: "missing/c"}); res.Errno != "ENOENT" {
		t.Fatalf("rename into a missing directory: %q, want ENOENT", res.Errno)
	}
	b.shadow.delayPwrite.Store(true) // the shadow runs the pwrite late
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.exec(fsop.Op{Kind: fsop.Pwrite, Handle: 77, Offset: 100, Data: []byte("xxxxxxxxxx")})
	}()
	// The truncate is admitted after the pwrite, while the shadow still
	// runs it: else the test would pass without checking the order.
	waitFor(t, "the pwrite under way on the shadow", 10*time.Second, b.shadow.pwriteLate.Load)
	b.exec(fsop.Op{Kind: fsop.Truncate, Path: "a/f", Size: 5}) // conflicts with the pwrite: must wait for it
	<-done
	b.exec(fsop.Op{Kind: fsop.Stat, Path: "a/f"})
	if d := b.divergences(); len(d) != 0 {
		t.Errorf("%d false divergences: the truncate overtook the pwrite on the shadow", len(d))
	}
}

// TestProxyBugReadbackErrorCompared: runReadback (proxy/diverge.go) drops
// the error of each read-back op; a read-back the mirror bridge could not
// run (it died, it timed out) is compared as an empty result and counted
// as a state divergence, instead of a shadow error.
func TestProxyBugReadbackErrorCompared(t *testing.T) {
	b := newBugProxy(t)
	b.shadow.failState.Store(true)
	b.exec(fsop.Op{Kind: fsop.WriteFile, Path: "z", Data: []byte("hello")})
	b.drain() // the read-back ran (and failed) on the shadow
	b.shadow.failState.Store(false)
	if d := b.divergences(); len(d) != 0 {
		t.Errorf("%d divergences from a read-back that failed on the shadow", len(d))
	}
}

// TestProxyBugStaleHandleMutatesPrimaryOnly: after a resync, ops on
// handles opened before it are not mirrored (the shadow lost them), and
// are served anyway: a pwrite through such a handle changes the primary
// alone, and nothing quarantines or resyncs the file, so every later
// comparison of it diverges.
func TestProxyBugStaleHandleMutatesPrimaryOnly(t *testing.T) {
	b := newBugProxy(t)
	b.exec(fsop.Op{Kind: fsop.WriteFile, Path: "f", Data: []byte("0123456789")})
	b.exec(fsop.Op{Kind: fsop.Open, Path: "f", Flags: unix.O_RDWR, Handle: 88})
	if err := b.p.Resync(proxy.Shadow); err != nil {
		t.Fatal(err)
	}
	b.exec(fsop.Op{Kind: fsop.Pwrite, Handle: 88, Offset: 100, Data: []byte("xx")})
	b.exec(fsop.Op{Kind: fsop.Stat, Path: "f"})
	b.exec(fsop.Op{Kind: fsop.ReadFile, Path: "f"})
	if d := b.divergences(); len(d) != 0 {
		t.Errorf("%d divergences after a pwrite through a handle opened before the resync", len(d))
	}
}

// TestProxyBugAllowedMutationDrift: bazil answers renameat2 with
// RENAME_NOREPLACE by EINVAL (allowlisted), go-fuse renames. diverge
// (proxy/diverge.go) quarantines and resyncs only after a divergence that
// is not allowed, so the trees stay different and the next ops on both
// names diverge outside the allowlist. Their divergence records also miss
// what led to them: Recent lists the ops recorded under the op's own
// paths, so the write_file of the rename's source is not in the stat's
// Recent, and `lighthouse replay` of that line does not reproduce it.
func TestProxyBugAllowedMutationDrift(t *testing.T) {
	b := newBugProxy(t)
	b.exec(fsop.Op{Kind: fsop.WriteFile, Path: "x", Data: []byte("hi")})
	b.exec(fsop.Op{Kind: fsop.Rename, Path: "x", To: "y", Flags: fsop.RenameNoReplace})
	b.drain()
	b.exec(fsop.Op{Kind: fsop.Stat, Path: "y"})
	b.exec(fsop.Op{Kind: fsop.ReadFile, Path: "x"})
	d := b.divergences()
	if len(d) != 0 {
		t.Errorf("%d divergences after an allowlisted renameat2", len(d))
	}
	for _, x := range d {
		if x.Op.Kind != fsop.Stat {
			continue
		}
		var recent []string
		for _, op := range x.Recent {
			recent = append(recent, opString(op))
		}
		if len(x.Recent) < 2 {
			t.Errorf("the stat's divergence record lists %d recent ops %v: the write_file of x that the rename moved is missing", len(x.Recent), recent)
		}
	}
}
