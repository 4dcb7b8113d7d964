package primary_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"bazil.org/fuse"
	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/adaptertest"
	"github.com/lighthouse-fs/lighthouse/internal/mounttest"
	"github.com/lighthouse-fs/lighthouse/primary"
	"github.com/lighthouse-fs/lighthouse/store"
)

// The mount is served by a re-executed child (mounttest.Main): this process
// only makes syscalls on it.
func TestMain(m *testing.M) {
	mounttest.Main(m, map[string]fusemount.MountFunc{"bazil": primary.Mount})
}

// TestErrno runs the shared errno table on what bazil sends the kernel for
// the adapter's translation (bazil's own fuse.ToErrno, as RespondError).
func TestErrno(t *testing.T) {
	adaptertest.Errno(t, func(err error) syscall.Errno {
		if e := primary.FuseErr(err); e != nil {
			return syscall.Errno(fuse.ToErrno(e))
		}
		return 0
	})
}

// TestSmoke drives the main operations with real syscalls.
func TestSmoke(t *testing.T) {
	m := mounttest.Start(t, "bazil", fusemount.Options{})
	d := m.Dir
	p := func(name string) string { return filepath.Join(d, name) }
	m.Guard(t, 60*time.Second, func() {
		t.Run("root", func(t *testing.T) {
			if st := lstat(t, d); st.Ino != store.RootIno || st.Mode&unix.S_IFMT != unix.S_IFDIR {
				t.Errorf("root ino %d mode %o", st.Ino, st.Mode)
			}
		})

		t.Run("create write read", func(t *testing.T) {
			want := []byte("hello, lighthouse\n")
			if err := os.WriteFile(p("f"), want, 0o640); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p("f"))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read back %q, %v", got, err)
			}
			st := lstat(t, p("f"))
			if st.Mode != unix.S_IFREG|0o640 || st.Size != int64(len(want)) || st.Nlink != 1 {
				t.Errorf("mode %o size %d nlink %d", st.Mode, st.Size, st.Nlink)
			}
			if st.Uid != uint32(os.Getuid()) || st.Gid != uint32(os.Getgid()) {
				t.Errorf("owner %d:%d, want the caller's", st.Uid, st.Gid)
			}
			// O_TRUNC on an existing file arrives as a setattr.
			f, err := os.OpenFile(p("f"), os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			if st := lstat(t, p("f")); st.Size != 0 {
				t.Errorf("size after O_TRUNC %d", st.Size)
			}
			if _, err := os.OpenFile(p("f"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); !errors.Is(err, unix.EEXIST) {
				t.Errorf("O_EXCL on existing: %v, want EEXIST", err)
			}
		})

		t.Run("sparse large", func(t *testing.T) {
			f, err := os.Create(p("big"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			data := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
			const off = 5 << 20
			if n, err := f.WriteAt(data, off); err != nil || n != len(data) {
				t.Fatalf("write %d, %v", n, err)
			}
			if err := f.Sync(); err != nil {
				t.Errorf("fsync: %v", err)
			}
			st := lstat(t, p("big"))
			if st.Size != off+int64(len(data)) {
				t.Errorf("size %d", st.Size)
			}
			got := make([]byte, len(data)+1<<20)
			if n, err := f.ReadAt(got, off-1<<20); n != len(got) || err != nil {
				t.Fatalf("read %d, %v", n, err)
			}
			if !bytes.Equal(got[:1<<20], make([]byte, 1<<20)) || !bytes.Equal(got[1<<20:], data) {
				t.Error("hole not zero or data differs")
			}
		})

		t.Run("mkdir readdir", func(t *testing.T) {
			if err := os.Mkdir(p("dir"), 0o750); err != nil {
				t.Fatal(err)
			}
			if st := lstat(t, p("dir")); st.Mode != unix.S_IFDIR|0o750 || st.Nlink != 2 {
				t.Errorf("dir mode %o nlink %d", st.Mode, st.Nlink)
			}
			must(t, os.WriteFile(p("dir/a"), nil, 0o644))
			must(t, os.Mkdir(p("dir/sub"), 0o755))
			must(t, os.Symlink("a", p("dir/ln")))
			ents := getdents(t, p("dir"))
			want := map[string]struct {
				ino uint64
				typ uint8
			}{
				".":   {lstat(t, p("dir")).Ino, unix.DT_DIR},
				"..":  {store.RootIno, unix.DT_DIR},
				"a":   {lstat(t, p("dir/a")).Ino, unix.DT_REG},
				"sub": {lstat(t, p("dir/sub")).Ino, unix.DT_DIR},
				"ln":  {lstat(t, p("dir/ln")).Ino, unix.DT_LNK},
			}
			if len(ents) != len(want) {
				t.Errorf("getdents: %v", ents)
			}
			for _, e := range ents {
				if w, ok := want[e.name]; !ok || w.ino != e.ino || w.typ != e.typ {
					t.Errorf("entry %q ino %d type %d, want %+v", e.name, e.ino, e.typ, w)
				}
			}
			if err := unix.Rmdir(p("dir")); err != unix.ENOTEMPTY {
				t.Errorf("rmdir non-empty: %v", err)
			}
			must(t, unix.Rmdir(p("dir/sub")))
			if st := lstat(t, p("dir")); st.Nlink != 2 {
				t.Errorf("nlink after rmdir of subdir %d", st.Nlink)
			}
		})

		t.Run("readdir large", func(t *testing.T) {
			must(t, os.Mkdir(p("many"), 0o755))
			want := []string{".", ".."}
			for i := range 1000 {
				name := fmt.Sprintf("file-%04d-%s", i, strings.Repeat("x", i%200))
				must(t, os.WriteFile(p("many/"+name), nil, 0o644))
				want = append(want, name)
			}
			var got []string
			for _, e := range getdents(t, p("many")) {
				got = append(got, e.name)
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("getdents listed %d names, want %d", len(got), len(want))
			}
		})

		t.Run("rename", func(t *testing.T) {
			must(t, os.WriteFile(p("r1"), []byte("one"), 0o644))
			must(t, os.WriteFile(p("r2"), []byte("two"), 0o644))
			ino := lstat(t, p("r1")).Ino
			must(t, os.Rename(p("r1"), p("r2")))
			if st := lstat(t, p("r2")); st.Ino != ino {
				t.Errorf("rename over: ino %d, want %d", st.Ino, ino)
			}
			if _, err := os.Lstat(p("r1")); !errors.Is(err, unix.ENOENT) {
				t.Errorf("old name: %v", err)
			}
			must(t, os.Mkdir(p("rdir"), 0o755))
			must(t, os.Rename(p("r2"), p("rdir/r3")))
			if b, err := os.ReadFile(p("rdir/r3")); err != nil || string(b) != "one" {
				t.Errorf("across dirs: %q, %v", b, err)
			}
		})

		t.Run("renameat2", func(t *testing.T) {
			must(t, os.WriteFile(p("n1"), nil, 0o644))
			must(t, os.WriteFile(p("n2"), nil, 0o644))
			// bazil cannot express renameat2 flags: it answers FUSE_RENAME2
			// with ENOSYS and the kernel turns that into EINVAL. Only
			// RENAME_NOREPLACE onto an existing name fails as on a real
			// filesystem: the VFS refuses it before asking FUSE.
			for _, c := range []struct {
				name  string
				to    string
				flags uint
				want  error
			}{
				{"RENAME_NOREPLACE onto an existing name", "n2", unix.RENAME_NOREPLACE, unix.EEXIST},
				{"RENAME_NOREPLACE onto a free name", "n3", unix.RENAME_NOREPLACE, unix.EINVAL}, // real fs: success
				{"RENAME_EXCHANGE", "n2", unix.RENAME_EXCHANGE, unix.EINVAL},                    // real fs: success
			} {
				err := unix.Renameat2(unix.AT_FDCWD, p("n1"), unix.AT_FDCWD, p(c.to), c.flags)
				t.Logf("renameat2(%s): %v", c.name, errnoName(err))
				if err != c.want {
					t.Errorf("renameat2(%s) = %v, want %v", c.name, err, c.want)
				}
			}
		})

		t.Run("link", func(t *testing.T) {
			must(t, os.WriteFile(p("l1"), []byte("x"), 0o644))
			must(t, os.Link(p("l1"), p("l2")))
			a, b := lstat(t, p("l1")), lstat(t, p("l2"))
			if a.Nlink != 2 || b.Nlink != 2 || a.Ino != b.Ino {
				t.Errorf("nlink %d/%d ino %d/%d", a.Nlink, b.Nlink, a.Ino, b.Ino)
			}
			must(t, os.Remove(p("l1")))
			if st := lstat(t, p("l2")); st.Nlink != 1 {
				t.Errorf("nlink after unlink %d", st.Nlink)
			}
		})

		t.Run("symlink", func(t *testing.T) {
			must(t, os.Symlink("no/such/target", p("sl")))
			if got, err := os.Readlink(p("sl")); err != nil || got != "no/such/target" {
				t.Errorf("readlink %q, %v", got, err)
			}
			if st := lstat(t, p("sl")); st.Mode != unix.S_IFLNK|0o777 || st.Size != int64(len("no/such/target")) {
				t.Errorf("symlink mode %o size %d", st.Mode, st.Size)
			}
		})

		t.Run("chmod chown utimens", func(t *testing.T) {
			must(t, os.WriteFile(p("c"), nil, 0o644))
			must(t, os.Chmod(p("c"), 0o600))
			if st := lstat(t, p("c")); st.Mode != unix.S_IFREG|0o600 {
				t.Errorf("mode after chmod %o", st.Mode)
			}
			must(t, unix.Chmod(p("c"), 0o4755))
			if st := lstat(t, p("c")); st.Mode != unix.S_IFREG|0o4755 {
				t.Errorf("mode after chmod 4755 %o", st.Mode)
			}
			must(t, os.Mkdir(p("sticky"), 0o755))
			must(t, unix.Chmod(p("sticky"), 0o1777))
			// bazil's attribute encoding drops S_ISVTX.
			st := lstat(t, p("sticky"))
			t.Logf("chmod 1777 on a directory: stat mode %o", st.Mode)
			if st.Mode&0o7777 != 0o777 {
				t.Errorf("sticky dir mode %o: bazil now reports the sticky bit; update the package doc", st.Mode)
			}
			must(t, os.Chown(p("c"), 1234, 5678))
			if st := lstat(t, p("c")); st.Uid != 1234 || st.Gid != 5678 {
				t.Errorf("owner %d:%d", st.Uid, st.Gid)
			}
			at := unix.NsecToTimespec(time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC).UnixNano())
			mt := unix.NsecToTimespec(time.Date(2002, 3, 4, 5, 6, 7, 8, time.UTC).UnixNano())
			must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p("c"), []unix.Timespec{at, mt}, unix.AT_SYMLINK_NOFOLLOW))
			if st := lstat(t, p("c")); st.Atim != at || st.Mtim != mt {
				t.Errorf("times %v %v, want %v %v", st.Atim, st.Mtim, at, mt)
			}
			before := time.Now().Add(-time.Second).UnixNano()
			now := []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_OMIT}}
			must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p("c"), now, 0))
			if st := lstat(t, p("c")); st.Atim.Nano() < before || st.Mtim != mt {
				t.Errorf("after UTIME_NOW: atime %v mtime %v", st.Atim, st.Mtim)
			}
		})

		t.Run("truncate", func(t *testing.T) {
			must(t, os.WriteFile(p("t"), []byte("0123456789"), 0o644))
			must(t, os.Truncate(p("t"), 4))
			if b, _ := os.ReadFile(p("t")); string(b) != "0123" {
				t.Errorf("after truncate %q", b)
			}
			f, err := os.OpenFile(p("t"), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			must(t, f.Truncate(8)) // through the handle
			if b, _ := os.ReadFile(p("t")); string(b) != "0123\x00\x00\x00\x00" {
				t.Errorf("after ftruncate %q", b)
			}
		})

		t.Run("xattr", func(t *testing.T) {
			must(t, os.WriteFile(p("x"), nil, 0o644))
			must(t, unix.Setxattr(p("x"), "user.b", []byte("value-b"), 0))
			must(t, unix.Setxattr(p("x"), "user.a", []byte("A"), unix.XATTR_CREATE))
			if err := unix.Setxattr(p("x"), "user.a", []byte("A"), unix.XATTR_CREATE); err != unix.EEXIST {
				t.Errorf("XATTR_CREATE on existing: %v", err)
			}
			if err := unix.Setxattr(p("x"), "user.c", []byte("C"), unix.XATTR_REPLACE); err != unix.ENODATA {
				t.Errorf("XATTR_REPLACE on missing: %v", err)
			}
			if n, err := unix.Getxattr(p("x"), "user.b", nil); n != len("value-b") || err != nil {
				t.Errorf("size query %d, %v", n, err)
			}
			if _, err := unix.Getxattr(p("x"), "user.b", make([]byte, 3)); err != unix.ERANGE {
				t.Errorf("small buffer: %v", err)
			}
			buf := make([]byte, 64)
			if n, err := unix.Getxattr(p("x"), "user.b", buf); err != nil || string(buf[:n]) != "value-b" {
				t.Errorf("getxattr %q, %v", buf[:n], err)
			}
			const list = "user.a\x00user.b\x00"
			if n, err := unix.Listxattr(p("x"), nil); n != len(list) || err != nil {
				t.Errorf("list size query %d, %v", n, err)
			}
			if _, err := unix.Listxattr(p("x"), make([]byte, 5)); err != unix.ERANGE {
				t.Errorf("list small buffer: %v", err)
			}
			if n, err := unix.Listxattr(p("x"), buf); err != nil || string(buf[:n]) != list {
				t.Errorf("listxattr %q, %v", buf[:n], err)
			}
			must(t, unix.Removexattr(p("x"), "user.a"))
			if _, err := unix.Getxattr(p("x"), "user.a", buf); err != unix.ENODATA {
				t.Errorf("after remove: %v", err)
			}
			if err := unix.Removexattr(p("x"), "user.a"); err != unix.ENODATA {
				t.Errorf("remove missing: %v", err)
			}
		})

		t.Run("statfs", func(t *testing.T) {
			var s unix.Statfs_t
			must(t, unix.Statfs(d, &s))
			if s.Bsize != 4096 || s.Frsize != 4096 || s.Blocks != 1<<28 || s.Namelen != store.MaxNameLen || s.Files != 1<<24 {
				t.Errorf("statfs %+v", s)
			}
		})

		t.Run("unlinked open", func(t *testing.T) {
			must(t, os.WriteFile(p("u"), []byte("still here"), 0o644))
			f, err := os.OpenFile(p("u"), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			must(t, os.Remove(p("u")))
			if _, err := os.Lstat(p("u")); !errors.Is(err, unix.ENOENT) {
				t.Errorf("name after unlink: %v", err)
			}
			buf := make([]byte, 10)
			if n, err := f.ReadAt(buf, 0); n != 10 || string(buf) != "still here" {
				t.Errorf("read unlinked %q, %v", buf[:n], err)
			}
			if _, err := f.WriteAt([]byte("!"), 10); err != nil {
				t.Errorf("write unlinked: %v", err)
			}
			var st unix.Stat_t
			must(t, unix.Fstat(int(f.Fd()), &st))
			if st.Nlink != 0 || st.Size != 11 {
				t.Errorf("fstat unlinked: nlink %d size %d", st.Nlink, st.Size)
			}
		})

		t.Run("mknod", func(t *testing.T) {
			// No store call for it: record what bazil answers.
			err := unix.Mkfifo(p("fifo"), 0o644)
			t.Logf("mkfifo: %v", errnoName(err))
			if err == nil {
				t.Error("mkfifo succeeded; update the package doc")
			}
		})
	})
}

