package shadow_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/adaptertest"
	"github.com/lighthouse-fs/lighthouse/internal/mounttest"
	"github.com/lighthouse-fs/lighthouse/shadow"
	"github.com/lighthouse-fs/lighthouse/store"
)

// The mount is served by a re-executed child (mounttest): this process
// only makes syscalls on it, never serves it.
func TestMain(m *testing.M) {
	mounttest.Main(m, map[string]fusemount.MountFunc{"gofuse": shadow.Mount})
}

// TestErrno runs the shared errno table on the adapter's translation
// (go-fuse sends a method's syscall.Errno as is).
func TestErrno(t *testing.T) { adaptertest.Errno(t, shadow.Errno) }

const guard = 10 * time.Second

// TestSmoke drives the main operations with real syscalls. Subtests share
// one fresh store and run in order: the inode numbers checked are the
// store's, which counts up from 2.
func TestSmoke(t *testing.T) {
	m := mounttest.Start(t, "gofuse", fusemount.Options{})
	m.Guard(t, guard, func() { smoke(t, m.Dir) })
}

func smoke(t *testing.T, dir string) {
	p := func(name string) string { return filepath.Join(dir, name) }

	t.Run("mountinfo", func(t *testing.T) {
		e, ok := fusemount.Find(dir)
		if !ok || e.FSType != "fuse.lighthouse" || e.Source != "lighthouse" {
			t.Errorf("mount entry = %+v, %v; want fuse.lighthouse from lighthouse", e, ok)
		}
	})

	t.Run("root ino", func(t *testing.T) {
		if ino := stat(t, dir).Ino; ino != store.RootIno {
			t.Errorf("root ino = %d, want %d", ino, store.RootIno)
		}
	})

	t.Run("create write read", func(t *testing.T) {
		want := []byte("hello, lighthouse\n")
		if err := os.WriteFile(p("a"), want, 0o640); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p("a"))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read back %q, %v; want %q", got, err, want)
		}
		st := stat(t, p("a"))
		if st.Ino != 2 || st.Mode != syscall.S_IFREG|0o640 || st.Size != int64(len(want)) || st.Nlink != 1 {
			t.Errorf("stat a = ino %d mode %o size %d nlink %d; want ino 2 mode 100640 size %d nlink 1",
				st.Ino, st.Mode, st.Size, st.Nlink, len(want))
		}
		if st.Uid != uint32(os.Geteuid()) || st.Gid != uint32(os.Getegid()) {
			t.Errorf("owner %d:%d, want the caller's %d:%d", st.Uid, st.Gid, os.Geteuid(), os.Getegid())
		}
	})

	t.Run("sparse large file", func(t *testing.T) {
		const off, n = 5 << 20, 3<<20 + 123 // past 1 MiB requests, unaligned end
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*7 + 1)
		}
		f, err := os.Create(p("big"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if w, err := f.WriteAt(data, off); err != nil || w != n {
			t.Fatalf("pwrite = %d, %v", w, err)
		}
		got := make([]byte, off+n+10)
		r, err := f.ReadAt(got, 0)
		if r != off+n || (err != nil && err != io.EOF) {
			t.Fatalf("pread = %d, %v; want %d", r, err, off+n)
		}
		if !bytes.Equal(got[off:off+n], data) || slices.ContainsFunc(got[:off], func(b byte) bool { return b != 0 }) {
			t.Error("sparse file reads back wrong: want zeros, then the data")
		}
		st := stat(t, p("big"))
		if st.Size != off+n || st.Blocks*512 >= st.Size {
			t.Errorf("size %d blocks %d: want size %d and fewer blocks than the size (a hole)", st.Size, st.Blocks, off+n)
		}
	})

	t.Run("mkdir readdir", func(t *testing.T) {
		if err := os.Mkdir(p("d"), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p("d/x"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		d := stat(t, p("d"))
		if d.Mode != syscall.S_IFDIR|0o750 || d.Nlink != 2 {
			t.Errorf("stat d = mode %o nlink %d, want 40750 nlink 2", d.Mode, d.Nlink)
		}
		x := stat(t, p("d/x"))
		want := []dirent{{".", d.Ino, unix.DT_DIR}, {"..", store.RootIno, unix.DT_DIR}, {"x", x.Ino, unix.DT_REG}}
		if got := getdents(t, p("d")); !slices.Equal(got, want) {
			t.Errorf("getdents d = %v, want %v", got, want)
		}
		root := getdents(t, dir)
		for _, name := range []string{".", ".."} {
			if n := countName(root, name); n != 1 {
				t.Errorf("root lists %q %d times, want once: %v", name, n, root)
			}
		}
		if i := slices.IndexFunc(root, func(e dirent) bool { return e.name == ".." }); i >= 0 && root[i].ino != store.RootIno {
			t.Errorf("root's .. has ino %d, want %d", root[i].ino, store.RootIno)
		}
	})

	t.Run("rename", func(t *testing.T) {
		writeFile(t, p("r1"), "one")
		writeFile(t, p("r2"), "two")
		ino1 := stat(t, p("r1")).Ino
		if err := unix.Renameat2(unix.AT_FDCWD, p("r1"), unix.AT_FDCWD, p("r2"), unix.RENAME_NOREPLACE); err != unix.EEXIST {
			t.Errorf("RENAME_NOREPLACE onto a file: %v, want EEXIST", err)
		}
		if err := unix.Renameat2(unix.AT_FDCWD, p("r1"), unix.AT_FDCWD, p("r2"), unix.RENAME_EXCHANGE); err != nil {
			t.Fatalf("RENAME_EXCHANGE: %v", err)
		}
		if a, b := readFile(t, p("r1")), readFile(t, p("r2")); a != "two" || b != "one" {
			t.Errorf("after exchange r1=%q r2=%q, want two, one", a, b)
		}
		if err := os.Rename(p("r2"), p("d/moved")); err != nil {
			t.Fatal(err)
		}
		if ino := stat(t, p("d/moved")).Ino; ino != ino1 {
			t.Errorf("renamed file has ino %d, want %d", ino, ino1)
		}
		if _, err := os.Lstat(p("r2")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("old name after rename: %v, want ENOENT", err)
		}
	})

	t.Run("link", func(t *testing.T) {
		if err := os.Link(p("a"), p("d/a2")); err != nil {
			t.Fatal(err)
		}
		a, a2 := stat(t, p("a")), stat(t, p("d/a2"))
		if a.Ino != a2.Ino || a.Nlink != 2 || a2.Nlink != 2 {
			t.Errorf("link: ino %d/%d nlink %d/%d, want one ino, nlink 2", a.Ino, a2.Ino, a.Nlink, a2.Nlink)
		}
		if err := os.Link(p("d"), p("dlink")); !errors.Is(err, syscall.EPERM) {
			t.Errorf("link to a directory: %v, want EPERM", err)
		}
	})

	t.Run("symlink", func(t *testing.T) {
		if err := os.Symlink("d/x", p("s")); err != nil {
			t.Fatal(err)
		}
		if target, err := os.Readlink(p("s")); err != nil || target != "d/x" {
			t.Errorf("readlink = %q, %v", target, err)
		}
		if st := lstat(t, p("s")); st.Mode != syscall.S_IFLNK|0o777 || st.Size != 3 {
			t.Errorf("lstat s = mode %o size %d, want 120777 size 3", st.Mode, st.Size)
		}
		if st := stat(t, p("s")); st.Ino != stat(t, p("d/x")).Ino {
			t.Error("stat through the symlink is not its target")
		}
	})

	t.Run("chmod chown utimes", func(t *testing.T) {
		if err := unix.Chmod(p("a"), 0o4751); err != nil { // os.Chmod would drop the setuid bit
			t.Fatal(err)
		}
		if st := stat(t, p("a")); st.Mode != syscall.S_IFREG|0o4751 {
			t.Errorf("mode after chmod = %o, want 104751", st.Mode)
		}
		if err := os.Lchown(p("a"), 1234, 5678); err != nil {
			t.Fatal(err)
		}
		if st := stat(t, p("a")); st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("owner after chown = %d:%d", st.Uid, st.Gid)
		}
		at, mt := time.Unix(1_000_000_000, 123_456_789), time.Unix(-1, 500) // before 1970 too
		if err := os.Chtimes(p("a"), at, mt); err != nil {
			t.Fatal(err)
		}
		st := stat(t, p("a"))
		if got := time.Unix(st.Atim.Unix()); !got.Equal(at) {
			t.Errorf("atime = %v, want %v", got, at)
		}
		if got := time.Unix(st.Mtim.Unix()); !got.Equal(mt) {
			t.Errorf("mtime = %v, want %v", got, mt)
		}
		before := time.Now().Add(-time.Second)
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p("a"), []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}, 0); err != nil {
			t.Fatal(err)
		}
		if st := stat(t, p("a")); time.Unix(st.Mtim.Unix()).Before(before) || time.Unix(st.Atim.Unix()).Before(before) {
			t.Errorf("UTIME_NOW left atime %v mtime %v", time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix()))
		}
	})

	t.Run("truncate", func(t *testing.T) {
		writeFile(t, p("t"), "0123456789")
		if err := os.Truncate(p("t"), 4); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, p("t")); got != "0123" {
			t.Errorf("after truncate(4): %q", got)
		}
		f, err := os.OpenFile(p("t"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(6); err != nil { // ftruncate: SETATTR with the handle
			t.Fatal(err)
		}
		if got := readFile(t, p("t")); got != "0123\x00\x00" {
			t.Errorf("after ftruncate(6): %q", got)
		}
		g, err := os.OpenFile(p("t"), os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		g.Close()
		if st := stat(t, p("t")); st.Size != 0 {
			t.Errorf("size after open(O_TRUNC) = %d", st.Size)
		}
	})

	t.Run("xattr", func(t *testing.T) {
		f := p("a")
		if err := unix.Setxattr(f, "user.k", []byte("value"), 0); err != nil {
			t.Fatal(err)
		}
		if err := unix.Setxattr(f, "user.k", []byte("v"), unix.XATTR_CREATE); err != unix.EEXIST {
			t.Errorf("XATTR_CREATE on a set name: %v, want EEXIST", err)
		}
		if err := unix.Setxattr(f, "user.none", []byte("v"), unix.XATTR_REPLACE); err != unix.ENODATA {
			t.Errorf("XATTR_REPLACE on an unset name: %v, want ENODATA", err)
		}
		if err := unix.Setxattr(f, "user.empty", nil, 0); err != nil {
			t.Fatal(err)
		}
		if n, err := unix.Getxattr(f, "user.k", nil); n != 5 || err != nil {
			t.Errorf("getxattr size query = %d, %v; want 5", n, err)
		}
		if _, err := unix.Getxattr(f, "user.k", make([]byte, 2)); err != unix.ERANGE {
			t.Errorf("getxattr into 2 bytes: %v, want ERANGE", err)
		}
		buf := make([]byte, 64)
		if n, err := unix.Getxattr(f, "user.k", buf); err != nil || string(buf[:n]) != "value" {
			t.Errorf("getxattr = %q, %v", buf[:n], err)
		}
		if n, err := unix.Getxattr(f, "user.empty", buf); n != 0 || err != nil {
			t.Errorf("getxattr of an empty value = %d, %v", n, err)
		}
		if _, err := unix.Getxattr(f, "user.none", buf); err != unix.ENODATA {
			t.Errorf("getxattr of an unset name: %v, want ENODATA", err)
		}
		const list = "user.empty\x00user.k\x00"
		if n, err := unix.Listxattr(f, nil); n != len(list) || err != nil {
			t.Errorf("listxattr size query = %d, %v; want %d", n, err, len(list))
		}
		if _, err := unix.Listxattr(f, make([]byte, 3)); err != unix.ERANGE {
			t.Errorf("listxattr into 3 bytes: %v, want ERANGE", err)
		}
		if n, err := unix.Listxattr(f, buf); err != nil || string(buf[:n]) != list {
			t.Errorf("listxattr = %q, %v; want %q", buf[:n], err, list)
		}
		if err := unix.Removexattr(f, "user.k"); err != nil {
			t.Fatal(err)
		}
		if err := unix.Removexattr(f, "user.k"); err != unix.ENODATA {
			t.Errorf("removexattr twice: %v, want ENODATA", err)
		}
	})

	t.Run("statfs", func(t *testing.T) {
		var s unix.Statfs_t
		if err := unix.Statfs(dir, &s); err != nil {
			t.Fatal(err)
		}
		if s.Type != unix.FUSE_SUPER_MAGIC || s.Bsize != 4096 || s.Blocks != 1<<28 || s.Namelen != store.MaxNameLen || s.Files != 1<<24 {
			t.Errorf("statfs = %+v", s)
		}
		if s.Bfree >= s.Blocks || s.Ffree >= s.Files {
			t.Errorf("statfs shows nothing used: bfree %d ffree %d", s.Bfree, s.Ffree)
		}
	})

	t.Run("unlinked open file", func(t *testing.T) {
		writeFile(t, p("u"), "still here")
		f, err := os.OpenFile(p("u"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := os.Remove(p("u")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(p("u")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lstat after unlink: %v, want ENOENT", err)
		}
		if _, err := f.WriteAt([]byte("!"), 10); err != nil {
			t.Fatalf("write to an unlinked open file: %v", err)
		}
		buf := make([]byte, 32)
		n, err := f.ReadAt(buf, 0)
		if string(buf[:n]) != "still here!" || (err != nil && err != io.EOF) {
			t.Errorf("read unlinked open file = %q, %v", buf[:n], err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Nlink != 0 || st.Size != 11 {
			t.Errorf("fstat unlinked open file = nlink %d size %d, %v; want nlink 0 size 11", st.Nlink, st.Size, err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		if err := os.Mkdir(p("d"), 0o755); !errors.Is(err, syscall.EEXIST) {
			t.Errorf("mkdir existing: %v, want EEXIST", err)
		}
		if err := os.Remove(p("d")); !errors.Is(err, syscall.ENOTEMPTY) {
			t.Errorf("rmdir non-empty: %v, want ENOTEMPTY", err)
		}
		if _, err := os.ReadFile(p("missing")); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("open missing: %v, want ENOENT", err)
		}
		if err := unix.Rmdir(p("a")); err != unix.ENOTDIR {
			t.Errorf("rmdir of a file: %v, want ENOTDIR", err)
		}
		if err := unix.Unlink(p("d")); err != unix.EISDIR {
			t.Errorf("unlink of a directory: %v, want EISDIR", err)
		}
		if _, err := os.Stat(p(strings.Repeat("n", 256))); !errors.Is(err, syscall.ENAMETOOLONG) {
			t.Errorf("256-byte name: %v, want ENAMETOOLONG", err)
		}
	})

	t.Run("fsync", func(t *testing.T) {
		for _, name := range []string{"a", "d"} {
			f, err := os.Open(p(name))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Errorf("fsync %s: %v", name, err)
			}
			f.Close()
		}
	})
}

// TestUnmountLeavesNothing checks that stopping the server removes the
// mount from the namespace.
func TestUnmountLeavesNothing(t *testing.T) {
	m := mounttest.Start(t, "gofuse", fusemount.Options{})
	m.Guard(t, guard, func() { writeFile(t, filepath.Join(m.Dir, "f"), "x") })
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if e, ok := fusemount.Find(m.Dir); ok {
		t.Errorf("mount still present after stop: %+v", e)
	}
}

// TestUnmountBusy stops the server while a file on the mount is open: the
// polite unmount fails with EBUSY, the lazy detach takes over, and the
// serve loop ends once the file is closed.
func TestUnmountBusy(t *testing.T) {
	m := mounttest.Start(t, "gofuse", fusemount.Options{})
	var f *os.File
	m.Guard(t, guard, func() {
		var err error
		if f, err = os.Create(filepath.Join(m.Dir, "busy")); err != nil {
			t.Fatal(err)
		}
	})
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		time.Sleep(500 * time.Millisecond)
		f.Close()
	}()
	if err := m.Stop(); err != nil {
		t.Error(err)
	}
	<-closed
	if e, ok := fusemount.Find(m.Dir); ok {
		t.Errorf("mount still present after stop: %+v", e)
	}
}

// TestOptions mounts with every option set to a non-default value: the
// mount shows its name, and the cached and uncached paths still agree.
func TestOptions(t *testing.T) {
	opts := fusemount.Options{
		EntryTimeout: time.Second, AttrTimeout: time.Second, NegativeTimeout: time.Second,
		KeepCache: true, DirectIO: true, FSName: "custom-name",
	}
	m := mounttest.Start(t, "gofuse", opts)
	m.Guard(t, guard, func() {
		if e, ok := fusemount.Find(m.Dir); !ok || e.Source != "custom-name" || e.FSType != "fuse.lighthouse" {
			t.Errorf("mount entry = %+v, %v", e, ok)
		}
		f := filepath.Join(m.Dir, "f")
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("stat before create: %v", err)
		}
		// The cached negative entry must not hide a file created through
		// the mount.
		writeFile(t, f, "direct")
		if got := readFile(t, f); got != "direct" {
			t.Errorf("read back %q", got)
		}
		if err := os.Truncate(f, 2); err != nil {
			t.Fatal(err)
		}
		if st := stat(t, f); st.Size != 2 {
			t.Errorf("size after truncate = %d, want 2", st.Size)
		}
	})
}

type dirent struct {
	name string
	ino  uint64
	typ  uint8
}

// getdents lists dir with getdents64 itself: os.ReadDir hides "." and "..".
func getdents(t *testing.T, dir string) []dirent {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var out []dirent
	buf := make([]byte, 4096)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return out
		}
		for b := buf[:n]; len(b) > 0; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
			reclen := binary.NativeEndian.Uint16(b[16:])
			name, _, _ := bytes.Cut(b[19:reclen], []byte{0})
			out = append(out, dirent{string(name), binary.NativeEndian.Uint64(b), b[18]})
			b = b[reclen:]
		}
	}
}

func countName(ents []dirent, name string) int {
	n := 0
	for _, e := range ents {
		if e.name == name {
			n++
		}
	}
	return n
}

func stat(t *testing.T, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func lstat(t *testing.T, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
