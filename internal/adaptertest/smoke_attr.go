package adaptertest

import (
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/store"
)

// The smoke cases on attributes, xattrs, statfs and errors (smoke.go).

func chmodChown(t *testing.T, m mnt) {
	writeFile(t, m.p("c"), "")
	must(t, os.Chmod(m.p("c"), 0o600))
	if st := lstat(t, m.p("c")); st.Mode != syscall.S_IFREG|0o600 {
		t.Errorf("mode after chmod 600 = %o", st.Mode)
	}
	must(t, unix.Chmod(m.p("c"), 0o4751)) // os.Chmod would drop the setuid bit
	if st := lstat(t, m.p("c")); st.Mode != syscall.S_IFREG|0o4751 {
		t.Errorf("mode after chmod 4751 = %o, want 104751", st.Mode)
	}
	must(t, os.Mkdir(m.p("sticky"), 0o755))
	must(t, unix.Chmod(m.p("sticky"), 0o1777))
	st := lstat(t, m.p("sticky"))
	t.Logf("chmod 1777 on a directory: stat mode %o", st.Mode)
	want := uint32(0o1777)
	if !m.a.StickyBit {
		want = 0o777
	}
	if st.Mode&0o7777 != want {
		t.Errorf("sticky directory mode %o, want %o (Adapter.StickyBit %v: update it and the package doc)",
			st.Mode&0o7777, want, m.a.StickyBit)
	}
	must(t, os.Lchown(m.p("c"), 1234, 5678))
	if st := lstat(t, m.p("c")); st.Uid != 1234 || st.Gid != 5678 {
		t.Errorf("owner after lchown = %d:%d", st.Uid, st.Gid)
	}
	must(t, os.Chown(m.p("c"), 4321, 8765))
	if st := lstat(t, m.p("c")); st.Uid != 4321 || st.Gid != 8765 {
		t.Errorf("owner after chown = %d:%d", st.Uid, st.Gid)
	}
}

func utimens(t *testing.T, m mnt) {
	writeFile(t, m.p("tm"), "")
	at, mt := time.Unix(1_000_000_000, 123_456_789), time.Unix(-1, 500) // before 1970 too
	must(t, os.Chtimes(m.p("tm"), at, mt))
	st := lstat(t, m.p("tm"))
	if got := time.Unix(st.Atim.Unix()); !got.Equal(at) {
		t.Errorf("atime = %v, want %v", got, at)
	}
	switch got := time.Unix(st.Mtim.Unix()); {
	case m.a.PreEpochTimes && !got.Equal(mt):
		t.Errorf("mtime = %v, want %v", got, mt)
	case !m.a.PreEpochTimes && got.Equal(mt):
		t.Errorf("mtime before 1970 kept: set Adapter.PreEpochTimes and update the package doc")
	case !m.a.PreEpochTimes:
		t.Logf("mtime %v shows as %v", mt, got)
	}
	ats := unix.NsecToTimespec(time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC).UnixNano())
	mts := unix.NsecToTimespec(time.Date(2002, 3, 4, 5, 6, 7, 8, time.UTC).UnixNano())
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, m.p("tm"), []unix.Timespec{ats, mts}, unix.AT_SYMLINK_NOFOLLOW))
	if st := lstat(t, m.p("tm")); st.Atim != ats || st.Mtim != mts {
		t.Errorf("times %v %v, want %v %v", st.Atim, st.Mtim, ats, mts)
	}
	before := time.Now().Add(-time.Second).UnixNano()
	now := []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_OMIT}}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, m.p("tm"), now, 0))
	if st := lstat(t, m.p("tm")); st.Atim.Nano() < before || st.Mtim != mts {
		t.Errorf("after UTIME_NOW, UTIME_OMIT: atime %v mtime %v, want now and %v", st.Atim, st.Mtim, mts)
	}
	now = []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, m.p("tm"), now, 0))
	if st := lstat(t, m.p("tm")); st.Atim.Nano() < before || st.Mtim.Nano() < before {
		t.Errorf("UTIME_NOW left atime %v mtime %v", st.Atim, st.Mtim)
	}
}

