package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMknod: each special type is made with its type and, for the two
// devices only, its device number (ext4 keeps no number for a FIFO or a
// socket); S_IFREG or no type is an empty regular file; the rest is
// refused as mknod(2) refuses it.
func TestMknod(t *testing.T) {
	s := OpenMemory(Options{})
	dev := unix.Mkdev(8, 1)
	tests := []struct {
		name     string
		mode     uint32
		wantMode uint32
		wantRdev uint64
		dtype    uint32
	}{
		{"fifo", syscall.S_IFIFO | 0o640, syscall.S_IFIFO | 0o640, 0, syscall.S_IFIFO},
		{"sock", syscall.S_IFSOCK | 0o600, syscall.S_IFSOCK | 0o600, 0, syscall.S_IFSOCK},
		{"chr", syscall.S_IFCHR | 0o620, syscall.S_IFCHR | 0o620, dev, syscall.S_IFCHR},
		{"blk", syscall.S_IFBLK | 0o660, syscall.S_IFBLK | 0o660, dev, syscall.S_IFBLK},
		{"reg", syscall.S_IFREG | 0o644, syscall.S_IFREG | 0o644, 0, syscall.S_IFREG},
		{"untyped", 0o600, syscall.S_IFREG | 0o600, 0, syscall.S_IFREG},
	}
	for _, tc := range tests {
		a, err := s.Mknod(RootIno, tc.name, tc.mode, dev, 1000, 100)
		if err != nil {
			t.Fatalf("mknod %s: %v", tc.name, err)
		}
		if a.Mode != tc.wantMode || a.Rdev != tc.wantRdev || a.UID != 1000 || a.GID != 100 || a.Size != 0 || a.Nlink != 1 || a.Blocks != 0 {
			t.Errorf("mknod %s: %+v, want mode %o rdev %#x owned by 1000:100", tc.name, a, tc.wantMode, tc.wantRdev)
		}
		if g, _ := s.Getattr(a.Ino); g != a {
			t.Errorf("getattr %s: %+v, mknod said %+v", tc.name, g, a)
		}
	}
	ents, err := s.Readdir(RootIno)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]uint32{}
	for _, e := range ents {
		types[e.Name] = e.Mode
	}
	for _, tc := range tests {
		if types[tc.name] != tc.dtype {
			t.Errorf("readdir type of %s: %o, want %o", tc.name, types[tc.name], tc.dtype)
		}
	}
	for _, tc := range []struct {
		name string
		mode uint32
		want error
	}{
		{"fifo", syscall.S_IFIFO | 0o644, syscall.EEXIST},
		{"d", syscall.S_IFDIR | 0o755, syscall.EPERM},
		{"l", syscall.S_IFLNK | 0o777, syscall.EINVAL},
		{"bad", 0o170000, syscall.EINVAL},
		{"a/b", syscall.S_IFIFO | 0o644, syscall.EINVAL},
		{strings.Repeat("n", 256), syscall.S_IFIFO | 0o644, syscall.ENAMETOOLONG},
	} {
		if _, err := s.Mknod(RootIno, tc.name, tc.mode, 0, 0, 0); !errors.Is(err, tc.want) {
			t.Errorf("mknod %.10s mode %o: %v, want %v", tc.name, tc.mode, err, tc.want)
		}
	}
	if _, err := s.Mknod(ino(t, s, RootIno, "fifo"), "x", syscall.S_IFIFO, 0, 0, 0); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("mknod under a FIFO: %v, want ENOTDIR", err)
	}
}

