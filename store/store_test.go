package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// dump renders the tree's logical content (no times, no inode numbers) as
// text, so two stores can be compared and a difference read.
func dump(t testing.TB, s *Store) string {
	t.Helper()
	var b strings.Builder
	var walk func(ino uint64, path string)
	walk = func(ino uint64, path string) {
		ents, err := s.Readdir(ino)
		if err != nil {
			t.Fatalf("readdir %s: %v", path, err)
		}
		for _, e := range ents {
			if e.Name == "." || e.Name == ".." {
				continue
			}
			p := path + "/" + e.Name
			a, err := s.Getattr(e.Ino)
			if err != nil {
				t.Fatalf("getattr %s: %v", p, err)
			}
			fmt.Fprintf(&b, "%s mode=%o nlink=%d uid=%d gid=%d size=%d", p, a.Mode, a.Nlink, a.UID, a.GID, a.Size)
			if a.Rdev != 0 {
				fmt.Fprintf(&b, " rdev=%#x", a.Rdev)
			}
			switch a.Mode & syscall.S_IFMT {
			case syscall.S_IFREG:
				data := make([]byte, a.Size)
				n, err := s.ReadAt(e.Ino, data, 0)
				if err != nil || int64(n) != a.Size {
					t.Fatalf("read %s: %d, %v", p, n, err)
				}
				fmt.Fprintf(&b, " sha=%x", sha256.Sum256(data))
			case syscall.S_IFLNK:
				target, _ := s.Readlink(e.Ino)
				fmt.Fprintf(&b, " ->%s", target)
			}
			names, _ := s.Listxattr(e.Ino)
			for _, n := range names {
				v, _ := s.Getxattr(e.Ino, n)
				fmt.Fprintf(&b, " x:%s=%q", n, v)
			}
			b.WriteByte('\n')
			if a.Mode&syscall.S_IFMT == syscall.S_IFDIR {
				walk(e.Ino, p)
			}
		}
	}
	walk(RootIno, "")
	return b.String()
}

