package proxy

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

func TestParseShare(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		auto bool
		ok   bool
	}{
		{"auto", 1, true, true}, {"", 1, true, true}, {"1", 1, false, true}, {"0.25", 0.25, false, true},
		{"25%", 0.25, false, true}, {"0", 0, false, false}, {"1.5", 0, false, false}, {"-1", 0, false, false},
		{"half", 0, false, false}, {"NaN", 0, false, false},
	} {
		got, auto, err := ParseShare(c.in)
		if (err == nil) != c.ok || got != c.want || auto != c.auto {
			t.Errorf("ParseShare(%q) = %v, %v, %v; want %v, %v, ok %v", c.in, got, auto, err, c.want, c.auto, c.ok)
		}
	}
}

// splitDirs returns the directories of ds in and out of share.
func splitDirs(ds []string, share float64) (in, out []string) {
	for _, d := range ds {
		if shareOf(d) < share {
			in = append(in, d)
		} else {
			out = append(out, d)
		}
	}
	return in, out
}

// TestMirrorShareComparesItsSubtreesWhole: with --mirror-share 0.5 every
// op in a directory in the share is compared and every other one is
// sampled out, nothing else; a rename across the share's edge puts the
// name it reaches inside out of step; raising the share to 1 resyncs the
// names changed outside it, after which everything is compared and the
// stores are equal.
func TestMirrorShareComparesItsSubtreesWhole(t *testing.T) {
	pb, sb := newStoreBridge(), newStoreBridge()
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb, MirrorShare: 0.5})
	ds, fs := treeNames(32, 8)
	in, out := splitDirs(ds, 0.5)
	if len(in) < 4 || len(out) < 4 {
		t.Fatalf("the hash puts %d of %d directories in a 0.5 share: pick other names", len(in), len(ds))
	}
	setupTree(t, p, ds, fs)
	runTree(t, p, 8, 8000, ds, fs, 0, 1)
	ctx := context.Background()
	for _, op := range []fsop.Op{
		{Kind: fsop.Rename, Path: out[0] + "/f00", To: in[0] + "/from-out"},
		{Kind: fsop.Rename, Path: in[1] + "/f01", To: out[1] + "/from-in"},
	} {
		if res, err := p.Exec(ctx, &op); err != nil || res.Errno != "" {
			t.Fatalf("%s %s -> %s: %v %s", op.Kind, op.Path, op.To, err, res.Errno)
		}
	}
	waitIdle(t, p)
	waitFor(t, "the names renamed across the share's edge resynced", func() bool { return p.Status().Bridges[Shadow].Quarantined == 0 })
	for _, path := range []string{in[0] + "/from-out", in[1] + "/f01", in[1]} {
		op := fsop.Op{Kind: fsop.Stat, Path: path}
		if path == in[1] {
			op.Kind = fsop.Readdir
		}
		if _, err := p.Exec(ctx, &op); err != nil {
			t.Fatal(err)
		}
	}
	waitIdle(t, p)
	v := p.Stats()
	t.Logf("share 0.5: %d directories of %d in it; ops %d compared %d skipped %v divergent %d resyncs %d", len(in), len(ds), v.Ops, v.Compared, v.Skipped, v.Divergent, v.Resyncs)
	sum := v.Compared
	for reason, n := range v.Skipped {
		sum += n
		if reason != SkipSampled && n != 0 {
			t.Errorf("%d ops skipped as %s: every op in the share must be compared", n, reason)
		}
	}
	if sum != v.Ops || v.Pending != 0 {
		t.Errorf("compared %d + skipped %v = %d, want the %d ops served", v.Compared, v.Skipped, sum, v.Ops)
	}
	if v.Skipped[SkipSampled] == 0 || v.Coverage() != 1 || v.Divergent != 0 {
		t.Errorf("sampled out %d, coverage %.4f, divergent %d: want some, 1, 0 (%s)", v.Skipped[SkipSampled], v.Coverage(), v.Divergent, firstExample(v))
	}

	sampled := v.Skipped[SkipSampled]
	p.mu.Lock()
	p.setShare(p.sides[Shadow], 1, "the test")
	p.mu.Unlock()
	waitFor(t, "the names changed outside the share resynced", func() bool { return p.Status().Bridges[Shadow].Quarantined == 0 })
	runTree(t, p, 8, 4000, ds, fs, 0, 2)
	waitIdle(t, p)
	v = p.Stats()
	if v.Skipped[SkipSampled] != sampled || v.Divergent != 0 || v.Compared+v.Skipped[SkipSampled] != v.Ops {
		t.Errorf("after the share went to 1: ops %d compared %d skipped %v divergent %d: want every new op compared, none divergent (%s)",
			v.Ops, v.Compared, v.Skipped, v.Divergent, firstExample(v))
	}
	if a, b := dump(t, pb), dump(t, sb); a != b {
		t.Errorf("the stores differ after the share went back to 1:\n%s\nvs\n%s", a, b)
	}
}