// TestSpecialFileOps: a special file holds no data; the ops that would
// reach one through a mount answer as the kernel does for one on ext4
// (truncate EINVAL, readlink EINVAL), and names work as for any file.
func TestSpecialFileOps(t *testing.T) {
	s := OpenMemory(Options{})
	p, err := s.Mknod(RootIno, "p", syscall.S_IFIFO|0o644, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadAt(p.Ino, make([]byte, 4), 0); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("read of a FIFO in the store: %v, want EINVAL", err)
	}
	if _, err := s.WriteAt(p.Ino, []byte("x"), 0); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("write to a FIFO in the store: %v, want EINVAL", err)
	}
	if _, err := s.Setattr(p.Ino, SetAttr{Valid: SetSize, Size: 1}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("truncate of a FIFO: %v, want EINVAL", err)
	}
	if _, err := s.Readlink(p.Ino); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("readlink of a FIFO: %v, want EINVAL", err)
	}
	if a, err := s.Setattr(p.Ino, SetAttr{Valid: SetMode, Mode: 0o600}); err != nil || a.Mode != syscall.S_IFIFO|0o600 {
		t.Errorf("chmod of a FIFO: %+v, %v", a, err)
	}
	if a, err := s.Link(p.Ino, RootIno, "q"); err != nil || a.Nlink != 2 {
		t.Errorf("link of a FIFO: %+v, %v", a, err)
	}
	if err := s.Rename(RootIno, "p", RootIno, "r", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlink(RootIno, "r"); err != nil {
		t.Fatal(err)
	}
	if a, err := s.Lookup(RootIno, "q"); err != nil || a.Nlink != 1 || a.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		t.Errorf("the FIFO's last name: %+v, %v", a, err)
	}
}