func truncate(t *testing.T, m mnt) {
	writeFile(t, m.p("t"), "0123456789")
	must(t, os.Truncate(m.p("t"), 4))
	if got := readFile(t, m.p("t")); got != "0123" {
		t.Errorf("after truncate(4): %q", got)
	}
	f, err := os.OpenFile(m.p("t"), os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	must(t, f.Truncate(8)) // ftruncate: a setattr with the handle
	if got := readFile(t, m.p("t")); got != "0123\x00\x00\x00\x00" {
		t.Errorf("after ftruncate(8): %q", got)
	}
	g, err := os.OpenFile(m.p("t"), os.O_WRONLY|os.O_TRUNC, 0) // a setattr too
	must(t, err)
	g.Close()
	if st := lstat(t, m.p("t")); st.Size != 0 {
		t.Errorf("size after open(O_TRUNC) = %d", st.Size)
	}
}

func xattr(t *testing.T, m mnt) {
	f := m.p("x")
	writeFile(t, f, "")
	must(t, unix.Setxattr(f, "user.b", []byte("value-b"), 0))
	must(t, unix.Setxattr(f, "user.a", []byte("A"), unix.XATTR_CREATE))
	must(t, unix.Setxattr(f, "user.empty", nil, 0))
	if err := unix.Setxattr(f, "user.a", []byte("A"), unix.XATTR_CREATE); err != unix.EEXIST {
		t.Errorf("XATTR_CREATE on a set name: %v, want EEXIST", err)
	}
	if err := unix.Setxattr(f, "user.none", []byte("v"), unix.XATTR_REPLACE); err != unix.ENODATA {
		t.Errorf("XATTR_REPLACE on an unset name: %v, want ENODATA", err)
	}
	if n, err := unix.Getxattr(f, "user.b", nil); n != len("value-b") || err != nil {
		t.Errorf("getxattr size query = %d, %v; want %d", n, err, len("value-b"))
	}
	if _, err := unix.Getxattr(f, "user.b", make([]byte, 3)); err != unix.ERANGE {
		t.Errorf("getxattr into 3 bytes: %v, want ERANGE", err)
	}
	buf := make([]byte, 64)
	if n, err := unix.Getxattr(f, "user.b", buf); err != nil || string(buf[:n]) != "value-b" {
		t.Errorf("getxattr = %q, %v", buf[:n], err)
	}
	if n, err := unix.Getxattr(f, "user.empty", buf); n != 0 || err != nil {
		t.Errorf("getxattr of an empty value = %d, %v", n, err)
	}
	if _, err := unix.Getxattr(f, "user.none", buf); err != unix.ENODATA {
		t.Errorf("getxattr of an unset name: %v, want ENODATA", err)
	}
	const list = "user.a\x00user.b\x00user.empty\x00"
	if n, err := unix.Listxattr(f, nil); n != len(list) || err != nil {
		t.Errorf("listxattr size query = %d, %v; want %d", n, err, len(list))
	}
	if _, err := unix.Listxattr(f, make([]byte, 5)); err != unix.ERANGE {
		t.Errorf("listxattr into 5 bytes: %v, want ERANGE", err)
	}
	if n, err := unix.Listxattr(f, buf); err != nil || string(buf[:n]) != list {
		t.Errorf("listxattr = %q, %v; want %q", buf[:n], err, list)
	}
	must(t, unix.Removexattr(f, "user.a"))
	if _, err := unix.Getxattr(f, "user.a", buf); err != unix.ENODATA {
		t.Errorf("getxattr after removexattr: %v, want ENODATA", err)
	}
	if err := unix.Removexattr(f, "user.a"); err != unix.ENODATA {
		t.Errorf("removexattr twice: %v, want ENODATA", err)
	}
}

func statfs(t *testing.T, m mnt) {
	var s unix.Statfs_t
	must(t, unix.Statfs(m.dir, &s))
	if s.Type != unix.FUSE_SUPER_MAGIC || s.Bsize != 4096 || s.Frsize != 4096 || s.Blocks != 1<<28 ||
		s.Namelen != store.MaxNameLen || s.Files != 1<<24 {
		t.Errorf("statfs = %+v", s)
	}
	if s.Bfree >= s.Blocks || s.Ffree >= s.Files {
		t.Errorf("statfs shows nothing used: bfree %d ffree %d", s.Bfree, s.Ffree)
	}
}

func unlinkedOpen(t *testing.T, m mnt) {
	writeFile(t, m.p("u"), "still here")
	f, err := os.OpenFile(m.p("u"), os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	must(t, os.Remove(m.p("u")))
	if _, err := os.Lstat(m.p("u")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lstat after unlink: %v, want ENOENT", err)
	}
	buf := make([]byte, 32)
	if n, err := f.ReadAt(buf, 0); string(buf[:n]) != "still here" || (err != nil && err != io.EOF) {
		t.Errorf("read unlinked open file = %q, %v", buf[:n], err)
	}
	if _, err := f.WriteAt([]byte("!"), 10); err != nil {
		t.Fatalf("write to an unlinked open file: %v", err)
	}
	if n, err := f.ReadAt(buf, 0); string(buf[:n]) != "still here!" || (err != nil && err != io.EOF) {
		t.Errorf("read back after the write = %q, %v", buf[:n], err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Nlink != 0 || st.Size != 11 {
		t.Errorf("fstat unlinked open file = nlink %d size %d, %v; want nlink 0 size 11", st.Nlink, st.Size, err)
	}
}

func errnos(t *testing.T, m mnt) {
	if err := os.Mkdir(m.p("d"), 0o755); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("mkdir existing: %v, want EEXIST", err)
	}
	if err := os.Remove(m.p("d")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("rmdir non-empty: %v, want ENOTEMPTY", err)
	}
	if _, err := os.ReadFile(m.p("missing")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("open missing: %v, want ENOENT", err)
	}
	if err := unix.Rmdir(m.p("a")); err != unix.ENOTDIR {
		t.Errorf("rmdir of a file: %v, want ENOTDIR", err)
	}
	if err := unix.Unlink(m.p("d")); err != unix.EISDIR {
		t.Errorf("unlink of a directory: %v, want EISDIR", err)
	}
	if _, err := os.Stat(m.p(strings.Repeat("n", 256))); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("256-byte name: %v, want ENAMETOOLONG", err)
	}
}

func fsync(t *testing.T, m mnt) {
	for _, name := range []string{"a", "d"} {
		f, err := os.Open(m.p(name))
		must(t, err)
		if err := f.Sync(); err != nil {
			t.Errorf("fsync %s: %v", name, err)
		}
		f.Close()
	}
}
