package proxy

import (
	"context"
	"testing"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// TestPinFollowsDirectoryRenames: an mtime set by utimens is compared
// only while the name still names that file. Once its directory is
// renamed away and another directory renamed into its place, the name
// names a file whose mtime each bridge set itself (at its own moment):
// comparing it would count a divergence that is not one.
func TestPinFollowsDirectoryRenames(t *testing.T) {
	p, _ := newTestProxy(t, Config{Primary: newStoreBridge(), Shadow: newStoreBridge()})
	ctx := context.Background()
	for _, op := range []fsop.Op{
		{Kind: fsop.Mkdir, Path: "x", Mode: 0o755},
		{Kind: fsop.WriteFile, Path: "x/f", Data: []byte("written: each bridge's own mtime")},
		{Kind: fsop.Mkdir, Path: "d", Mode: 0o755},
		{Kind: fsop.WriteFile, Path: "d/f", Data: []byte("pinned")},
		{Kind: fsop.Utimens, Path: "d/f", AtimeNs: 1e18, MtimeNs: 1e18},
		{Kind: fsop.Stat, Path: "d/f"}, // compared with its mtime: equal
		{Kind: fsop.Rename, Path: "d", To: "e"},
		{Kind: fsop.Rename, Path: "x", To: "d"},
		{Kind: fsop.Stat, Path: "d/f"}, // x's file: mtimes not compared
		{Kind: fsop.Stat, Path: "e/f"},
	} {
		if _, err := p.Exec(ctx, &op); err != nil {
			t.Fatal(err)
		}
	}
	waitIdle(t, p)
	if v := p.Stats(); v.Divergent != 0 || v.Compared != v.Ops {
		t.Errorf("divergent %d (want 0), compared %d of %d (%s)", v.Divergent, v.Compared, v.Ops, firstExample(v))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mtimeSet("d/f") {
		t.Errorf("d/f still pinned after its directory was renamed away")
	}
}

// TestPinsBelowCounts: the per-directory counts that spare a rename a
// scan of every pin stay exact through adds, removes and subtree removes.
func TestPinsBelowCounts(t *testing.T) {
	var s pins
	for _, p := range []string{"a/b/c", "a/b/d", "a/e", "f", "a/b/c"} {
		s.add(p)
	}
	check := func(want map[string]int) {
		t.Helper()
		if len(s.below) != len(want) {
			t.Fatalf("below %v, want %v", s.below, want)
		}
		for d, n := range want {
			if s.below[d] != n {
				t.Fatalf("below %v, want %v", s.below, want)
			}
		}
	}
	check(map[string]int{".": 4, "a": 3, "a/b": 2})
	if got := s.within("a/b"); len(got) != 2 {
		t.Errorf("within a/b: %v", got)
	}
	s.remove("a/e")
	s.remove("nothing/here")
	check(map[string]int{".": 3, "a": 2, "a/b": 2})
	s.removeWithin("a/b")
	check(map[string]int{".": 1})
	if !s.has("f") || s.has("a/b/c") {
		t.Errorf("set %v after removing a/b", s.set)
	}
	s.removeWithin("f")
	check(map[string]int{})
}
