package store

import (
	"bytes"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

// subtreeFixture fills s with a subtree at "src" (nested directories, a
// hard link inside it, a symlink, xattrs on the directory, a sparse file)
// and names outside it.
func subtreeFixture(t testing.TB, s *Store, tag string) {
	t.Helper()
	must := func(a Attr, err error) Attr {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	src := must(s.Mkdir(RootIno, "src", 0o750, 7, 8))
	deep := must(s.Mkdir(src.Ino, "deep", 0o700, 0, 0))
	f := must(s.Create(deep.Ino, "f-"+tag, 0o644, 0, 0))
	if _, err := s.WriteAt(f.Ino, []byte("data of "+tag), 0); err != nil {
		t.Fatal(err)
	}
	must(s.Link(f.Ino, src.Ino, "hard"))
	sparse := must(s.Create(src.Ino, "sparse", 0o600, 0, 0))
	if _, err := s.WriteAt(sparse.Ino, []byte(tag), 3*chunkSize+5); err != nil {
		t.Fatal(err)
	}
	must(s.Symlink(src.Ino, "ln", "deep/f-"+tag, 0, 0))
	if err := s.Setxattr(src.Ino, "user.tag", []byte(tag), 0); err != nil {
		t.Fatal(err)
	}
	must(s.Mkdir(RootIno, "outside-"+tag, 0o755, 0, 0))
}

// subDump is dump restricted to the lines under prefix.
func subDump(t testing.TB, s *Store, prefix string) string {
	var out []string
	for _, l := range strings.Split(dump(t, s), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestSubtreeRestore(t *testing.T) {
	for _, viaSnapshot := range []bool{false, true} {
		name := "one record"
		if viaSnapshot {
			name = "whole-store snapshot"
		}
		t.Run(name, func(t *testing.T) {
			if viaSnapshot {
				old := subtreeRecordMax
				subtreeRecordMax = 16
				t.Cleanup(func() { subtreeRecordMax = old })
			}
			src := OpenMemory(Options{})
			subtreeFixture(t, src, "new")
			snap, err := src.SnapshotSubtree("src")
			if err != nil {
				t.Fatal(err)
			}

			dir := t.TempDir()
			dst := mustOpen(t, dir, Options{CompactBytes: -1})
			subtreeFixture(t, dst, "old")
			dst.Mkdir(ino(t, dst, RootIno, "src"), "gone", 0o755, 0, 0)
			srcIno := ino(t, dst, RootIno, "src")
			nextBefore := dst.t.nextIno
			outside := subDump(t, dst, "/outside")

			if err := dst.RestoreSubtree("src", snap); err != nil {
				t.Fatal(err)
			}
			want := subDump(t, src, "/src")
			if got := subDump(t, dst, "/src"); got != want {
				t.Fatalf("restored subtree:\n%s\nwant:\n%s", got, want)
			}
			if got := subDump(t, dst, "/outside"); got != outside {
				t.Fatalf("outside changed:\n%s\nwas:\n%s", got, outside)
			}
			if got := ino(t, dst, RootIno, "src"); got != srcIno {
				t.Fatalf("directory inode %d, was %d", got, srcIno)
			}
			if f := ino(t, dst, ino(t, dst, RootIno, "src"), "hard"); f < nextBefore {
				t.Fatalf("new node got inode %d, below the next free %d before the restore", f, nextBefore)
			}
			if a, _ := dst.Getattr(srcIno); a.Mode != src.mustAttr(t, "src").Mode || a.Nlink != 3 || a.UID != 7 {
				t.Fatalf("directory attributes %+v", a)
			}
			again, err := dst.SnapshotSubtree("src")
			if err != nil || !bytes.Equal(again, snap) {
				t.Fatalf("snapshot of the restored subtree differs from the one restored (%v)", err)
			}
			whole := dump(t, dst)
			dst.Close()

			// Replay (or the snapshot) reproduces it exactly.
			dst = mustOpen(t, dir, Options{CompactBytes: -1})
			if got := dump(t, dst); got != whole {
				t.Fatalf("after reopen:\n%s\nwant:\n%s", got, whole)
			}
			if again, _ := dst.SnapshotSubtree("src"); !bytes.Equal(again, snap) {
				t.Fatal("snapshot after reopen differs")
			}
			if err := dst.Compact(); err != nil {
				t.Fatal(err)
			}
			dst.Close()
			dst = mustOpen(t, dir, Options{})
			defer dst.Close()
			if got := dump(t, dst); got != whole {
				t.Fatalf("after compaction and reopen:\n%s\nwant:\n%s", got, whole)
			}
		})
	}
}

func (s *Store) mustAttr(t testing.TB, name string) Attr {
	a, err := s.Lookup(RootIno, name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSubtreeByteIdentical(t *testing.T) {
	a, b := OpenMemory(Options{Now: fixedClock}), OpenMemory(Options{Now: fixedClock})
	b.Mkdir(RootIno, "padding", 0o755, 0, 0) // other inode numbers in b
	b.Create(RootIno, "more", 0o644, 0, 0)
	subtreeFixture(t, a, "x")
	subtreeFixture(t, b, "x")
	sa, err := a.SnapshotSubtree("src")
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := b.SnapshotSubtree("src")
	if !bytes.Equal(sa, sb) {
		t.Fatal("equal subtrees with other inode numbers give different snapshots")
	}
	b.WriteAt(ino(t, b, ino(t, b, RootIno, "src"), "hard"), []byte("D"), 0)
	if sb, _ := b.SnapshotSubtree("src"); bytes.Equal(sa, sb) {
		t.Fatal("different subtrees give equal snapshots")
	}
	if len(sa) > 4096 {
		t.Fatalf("subtree of a few small files takes %d bytes", len(sa))
	}
}

func fixedClock() time.Time { return time.Unix(1700000000, 0) }

func TestSubtreeErrors(t *testing.T) {
	s := OpenMemory(Options{})
	subtreeFixture(t, s, "a")
	good, _ := s.SnapshotSubtree("src")
	for _, tt := range []struct {
		path string
		want error
	}{
		{"missing", syscall.ENOENT},
		{"src/hard", syscall.ENOTDIR},
		{"src/ln", syscall.ENOTDIR},
		{"src/ln/x", syscall.ENOTDIR},
		{"/src", syscall.EINVAL},
		{"src/../src", syscall.EINVAL},
		{"src/", syscall.EINVAL},
		{"", syscall.EINVAL},
	} {
		if _, err := s.SnapshotSubtree(tt.path); !errors.Is(err, tt.want) {
			t.Errorf("SnapshotSubtree(%q): %v, want %v", tt.path, err, tt.want)
		}
		if err := s.RestoreSubtree(tt.path, good); !errors.Is(err, tt.want) {
			t.Errorf("RestoreSubtree(%q): %v, want %v", tt.path, err, tt.want)
		}
	}
	before := dump(t, s)
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 1
	if err := s.RestoreSubtree("src", bad); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("corrupt snapshot: %v", err)
	}
	if err := s.RestoreSubtree("src", s.Snapshot()); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("a whole-store snapshot: %v", err)
	}
	if got := dump(t, s); got != before {
		t.Fatal("a refused restore changed the store")
	}
}

func TestSubtreeCrossLink(t *testing.T) {
	s := OpenMemory(Options{})
	subtreeFixture(t, s, "a")
	good, _ := s.SnapshotSubtree("src")
	deep := ino(t, s, ino(t, s, RootIno, "src"), "deep")
	if _, err := s.Link(ino(t, s, deep, "f-a"), RootIno, "out-link"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"src", "src/deep"} {
		_, err := s.SnapshotSubtree(path)
		var ce *CrossLinkError
		if !errors.Is(err, ErrCrossLink) || !errors.As(err, &ce) || ce.Outside != "out-link" || !strings.HasPrefix(ce.Inside, "src/") {
			t.Fatalf("SnapshotSubtree(%q): %v, want a CrossLinkError naming src/... and out-link", path, err)
		}
		before := dump(t, s)
		if err := s.RestoreSubtree(path, good); !errors.Is(err, ErrCrossLink) {
			t.Fatalf("RestoreSubtree(%q): %v, want ErrCrossLink", path, err)
		}
		if dump(t, s) != before {
			t.Fatal("a refused restore changed the store")
		}
	}
	if _, err := s.SnapshotSubtree("."); err != nil {
		t.Fatalf("the root holds both names: %v", err)
	}
}

func TestSubtreeOrphans(t *testing.T) {
	s := OpenMemory(Options{})
	subtreeFixture(t, s, "old")
	f := ino(t, s, ino(t, s, RootIno, "src"), "hard")
	if err := s.Acquire(f); err != nil {
		t.Fatal(err)
	}
	src := OpenMemory(Options{})
	subtreeFixture(t, src, "new")
	snap, _ := src.SnapshotSubtree("src")
	if err := s.RestoreSubtree("src", snap); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := s.ReadAt(f, buf, 0)
	if err != nil || string(buf[:n]) != "data of old" {
		t.Fatalf("read of an open replaced file: %q %v", buf[:n], err)
	}
	if _, err := s.WriteAt(f, []byte("D"), 0); err != nil {
		t.Fatalf("write to an open replaced file: %v", err)
	}
	if a, _ := s.Getattr(f); a.Nlink != 0 {
		t.Fatalf("orphan nlink %d", a.Nlink)
	}
	s.Release(f)
	if _, err := s.Getattr(f); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("released orphan: %v", err)
	}
}