func mustOpen(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ino(t testing.TB, s *Store, parent uint64, name string) uint64 {
	t.Helper()
	a, err := s.Lookup(parent, name)
	if err != nil {
		t.Fatalf("lookup %s: %v", name, err)
	}
	return a.Ino
}

func TestSemantics(t *testing.T) {
	type step func(s *Store) error
	tests := []struct {
		name  string
		steps []step
		want  error // of the last step
	}{
		{"mkdir exists", []step{
			func(s *Store) error { _, err := s.Mkdir(RootIno, "d", 0o755, 0, 0); return err },
			func(s *Store) error { _, err := s.Mkdir(RootIno, "d", 0o755, 0, 0); return err },
		}, syscall.EEXIST},
		{"name too long", []step{
			func(s *Store) error { _, err := s.Create(RootIno, strings.Repeat("x", 256), 0o644, 0, 0); return err },
		}, syscall.ENAMETOOLONG},
		{"rmdir not empty", []step{
			func(s *Store) error { _, err := s.Mkdir(RootIno, "d", 0o755, 0, 0); return err },
			func(s *Store) error { _, err := s.Create(2, "f", 0o644, 0, 0); return err },
			func(s *Store) error { return s.Rmdir(RootIno, "d") },
		}, syscall.ENOTEMPTY},
		{"rmdir file", []step{
			func(s *Store) error { _, err := s.Create(RootIno, "f", 0o644, 0, 0); return err },
			func(s *Store) error { return s.Rmdir(RootIno, "f") },
		}, syscall.ENOTDIR},
		{"unlink dir", []step{
			func(s *Store) error { _, err := s.Mkdir(RootIno, "d", 0o755, 0, 0); return err },
			func(s *Store) error { return s.Unlink(RootIno, "d") },
		}, syscall.EISDIR},
		{"rename dir into itself", []step{
			func(s *Store) error { _, err := s.Mkdir(RootIno, "d", 0o755, 0, 0); return err },
			func(s *Store) error { _, err := s.Mkdir(2, "e", 0o755, 0, 0); return err },
			func(s *Store) error { return s.Rename(RootIno, "d", 3, "x", 0) },
		}, syscall.EINVAL},
		{"rename file over dir", []step{
			func(s *Store) error { _, err := s.Mkdir(RootIno, "d", 0o755, 0, 0); return err },
			func(s *Store) error { _, err := s.Create(RootIno, "f", 0o644, 0, 0); return err },
			func(s *Store) error { return s.Rename(RootIno, "f", RootIno, "d", 0) },
		}, syscall.EISDIR},
		{"rename dir over non-empty dir", []step{
			func(s *Store) error { _, err := s.Mkdir(RootIno, "a", 0o755, 0, 0); return err },
			func(s *Store) error { _, err := s.Mkdir(RootIno, "b", 0o755, 0, 0); return err },
			func(s *Store) error { _, err := s.Create(3, "f", 0o644, 0, 0); return err },
			func(s *Store) error { return s.Rename(RootIno, "a", RootIno, "b", 0) },
		}, syscall.ENOTEMPTY},
		{"rename noreplace", []step{
			func(s *Store) error { _, err := s.Create(RootIno, "a", 0o644, 0, 0); return err },
			func(s *Store) error { _, err := s.Create(RootIno, "b", 0o644, 0, 0); return err },
			func(s *Store) error { return s.Rename(RootIno, "a", RootIno, "b", RenameNoReplace) },
		}, syscall.EEXIST},
		{"exchange needs target", []step{
			func(s *Store) error { _, err := s.Create(RootIno, "a", 0o644, 0, 0); return err },
			func(s *Store) error { return s.Rename(RootIno, "a", RootIno, "b", RenameExchange) },
		}, syscall.ENOENT},
		{"link dir", []step{
			func(s *Store) error { _, err := s.Mkdir(RootIno, "d", 0o755, 0, 0); return err },
			func(s *Store) error { _, err := s.Link(2, RootIno, "e"); return err },
		}, syscall.EPERM},
		{"xattr create exists", []step{
			func(s *Store) error { return s.Setxattr(RootIno, "user.a", []byte("1"), 0) },
			func(s *Store) error { return s.Setxattr(RootIno, "user.a", []byte("2"), XattrCreate) },
		}, syscall.EEXIST},
		{"xattr replace missing", []step{
			func(s *Store) error { return s.Setxattr(RootIno, "user.a", []byte("2"), XattrReplace) },
		}, syscall.ENODATA},
		{"xattr remove missing", []step{
			func(s *Store) error { return s.Removexattr(RootIno, "user.a") },
		}, syscall.ENODATA},
		{"truncate dir", []step{
			func(s *Store) error { _, err := s.Setattr(RootIno, SetAttr{Valid: SetSize}); return err },
		}, syscall.EISDIR},
		{"readlink file", []step{
			func(s *Store) error { _, err := s.Create(RootIno, "f", 0o644, 0, 0); return err },
			func(s *Store) error { _, err := s.Readlink(2); return err },
		}, syscall.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := OpenMemory(Options{})
			var err error
			for i, st := range tt.steps {
				err = st(s)
				if i < len(tt.steps)-1 && err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestLinkCountsAndRename(t *testing.T) {
	s := OpenMemory(Options{})
	d, _ := s.Mkdir(RootIno, "d", 0o755, 0, 0)
	f, _ := s.Create(RootIno, "f", 0o644, 0, 0)
	if _, err := s.Link(f.Ino, d.Ino, "g"); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Getattr(f.Ino); a.Nlink != 2 {
		t.Fatalf("nlink %d, want 2", a.Nlink)
	}
	root, _ := s.Getattr(RootIno)
	if root.Nlink != 3 {
		t.Fatalf("root nlink %d, want 3", root.Nlink)
	}
	// rename over another name of the same file does nothing
	if err := s.Rename(RootIno, "f", d.Ino, "g", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(RootIno, "f"); err != nil {
		t.Fatalf("f vanished: %v", err)
	}
	// move a directory: link counts of both parents follow
	e, _ := s.Mkdir(RootIno, "e", 0o755, 0, 0)
	if err := s.Rename(RootIno, "e", d.Ino, "e", 0); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Getattr(d.Ino); a.Nlink != 3 {
		t.Fatalf("d nlink %d, want 3", a.Nlink)
	}
	if ents, _ := s.Readdir(e.Ino); ents[1].Ino != d.Ino {
		t.Fatalf("e's .. is %d, want %d", ents[1].Ino, d.Ino)
	}
	// exchange a file and a directory across parents
	if err := s.Rename(RootIno, "f", d.Ino, "e", RenameExchange); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Lookup(RootIno, "f"); a.Ino != e.Ino {
		t.Fatalf("after exchange f is %d, want dir %d", a.Ino, e.Ino)
	}
	if err := s.Unlink(RootIno, "f"); !errors.Is(err, syscall.EISDIR) {
		t.Fatalf("unlink of exchanged dir: %v", err)
	}
}

func TestSparseAndTruncate(t *testing.T) {
	s := OpenMemory(Options{})
	f, _ := s.Create(RootIno, "f", 0o644, 0, 0)
	big := bytes.Repeat([]byte("abcdefgh"), 300_000) // 2.4 MB across chunks
	if _, err := s.WriteAt(f.Ino, big, 10<<20); err != nil {
		t.Fatal(err)
	}
	a, _ := s.Getattr(f.Ino)
	if a.Size != 10<<20+int64(len(big)) {
		t.Fatalf("size %d", a.Size)
	}
	if a.Blocks*512 >= a.Size {
		t.Fatalf("sparse file allocates %d bytes for size %d", a.Blocks*512, a.Size)
	}
	got := make([]byte, 100)
	s.ReadAt(f.Ino, got, 5<<20)
	if !bytes.Equal(got, make([]byte, 100)) {
		t.Fatal("hole does not read as zeros")
	}
	got = make([]byte, len(big))
	if n, _ := s.ReadAt(f.Ino, got, 10<<20); n != len(big) || !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes, equal=%v", n, bytes.Equal(got, big))
	}
	// truncate down into the middle of a chunk, then up: the tail reads zeros
	if _, err := s.Setattr(f.Ino, SetAttr{Valid: SetSize, Size: 10<<20 + 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Setattr(f.Ino, SetAttr{Valid: SetSize, Size: 10<<20 + 100}); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, 100)
	s.ReadAt(f.Ino, got, 10<<20)
	want := append([]byte("abc"), make([]byte, 97)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("after truncate down and up: %q", got[:10])
	}
}

func TestUnlinkedOpenFile(t *testing.T) {
	s := OpenMemory(Options{})
	f, _ := s.Create(RootIno, "f", 0o644, 0, 0)
	s.WriteAt(f.Ino, []byte("still here"), 0)
	if err := s.Acquire(f.Ino); err != nil {
		t.Fatal(err)
	}
	s.Unlink(RootIno, "f")
	buf := make([]byte, 20)
	if n, err := s.ReadAt(f.Ino, buf, 0); err != nil || string(buf[:n]) != "still here" {
		t.Fatalf("read unlinked open file: %q, %v", buf[:n], err)
	}
	s.Release(f.Ino)
	if _, err := s.Getattr(f.Ino); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("after release: %v, want ENOENT", err)
	}
}

// populate runs a fixed mix of every mutation kind.
func populate(t testing.TB, s *Store) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	d, err := s.Mkdir(RootIno, "src", 0o755, 1000, 1000)
	must(err)
	for i := 0; i < 20; i++ {
		f, err := s.Create(d.Ino, fmt.Sprintf("f%02d.go", i), 0o644, 1000, 1000)
		must(err)
		_, err = s.WriteAt(f.Ino, bytes.Repeat([]byte{byte('a' + i)}, 1000*i+1), int64(i*100))
		must(err)
	}
	must(s.Rename(d.Ino, "f00.go", RootIno, "moved", 0))
	_, err = s.Link(ino(t, s, d.Ino, "f01.go"), RootIno, "hard")
	must(err)
	must(s.Unlink(d.Ino, "f02.go"))
	_, err = s.Symlink(RootIno, "ln", "src/f03.go", 0, 0)
	must(err)
	must(s.Setxattr(ino(t, s, d.Ino, "f04.go"), "user.tag", []byte("v1"), 0))
	_, err = s.Setattr(ino(t, s, d.Ino, "f05.go"), SetAttr{Valid: SetMode | SetSize, Mode: 0o600, Size: 3})
	must(err)
	_, err = s.Mkdir(RootIno, "empty", 0o700, 0, 0)
	must(err)
	must(s.Rmdir(RootIno, "empty"))
}

func TestReplayAndCompaction(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncBatch, SyncNone} {
		t.Run(string(policy), func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir, Options{Sync: policy, CompactBytes: -1})
			populate(t, s)
			want := dump(t, s)
			wantSnap := s.Snapshot()
			s.Close()

			s = mustOpen(t, dir, Options{Sync: policy, CompactBytes: -1})
			if got := dump(t, s); got != want {
				t.Fatalf("replayed tree differs:\n got %s\nwant %s", got, want)
			}
			if r := s.Recovery(); r.Replayed == 0 || r.CutBytes != 0 {
				t.Fatalf("recovery %+v", r)
			}
			if err := s.Compact(); err != nil {
				t.Fatal(err)
			}
			s.Close()

			s = mustOpen(t, dir, Options{Sync: policy})
			defer s.Close()
			if got := dump(t, s); got != want {
				t.Fatalf("tree after compaction differs:\n got %s\nwant %s", got, want)
			}
			if r := s.Recovery(); r.Replayed != 0 || r.SnapshotLSN == 0 {
				t.Fatalf("after compaction recovery %+v, want all from snapshot", r)
			}
			a, _ := Checksum(wantSnap)
			b, _ := Checksum(s.Snapshot())
			if a == b {
				// equal trees give equal checksums only with equal LSNs; the
				// LSN is in the snapshot, so compare the bodies past it
				return
			}
			if !bytes.Equal(wantSnap[16:len(wantSnap)-4], s.Snapshot()[16:len(wantSnap)-4]) {
				t.Fatal("snapshot body changed across compaction")
			}
		})
	}
}

func TestTornTail(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"half a record", func(t *testing.T, path string) {
			st, _ := os.Stat(path)
			os.Truncate(path, st.Size()-7)
		}},
		{"flipped byte in the last record", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			b[len(b)-3] ^= 0xff
			os.WriteFile(path, b, 0o644)
		}},
		{"garbage after the last record", func(t *testing.T, path string) {
			f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3})
			f.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir, Options{Sync: SyncNone, CompactBytes: -1})
			populate(t, s)
			before := dump(t, s)
			f, _ := s.Create(RootIno, "last", 0o644, 0, 0)
			s.WriteAt(f.Ino, []byte("the last write"), 0)
			s.Close()
			segs, _ := listSegments(dir)
			tt.damage(t, segs[len(segs)-1].path)

			s = mustOpen(t, dir, Options{Sync: SyncNone})
			defer s.Close()
			r := s.Recovery()
			if r.CutBytes == 0 {
				t.Fatalf("nothing cut: %+v", r)
			}
			got := dump(t, s)
			// everything before the damaged record survives
			for _, line := range strings.Split(strings.TrimSpace(before), "\n") {
				if !strings.Contains(got, line+"\n") {
					t.Fatalf("earlier mutation lost: %s\nrecovered:\n%s", line, got)
				}
			}
			// and the store keeps working after the cut
			if _, err := s.Create(RootIno, "after", 0o644, 0, 0); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRestore(t *testing.T) {
	src := OpenMemory(Options{})
	populate(t, src)
	snap := src.Snapshot()

	dir := t.TempDir()
	dst := mustOpen(t, dir, Options{})
	dst.Create(RootIno, "old", 0o644, 0, 0)
	gen := dst.Generation()

	bad := bytes.Clone(snap)
	bad[len(bad)/2] ^= 1
	if err := dst.Restore(bad); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("corrupt snapshot: %v, want ErrBadSnapshot", err)
	}
	if _, err := dst.Lookup(RootIno, "old"); err != nil {
		t.Fatal("a refused restore changed the store")
	}
	if err := dst.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if dst.Generation() == gen {
		t.Fatal("generation unchanged")
	}
	want := dump(t, src)
	if got := dump(t, dst); got != want {
		t.Fatalf("restored tree differs:\n got %s\nwant %s", got, want)
	}
	// the restore is durable: a reopen shows the restored tree, not the old log
	dst.Create(RootIno, "new", 0o644, 0, 0)
	dst.Close()
	dst = mustOpen(t, dir, Options{})
	defer dst.Close()
	got := dump(t, dst)
	if !strings.Contains(got, "/new ") || strings.Contains(got, "/old ") {
		t.Fatalf("after reopen:\n%s", got)
	}
}