// TestCacheOptions mounts with every option set and checks that the mount
// still behaves (the timeouts themselves are the kernel's business).
func TestCacheOptions(t *testing.T) {
	m := mounttest.Start(t, "bazil", fusemount.Options{
		EntryTimeout: time.Second, AttrTimeout: time.Second, NegativeTimeout: time.Second,
		KeepCache: true, DirectIO: true, FSName: "primary-test",
	})
	m.Guard(t, 30*time.Second, func() {
		e, ok := fusemount.Find(m.Dir)
		if !ok || e.Source != "primary-test" || e.FSType != "fuse.lighthouse" {
			t.Errorf("mount entry %+v, %v", e, ok)
		}
		f := filepath.Join(m.Dir, "d")
		data := bytes.Repeat([]byte{7}, 300<<10)
		must(t, os.WriteFile(f, data, 0o644))
		if b, err := os.ReadFile(f); err != nil || !bytes.Equal(b, data) {
			t.Errorf("direct io read back %d bytes, %v", len(b), err)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func lstat(t *testing.T, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func errnoName(err error) string {
	var e unix.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e) + " (" + e.Error() + ")"
	}
	return fmt.Sprint(err)
}

type dirent struct {
	name string
	ino  uint64
	typ  uint8
}

func (d dirent) String() string { return fmt.Sprintf("%s:%d:%d", d.name, d.ino, d.typ) }

// getdents reads a directory with getdents64, so "." and ".." and d_type
// are what the filesystem returned.
func getdents(t *testing.T, dir string) []dirent {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var out []dirent
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		for b := buf[:n]; len(b) > 0; {
			de := (*unix.Dirent)(unsafe.Pointer(&b[0]))
			name := unsafe.Slice((*byte)(unsafe.Pointer(&de.Name[0])), int(de.Reclen)-int(unsafe.Offsetof(de.Name)))
			out = append(out, dirent{name: string(name[:bytes.IndexByte(name, 0)]), ino: de.Ino, typ: de.Type})
			b = b[de.Reclen:]
		}
	}
	slices.SortFunc(out, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	return out
}

// TestUnmount mounts in this process (which then never touches the mount)
// and checks that unmount is idempotent, reports through done, and does
// not hang when the kernel connection is already gone.
func TestUnmount(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	for _, abort := range []bool{false, true} {
		t.Run(fmt.Sprintf("aborted=%v", abort), func(t *testing.T) {
			dir := t.TempDir()
			st := store.OpenMemory(store.Options{})
			defer st.Close()
			unmount, done, err := primary.Mount(dir, st, fusemount.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if cap(done) != 1 {
				t.Errorf("done has capacity %d, want 1", cap(done))
			}
			if abort {
				must(t, fusemount.Abort(dir))
			}
			start := time.Now()
			for i := range 2 {
				if err := unmount(); err != nil {
					t.Errorf("unmount #%d: %v", i+1, err)
				}
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("unmount took %v", d)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve loop: %v", err)
				}
				if _, open := <-done; open {
					t.Error("done not closed after its result")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("serve loop did not end")
			}
			if e, ok := fusemount.Find(dir); ok {
				t.Errorf("mount left behind: %+v", e)
				fusemount.Unmount(dir)
			}
		})
	}
}

// TestUnmountBusy holds a file open on the mount while the server stops:
// the clean unmount fails with EBUSY, and the fallback aborts the
// connection and detaches it instead of hanging.
func TestUnmountBusy(t *testing.T) {
	m := mounttest.Start(t, "bazil", fusemount.Options{})
	var f *os.File
	m.Guard(t, 30*time.Second, func() {
		var err error
		if f, err = os.Create(filepath.Join(m.Dir, "held")); err != nil {
			t.Fatal(err)
		}
	})
	defer f.Close()
	start := time.Now()
	if err := m.Stop(); err != nil {
		t.Errorf("stop with a busy mount: %v", err)
	}
	t.Logf("stop with a file held open took %v", time.Since(start).Round(time.Millisecond))
	if _, ok := fusemount.Find(m.Dir); ok {
		t.Error("mount left behind")
	}
	_, err := f.Write([]byte("x"))
	t.Logf("write on the held file after stop: %v", errnoName(err))
	if !errors.Is(err, unix.ENOTCONN) {
		t.Errorf("write after abort: %v, want ENOTCONN", err)
	}
}

// TestRemountAfterCrash kills a server, leaving a stale mount (ENOTCONN),
// and mounts again on the same directory: Mount cleans it first.
func TestRemountAfterCrash(t *testing.T) {
	m := mounttest.Start(t, "bazil", fusemount.Options{})
	m.Kill()
	if _, ok := fusemount.Find(m.Dir); !ok {
		t.Fatal("no stale mount after the kill")
	}
	m2 := mounttest.StartConfig(t, mounttest.Config{Backend: "bazil", Dir: m.Dir})
	m2.Guard(t, 30*time.Second, func() {
		must(t, os.WriteFile(filepath.Join(m2.Dir, "again"), []byte("ok"), 0o644))
	})
	if n := countMounts(m.Dir); n != 1 {
		t.Errorf("%d mounts on %s, want 1", n, m.Dir)
	}
}

func countMounts(dir string) int {
	ms, _ := fusemount.Mounts()
	n := 0
	for _, e := range ms {
		if e.Dir == dir {
			n++
		}
	}
	return n
}
