package store

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
)

// lookupPath resolves a relative path name by name from the root.
func lookupPath(t testing.TB, s *Store, path string) Attr {
	t.Helper()
	a := Attr{Ino: RootIno}
	for _, name := range strings.Split(path, "/") {
		var err error
		if a, err = s.Lookup(a.Ino, name); err != nil {
			t.Fatalf("lookup %s: %v", path, err)
		}
	}
	return a
}

// TestWalkSubtree: every name of a subtree snapshot, with what the store
// itself says of it: attributes, link counts, targets, xattrs, content.
func TestWalkSubtree(t *testing.T) {
	s := OpenMemory(Options{})
	subtreeFixture(t, s, "w")
	snap, err := s.SnapshotSubtree("src")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	byPath := map[string]*SubtreeEntry{}
	if err := WalkSubtree("src", snap, func(e *SubtreeEntry) error {
		paths = append(paths, e.Path)
		byPath[e.Path] = e
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"src", "src/deep", "src/deep/f-w", "src/hard", "src/ln", "src/sparse"}
	if len(paths) != len(want) {
		t.Fatalf("walked %v, want %v", paths, want)
	}
	for i := range want {
		if paths[i] != want[i] {
			t.Fatalf("walked %v, want %v", paths, want)
		}
	}
	for _, p := range want {
		e := byPath[p]
		a := lookupPath(t, s, p)
		if e.Mode != a.Mode || e.UID != a.UID || e.GID != a.GID || e.Nlink != a.Nlink || e.Size != a.Size || e.MtimeNs != a.Mtime {
			t.Errorf("%s: walked %+v, the store says %+v", p, *e, a)
		}
		if e.IsDir() != (a.Mode&0o170000 == 0o40000) {
			t.Errorf("%s: IsDir %v for mode %o", p, e.IsDir(), a.Mode)
		}
		if a.Mode&0o170000 == 0o100000 {
			content := make([]byte, a.Size)
			if n, err := s.ReadAt(a.Ino, content, 0); err != nil || int64(n) != a.Size {
				t.Fatalf("%s: read %d, %v", p, n, err)
			}
			got := make([]byte, a.Size+10)
			if n := e.ReadAt(got, 0); int64(n) != a.Size || !bytes.Equal(got[:n], content) {
				t.Errorf("%s: ReadAt gave %d bytes that differ from the store's", p, n)
			}
			if e.Digest() != sha256.Sum256(content) {
				t.Errorf("%s: digest differs from the content's", p)
			}
		}
	}
	if byPath["src/ln"].Target != "deep/f-w" || string(byPath["src"].Xattrs["user.tag"]) != "w" {
		t.Errorf("target %q, xattr %q", byPath["src/ln"].Target, byPath["src"].Xattrs["user.tag"])
	}
	if err := WalkSubtree("src", snap[:len(snap)-1], func(*SubtreeEntry) error { return nil }); err == nil {
		t.Error("a truncated snapshot was walked")
	}
}