func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	defer s.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

func TestConcurrentReadersAndWriters(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{Sync: SyncBatch, CompactBytes: 256 << 10})
	defer s.Close()
	done := make(chan error, 8)
	for w := 0; w < 4; w++ {
		go func(w int) {
			f, err := s.Create(RootIno, fmt.Sprintf("w%d", w), 0o644, 0, 0)
			for i := 0; i < 300 && err == nil; i++ {
				_, err = s.WriteAt(f.Ino, bytes.Repeat([]byte{byte(i)}, 4096), int64(i)*4096)
			}
			done <- err
		}(w)
	}
	for r := 0; r < 4; r++ {
		go func() {
			buf := make([]byte, 4096)
			for i := 0; i < 2000; i++ {
				ents, _ := s.Readdir(RootIno)
				for _, e := range ents[2:] {
					s.ReadAt(e.Ino, buf, 0)
				}
			}
			done <- nil
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	names := []string{}
	ents, _ := s.Readdir(RootIno)
	for _, e := range ents[2:] {
		a, _ := s.Getattr(e.Ino)
		if a.Size != 300*4096 {
			t.Fatalf("%s: size %d", e.Name, a.Size)
		}
		names = append(names, e.Name)
	}
	sort.Strings(names)
	if len(names) != 4 {
		t.Fatalf("files %v", names)
	}
}

// TestSetgidDirectory: what is made in a set-group-id directory gets the
// directory's group, and a new directory its set-group-id bit, live and
// after replaying the log.
func TestSetgidDirectory(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{Sync: SyncNone, CompactBytes: -1})
	g, err := s.Mkdir(RootIno, "g", 0o777, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Setattr(g.Ino, SetAttr{Valid: SetMode | SetGID, Mode: 0o2777, GID: 2000}); err != nil {
		t.Fatal(err)
	}
	f, err := s.Create(g.Ino, "f", 0o644, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Mkdir(g.Ino, "d", 0o755, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Symlink(g.Ino, "l", "f", 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := s.Create(RootIno, "plain", 0o644, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		for _, c := range []struct {
			name       string
			ino        uint64
			gid, perms uint32
		}{{"g/f", f.Ino, 2000, 0o644}, {"g/d", d.Ino, 2000, 0o2755}, {"g/l", l.Ino, 2000, 0o777}, {"plain", plain.Ino, 1000, 0o644}} {
			a, err := s.Getattr(c.ino)
			if err != nil {
				t.Fatal(err)
			}
			if a.UID != 1000 || a.GID != c.gid || a.Mode&0o7777 != c.perms {
				t.Errorf("%s: %s is %d:%d %04o, want 1000:%d %04o", when, c.name, a.UID, a.GID, a.Mode&0o7777, c.gid, c.perms)
			}
		}
	}
	check("live")
	s.Close()
	s = mustOpen(t, dir, Options{Sync: SyncNone})
	defer s.Close()
	check("replayed")
}