// TestMirrorShareAdapts: a shadow that runs 1,000 ops a second behind
// clients that send several times that. With --mirror-share auto the
// share falls until the shadow keeps up, the shadow never goes out of
// step as a whole, every op in the share is compared, and once the load
// stops the share climbs back to 1 with the names changed meanwhile
// resynced.
func TestMirrorShareAdapts(t *testing.T) {
	pb, sb := newStoreBridge(), newStoreBridge()
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb, MirrorShareAuto: true, ShareRaiseAfter: 300 * time.Millisecond,
		MirrorMaxOps: 10000, MirrorMaxLag: 20 * time.Second})
	ds, fs := treeNames(64, 4)
	setupTree(t, p, ds, fs)
	waitIdle(t, p)
	sb.slow = time.Millisecond

	const clients, perClient = 8, 2500
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(7, uint64(c)))
			for i := 0; i < perClient; i++ {
				op := treeOp(r, ds, fs, 0)
				if _, err := p.Exec(context.Background(), &op); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(500 * time.Microsecond) // a client's pace: together several times the shadow's
			}
		}(c)
	}
	wg.Wait()
	waitIdle(t, p)
	v := p.Stats()
	t.Logf("ops %d compared %d skipped %v divergent %d; share fell to %.4f; mirror queue max %d, lag max %.2fs",
		v.Ops, v.Compared, v.Skipped, v.Divergent, v.MinMirrorShare, v.MaxQueueDepth, v.MaxLagSeconds)
	if v.MinMirrorShare >= 1 || v.Skipped[SkipSampled] == 0 {
		t.Fatalf("the share never fell (min %.3f, sampled out %d): the shadow kept up, so the test proves nothing", v.MinMirrorShare, v.Skipped[SkipSampled])
	}
	if v.Skipped[SkipStale] != 0 || v.Divergent != 0 {
		t.Errorf("stale %d, divergent %d: want the share to keep the shadow within its bounds, and no divergence (%s)", v.Skipped[SkipStale], v.Divergent, firstExample(v))
	}
	if v.Coverage() < 0.99 {
		t.Errorf("%.2f%% of the ops in the share compared (skipped %v), want 99%% or more", 100*v.Coverage(), v.Skipped)
	}
	sb.slow = 0
	waitFor(t, "the share back at 1 and its names resynced", func() bool {
		st := p.Status()
		return st.MirrorShare == 1 && st.Bridges[Shadow].Quarantined == 0
	})
	waitIdle(t, p)
	if a, b := dump(t, pb), dump(t, sb); a != b {
		t.Errorf("the stores differ once the share is back at 1:\n%s\nvs\n%s", a, b)
	}
}

// TestCanaryServesOutsideTheShareFromTheRecord: in canary, an op the
// candidate would serve but that lies outside the mirror share is served
// by the store of record (the candidate does not have that subtree).
func TestCanaryServesOutsideTheShareFromTheRecord(t *testing.T) {
	pb, sb := newStoreBridge(), newStoreBridge()
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb, MirrorShare: 0.5,
		Route: func(*fsop.Op, string) Side { return Shadow }})
	ds, fs := treeNames(16, 2)
	in, out := splitDirs(ds, 0.5)
	setupTree(t, p, ds, fs)
	waitIdle(t, p)
	before := p.Stats().ServedBy
	ctx := context.Background()
	for _, path := range []string{out[0] + "/f00", in[0] + "/f00"} {
		res, err := p.Exec(ctx, &fsop.Op{Kind: fsop.ReadFile, Path: path})
		if err != nil || res.Errno != "" || string(res.Data) != "initial "+path {
			t.Fatalf("read %s: %v %s %q", path, err, res.Errno, res.Data)
		}
	}
	waitIdle(t, p)
	v := p.Stats()
	if v.Divergent != 0 || v.ServedBy["gofuse"]-before["gofuse"] != 1 || v.ServedBy["bazil"]-before["bazil"] != 1 {
		t.Errorf("served by %v (before the reads %v), divergent %d: want the candidate to serve the read inside the share, the record the other", v.ServedBy, before, v.Divergent)
	}
}