// specialTree makes one of each special file, a device with a link, and
// a device in a subdirectory.
func specialTree(t testing.TB, s *Store) {
	t.Helper()
	d, err := s.Mkdir(RootIno, "dev", 0o755, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct {
		parent uint64
		name   string
		mode   uint32
		rdev   uint64
	}{
		{RootIno, "fifo", syscall.S_IFIFO | 0o644, 0},
		{RootIno, "sock", syscall.S_IFSOCK | 0o755, 0},
		{d.Ino, "null", syscall.S_IFCHR | 0o666, unix.Mkdev(1, 3)},
		{d.Ino, "sda1", syscall.S_IFBLK | 0o660, unix.Mkdev(8, 1)},
		{d.Ino, "big", syscall.S_IFCHR | 0o600, unix.Mkdev(4095, 1<<20-1)},
	} {
		if _, err := s.Mknod(n.parent, n.name, n.mode, n.rdev, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Link(ino(t, s, d.Ino, "null"), d.Ino, "null2"); err != nil {
		t.Fatal(err)
	}
}

// TestSpecialDurable: special files and their device numbers survive
// replay, compaction, a whole-store snapshot restored elsewhere, and a
// subtree snapshot restored elsewhere.
func TestSpecialDurable(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{CompactBytes: -1})
	specialTree(t, s)
	want := dump(t, s)
	if !strings.Contains(want, "/dev/sda1 mode=60660") || !strings.Contains(want, "rdev=0x801") {
		t.Fatalf("the tree lacks its block device:\n%s", want)
	}
	s.Close()

	s = mustOpen(t, dir, Options{CompactBytes: -1})
	if got := dump(t, s); got != want {
		t.Fatalf("replayed:\n%s\nwant:\n%s", got, want)
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	snap := s.Snapshot()
	s.Close()
	s = mustOpen(t, dir, Options{})
	defer s.Close()
	if got := dump(t, s); got != want {
		t.Fatalf("after compaction:\n%s\nwant:\n%s", got, want)
	}
	m := OpenMemory(Options{})
	if err := m.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, m); got != want {
		t.Fatalf("snapshot restored:\n%s\nwant:\n%s", got, want)
	}

	sub, err := s.SnapshotSubtree("dev")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mkdir(RootIno, "copy", 0o755, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.RestoreSubtree("copy", sub); err != nil {
		t.Fatal(err)
	}
	copied, err := m.SnapshotSubtree("copy")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(copied, sub) {
		t.Fatal("a subtree with devices restored elsewhere snapshots differently")
	}
	rdevs := map[string]uint64{}
	err = WalkSubtree("dev", sub, func(e *SubtreeEntry) error {
		rdevs[e.Path] = e.Rdev
		return nil
	})
	if err != nil || rdevs["dev/sda1"] != unix.Mkdev(8, 1) || rdevs["dev/big"] != unix.Mkdev(4095, 1<<20-1) {
		t.Fatalf("walk of the subtree: rdevs %v, %v", rdevs, err)
	}
}

// TestSubtreeEntrySameRdev: two devices differing only in their number
// are not the same.
func TestSubtreeEntrySameRdev(t *testing.T) {
	entry := func(rdev uint64) *SubtreeEntry {
		s := OpenMemory(Options{})
		if _, err := s.Mknod(RootIno, "c", syscall.S_IFCHR|0o600, rdev, 0, 0); err != nil {
			t.Fatal(err)
		}
		snap, err := s.SnapshotSubtree(".")
		if err != nil {
			t.Fatal(err)
		}
		var out *SubtreeEntry
		if err := WalkSubtree(".", snap, func(e *SubtreeEntry) error {
			if e.Path == "c" {
				out = e
			}
			return nil
		}); err != nil || out == nil {
			t.Fatalf("walk: %v", err)
		}
		return out
	}
	a, b := entry(unix.Mkdev(1, 3)), entry(unix.Mkdev(1, 5))
	if a.Same(b) || !a.Same(entry(unix.Mkdev(1, 3))) {
		t.Fatal("Same does not compare device numbers")
	}
}

// TestStoreWrittenBeforeSpecialFiles: a data directory written by the
// store before special files existed (testdata/store/v1: a snapshot, then
// a log with creates, a write, a link, a rename, a mkdir and a subtree
// restore) opens to the tree it held; its snapshot re-encodes byte for
// byte; a special file made afterwards survives a reopen.
func TestStoreWrittenBeforeSpecialFiles(t *testing.T) {
	src := "testdata/store/v1"
	dir := t.TempDir()
	for _, name := range []string{"snapshot", "wal-00000000000000000007.log"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := os.ReadFile(filepath.Join(src, "dump.txt"))
	oldSnap, _ := os.ReadFile(filepath.Join(src, "snapshot"))
	tr, lsn, err := decodeSnapshot(oldSnap)
	if err != nil {
		t.Fatal(err)
	}
	if again := encodeSnapshot(tr, lsn); !bytes.Equal(again, oldSnap) {
		t.Fatal("a snapshot written before special files re-encodes differently")
	}
	s := mustOpen(t, dir, Options{CompactBytes: -1})
	if got := dump(t, s); got != string(want) {
		t.Fatalf("opened:\n%s\nwant:\n%s", got, want)
	}
	if r := s.Recovery(); r.Replayed == 0 || r.CutBytes != 0 {
		t.Fatalf("recovery %+v, want the old log replayed whole", r)
	}
	if _, err := s.Mknod(RootIno, "c", syscall.S_IFCHR|0o600, unix.Mkdev(1, 3), 0, 0); err != nil {
		t.Fatal(err)
	}
	wantNow := dump(t, s)
	s.Close()
	s = mustOpen(t, dir, Options{})
	defer s.Close()
	if got := dump(t, s); got != wantNow {
		t.Fatalf("reopened:\n%s\nwant:\n%s", got, wantNow)
	}
}

// TestMknodEventRoundTrip: a mknod event decodes to what was encoded,
// its device number included, and a truncated one is refused.
func TestMknodEventRoundTrip(t *testing.T) {
	ev := event{kind: evMknod, ino: 9, parent: RootIno, name: "c", mode: syscall.S_IFCHR | 0o600,
		uid: 1, gid: 2, rdev: unix.Mkdev(4095, 1<<20-1), time: 5, group: 3}
	var e enc
	ev.encode(&e)
	got, err := decodeEvent(e.b)
	if err != nil {
		t.Fatal(err)
	}
	if got.data = nil; !reflect.DeepEqual(got, ev) { // empty data decodes as empty bytes
		t.Fatalf("decoded %+v, want %+v", got, ev)
	}
	if _, err := decodeEvent(e.b[:len(e.b)-1]); err == nil {
		t.Fatal("a mknod event without its whole device number decoded")
	}
}
