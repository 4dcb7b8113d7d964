package proxy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
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

func TestUnitOf(t *testing.T) {
	for _, c := range []struct {
		path  string
		depth int
		unit  string
		above bool
		ups   string // ancestorsAbove, joined
	}{
		{".", 2, ".", true, "."},
		{"work", 2, "work", true, ". work"},
		{"work/p1", 2, "work/p1", false, ". work"},
		{"work/p1/a/b", 2, "work/p1", false, ". work"},
		{"work/p1/a/b", 1, "work", false, "."},
		{"top", 1, "top", false, "."},
		{"a/b/c", 3, "a/b/c", false, ". a a/b"},
		{"a/b", 3, "a/b", true, ". a a/b"},
	} {
		unit, above := unitOf(c.path, c.depth)
		var ups []string
		ancestorsAbove(c.path, c.depth, func(a string) bool { ups = append(ups, a); return false })
		if unit != c.unit || above != c.above || strings.Join(ups, " ") != c.ups {
			t.Errorf("unitOf(%q, %d) = %q, %v, above it %q; want %q, %v, %q", c.path, c.depth, unit, above, ups, c.unit, c.above, c.ups)
		}
	}
}

// TestMirrorShareUnitsBelowAProjectDirectory: with the default depth of 2,
// a tree under one directory (work/pNN/...) is shared by its
// subdirectories. work and the root are compared while no unit below them
// changed outside the share, and not after (their entries differ).
func TestMirrorShareUnitsBelowAProjectDirectory(t *testing.T) {
	pb, sb := newStoreBridge(), newStoreBridge()
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb, MirrorShare: 0.5})
	ctx := context.Background()
	exec := func(op fsop.Op) {
		t.Helper()
		if res, err := p.Exec(ctx, &op); err != nil || res.Errno != "" {
			t.Fatalf("%s %s: %v %s", op.Kind, op.Path, err, res.Errno)
		}
	}
	var pkgs []string
	for i := 0; i < 16; i++ {
		pkgs = append(pkgs, fmt.Sprintf("work/p%02d", i))
	}
	in, out := splitDirs(pkgs, 0.5)
	if len(in) < 2 || len(out) < 2 {
		t.Fatalf("the hash puts %d of %d packages in a 0.5 share: pick other names", len(in), len(pkgs))
	}
	exec(fsop.Op{Kind: fsop.Mkdir, Path: "work", Mode: 0o755})
	exec(fsop.Op{Kind: fsop.Readdir, Path: "work"})
	for _, d := range pkgs {
		exec(fsop.Op{Kind: fsop.Mkdir, Path: d, Mode: 0o755})
	}
	exec(fsop.Op{Kind: fsop.WriteFile, Path: in[0] + "/a.go", Data: []byte("package a")})
	waitIdle(t, p)
	v := p.Stats()
	if want := int64(3 + len(in)); v.Compared != want || v.Skipped[SkipSampled] != int64(len(out)) {
		t.Fatalf("compared %d (want %d: mkdir and readdir of work before any change outside the share, the packages in the share, the write), sampled out %d (want %d)",
			v.Compared, want, v.Skipped[SkipSampled], len(out))
	}
	// The mkdirs of the packages outside the share changed work's entries:
	// work and the root are out of the share now.
	exec(fsop.Op{Kind: fsop.WriteFile, Path: out[0] + "/b.go", Data: []byte("package b")})
	exec(fsop.Op{Kind: fsop.Readdir, Path: "work"})
	exec(fsop.Op{Kind: fsop.Stat, Path: "."})
	// A chmod of work, outside the share now, changes work alone: the
	// units below it stay in.
	exec(fsop.Op{Kind: fsop.Chmod, Path: "work", Mode: 0o750})
	exec(fsop.Op{Kind: fsop.ReadFile, Path: in[0] + "/a.go"})
	waitIdle(t, p)
	v2 := p.Stats()
	if v2.Compared-v.Compared != 1 || v2.Skipped[SkipSampled]-v.Skipped[SkipSampled] != 4 || v2.Divergent != 0 {
		t.Errorf("after changes outside the share: compared %d more (want 1, the read in the share), sampled out %d more (want 4), divergent %d",
			v2.Compared-v.Compared, v2.Skipped[SkipSampled]-v.Skipped[SkipSampled], v2.Divergent)
	}
	p.mu.Lock()
	p.setShare(p.sides[Shadow], 1, "the test")
	p.mu.Unlock()
	waitFor(t, "the share back at 1 and its units resynced", func() bool { return p.Status().Bridges[Shadow].Quarantined == 0 })
	exec(fsop.Op{Kind: fsop.Readdir, Path: "work"})
	exec(fsop.Op{Kind: fsop.ReadFile, Path: out[0] + "/b.go"})
	waitIdle(t, p)
	v3 := p.Stats()
	if v3.Compared-v2.Compared != 2 || v3.Divergent != 0 {
		t.Errorf("at 1 after the resync: compared %d more (want 2), divergent %d (%s)", v3.Compared-v2.Compared, v3.Divergent, firstExample(v3))
	}
	if a, b := dump(t, pb), dump(t, sb); a != b {
		t.Errorf("stores differ:\n%s\nvs\n%s", a, b)
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
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb, MirrorShare: 0.5, MirrorShareDepth: 1})
	ds, fs := treeNames(32, 8)
	in, out := splitDirs(ds, 0.5)
	if len(in) < 4 || len(out) < 4 {
		t.Fatalf("the hash puts %d of %d directories in a 0.5 share: pick other names", len(in), len(ds))
	}
	setupTree(t, p, ds, fs)
	runTree(t, p, 8, 8000, ds, fs, 0, 1)
	ctx := context.Background()
	for _, op := range []fsop.Op{
		// The random ops may have renamed the files away: write them first.
		{Kind: fsop.WriteFile, Path: out[0] + "/f00", Data: []byte("to move in")},
		{Kind: fsop.WriteFile, Path: in[1] + "/f01", Data: []byte("to move out")},
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
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb, MirrorShareAuto: true, MirrorShareDepth: 1, ShareRaiseAfter: 300 * time.Millisecond,
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
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb, MirrorShare: 0.5, MirrorShareDepth: 1,
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
