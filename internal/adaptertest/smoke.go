package adaptertest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/mounttest"
	"github.com/lighthouse-fs/lighthouse/store"
)

// mnt is the mount the smoke cases share.
type mnt struct {
	dir string
	a   Adapter
}

func (m mnt) p(name string) string { return filepath.Join(m.dir, name) }

// smokeCases run in order on one fresh store: later cases use what earlier
// ones made ("a", "d", "d/x"), and the first file created is inode 2.
var smokeCases = []struct {
	name string
	run  func(*testing.T, mnt)
}{
	{"mountinfo", mountinfo},
	{"root", root},
	{"create write read", createWriteRead},
	{"sparse large file", sparseLarge},
	{"mkdir readdir", mkdirReaddir},
	{"readdir large", readdirLarge},
	{"rename", rename},
	{"renameat2", renameat2},
	{"link", link},
	{"symlink", symlink},
	{"chmod chown", chmodChown},
	{"utimens", utimens},
	{"truncate", truncate},
	{"xattr", xattr},
	{"statfs", statfs},
	{"unlinked open file", unlinkedOpen},
	{"errors", errnos},
	{"fsync", fsync},
	{"mknod", mknod},
}

// smoke drives every kind of operation with real syscalls.
func smoke(t *testing.T, a Adapter) {
	m := mounttest.Start(t, a.Backend, fusemount.Options{})
	env := mnt{m.Dir, a}
	m.Guard(t, guard, func() {
		for _, c := range smokeCases {
			t.Run(c.name, func(t *testing.T) { c.run(t, env) })
		}
	})
}

func mountinfo(t *testing.T, m mnt) {
	e, ok := fusemount.Find(m.dir)
	if !ok || e.FSType != "fuse.lighthouse" || e.Source != "lighthouse" {
		t.Errorf("mount entry = %+v, %v; want fuse.lighthouse from lighthouse", e, ok)
	}
}

func root(t *testing.T, m mnt) {
	if st := lstat(t, m.dir); st.Ino != store.RootIno || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("root ino %d mode %o, want ino %d, a directory", st.Ino, st.Mode, store.RootIno)
	}
}

func createWriteRead(t *testing.T, m mnt) {
	want := []byte("hello, lighthouse\n")
	must(t, os.WriteFile(m.p("a"), want, 0o640))
	got, err := os.ReadFile(m.p("a"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %q, %v; want %q", got, err, want)
	}
	st := lstat(t, m.p("a"))
	if st.Ino != 2 || st.Mode != syscall.S_IFREG|0o640 || st.Size != int64(len(want)) || st.Nlink != 1 {
		t.Errorf("stat a = ino %d mode %o size %d nlink %d; want ino 2 mode 100640 size %d nlink 1",
			st.Ino, st.Mode, st.Size, st.Nlink, len(want))
	}
	if st.Uid != uint32(os.Geteuid()) || st.Gid != uint32(os.Getegid()) {
		t.Errorf("owner %d:%d, want the caller's %d:%d", st.Uid, st.Gid, os.Geteuid(), os.Getegid())
	}
	if _, err := os.OpenFile(m.p("a"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); !errors.Is(err, unix.EEXIST) {
		t.Errorf("O_EXCL on an existing file: %v, want EEXIST", err)
	}
}

func sparseLarge(t *testing.T, m mnt) {
	const off, n = 5 << 20, 3<<20 + 123 // past 1 MiB requests, unaligned end
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	f, err := os.Create(m.p("big"))
	must(t, err)
	defer f.Close()
	if w, err := f.WriteAt(data, off); err != nil || w != n {
		t.Fatalf("pwrite = %d, %v", w, err)
	}
	if err := f.Sync(); err != nil {
		t.Errorf("fsync: %v", err)
	}
	got := make([]byte, off+n+10)
	r, err := f.ReadAt(got, 0)
	if r != off+n || (err != nil && err != io.EOF) {
		t.Fatalf("pread = %d, %v; want %d", r, err, off+n)
	}
	if !bytes.Equal(got[off:off+n], data) || slices.ContainsFunc(got[:off], func(b byte) bool { return b != 0 }) {
		t.Error("sparse file reads back wrong: want zeros, then the data")
	}
	st := lstat(t, m.p("big"))
	if st.Size != off+n || st.Blocks*512 >= st.Size {
		t.Errorf("size %d blocks %d: want size %d and fewer blocks than the size (a hole)", st.Size, st.Blocks, off+n)
	}
}

func mkdirReaddir(t *testing.T, m mnt) {
	must(t, os.Mkdir(m.p("d"), 0o750))
	d := lstat(t, m.p("d"))
	if d.Mode != syscall.S_IFDIR|0o750 || d.Nlink != 2 {
		t.Errorf("stat d = mode %o nlink %d, want 40750 nlink 2", d.Mode, d.Nlink)
	}
	must(t, os.WriteFile(m.p("d/x"), nil, 0o600))
	must(t, os.Mkdir(m.p("d/sub"), 0o755))
	must(t, os.Symlink("x", m.p("d/ln")))
	want := []dirent{
		{".", d.Ino, unix.DT_DIR}, {"..", store.RootIno, unix.DT_DIR},
		{"ln", lstat(t, m.p("d/ln")).Ino, unix.DT_LNK}, {"sub", lstat(t, m.p("d/sub")).Ino, unix.DT_DIR},
		{"x", lstat(t, m.p("d/x")).Ino, unix.DT_REG},
	}
	if got := getdents(t, m.p("d")); !slices.Equal(got, want) {
		t.Errorf("getdents d = %v, want %v", got, want)
	}
	rootEnts := getdents(t, m.dir)
	for _, name := range []string{".", ".."} {
		i := slices.IndexFunc(rootEnts, func(e dirent) bool { return e.name == name })
		if i < 0 || slices.IndexFunc(rootEnts[i+1:], func(e dirent) bool { return e.name == name }) >= 0 {
			t.Errorf("root lists %q other than once: %v", name, rootEnts)
		} else if name == ".." && rootEnts[i].ino != store.RootIno {
			t.Errorf("root's .. has ino %d, want %d", rootEnts[i].ino, store.RootIno)
		}
	}
	if err := unix.Rmdir(m.p("d")); err != unix.ENOTEMPTY {
		t.Errorf("rmdir non-empty: %v, want ENOTEMPTY", err)
	}
	must(t, unix.Rmdir(m.p("d/sub")))
	must(t, os.Remove(m.p("d/ln")))
	if st := lstat(t, m.p("d")); st.Nlink != 2 {
		t.Errorf("nlink after rmdir of the subdirectory %d, want 2", st.Nlink)
	}
}

func readdirLarge(t *testing.T, m mnt) {
	must(t, os.Mkdir(m.p("many"), 0o755))
	want := []string{".", ".."}
	for i := range 1000 {
		name := fmt.Sprintf("file-%04d-%s", i, strings.Repeat("x", i%200))
		must(t, os.WriteFile(m.p("many/"+name), nil, 0o644))
		want = append(want, name)
	}
	var got []string
	for _, e := range getdents(t, m.p("many")) {
		got = append(got, e.name)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("getdents listed %d names, want %d", len(got), len(want))
	}
}

func rename(t *testing.T, m mnt) {
	writeFile(t, m.p("r1"), "one")
	writeFile(t, m.p("r2"), "two")
	ino := lstat(t, m.p("r1")).Ino
	must(t, os.Rename(m.p("r1"), m.p("r2")))
	if st := lstat(t, m.p("r2")); st.Ino != ino {
		t.Errorf("rename over a file: ino %d, want %d", st.Ino, ino)
	}
	if _, err := os.Lstat(m.p("r1")); !errors.Is(err, unix.ENOENT) {
		t.Errorf("old name after rename: %v, want ENOENT", err)
	}
	must(t, os.Rename(m.p("r2"), m.p("d/moved")))
	if got := readFile(t, m.p("d/moved")); got != "one" {
		t.Errorf("across directories: %q, want one", got)
	}
	if st := lstat(t, m.p("d/moved")); st.Ino != ino {
		t.Errorf("renamed file has ino %d, want %d", st.Ino, ino)
	}
	must(t, os.Remove(m.p("d/moved")))
}

// renameat2 checks the flags, or, where the library cannot pass them, the
// EINVAL the kernel makes of its ENOSYS.
func renameat2(t *testing.T, m mnt) {
	writeFile(t, m.p("n1"), "one")
	writeFile(t, m.p("n2"), "two")
	var unsupported error
	if !m.a.RenameFlags {
		unsupported = unix.EINVAL
	}
	for _, c := range []struct {
		name     string
		from, to string
		flags    uint
		want     error
	}{
		{"RENAME_NOREPLACE onto an existing name", "n1", "n2", unix.RENAME_NOREPLACE, unix.EEXIST},
		{"RENAME_EXCHANGE", "n1", "n2", unix.RENAME_EXCHANGE, unsupported},
		{"RENAME_NOREPLACE onto a free name", "n2", "n3", unix.RENAME_NOREPLACE, unsupported},
	} {
		err := unix.Renameat2(unix.AT_FDCWD, m.p(c.from), unix.AT_FDCWD, m.p(c.to), c.flags)
		t.Logf("renameat2(%s): %v", c.name, errnoName(err))
		if err != c.want {
			t.Errorf("renameat2(%s) = %v, want %v", c.name, err, c.want)
		}
	}
	if m.a.RenameFlags {
		if a, b := readFile(t, m.p("n1")), readFile(t, m.p("n3")); a != "two" || b != "one" {
			t.Errorf("after exchange and move n1=%q n3=%q, want two, one", a, b)
		}
	}
}

func link(t *testing.T, m mnt) {
	must(t, os.Link(m.p("a"), m.p("d/a2")))
	a, a2 := lstat(t, m.p("a")), lstat(t, m.p("d/a2"))
	if a.Ino != a2.Ino || a.Nlink != 2 || a2.Nlink != 2 {
		t.Errorf("link: ino %d/%d nlink %d/%d, want one ino, nlink 2", a.Ino, a2.Ino, a.Nlink, a2.Nlink)
	}
	must(t, os.Remove(m.p("d/a2")))
	if st := lstat(t, m.p("a")); st.Nlink != 1 {
		t.Errorf("nlink after unlink of the other name %d, want 1", st.Nlink)
	}
	if err := os.Link(m.p("d"), m.p("dlink")); !errors.Is(err, syscall.EPERM) {
		t.Errorf("link to a directory: %v, want EPERM", err)
	}
}

func symlink(t *testing.T, m mnt) {
	must(t, os.Symlink("no/such/target", m.p("dangling")))
	if got, err := os.Readlink(m.p("dangling")); err != nil || got != "no/such/target" {
		t.Errorf("readlink = %q, %v", got, err)
	}
	if st := lstat(t, m.p("dangling")); st.Mode != syscall.S_IFLNK|0o777 || st.Size != int64(len("no/such/target")) {
		t.Errorf("lstat of a symlink = mode %o size %d, want 120777 size %d", st.Mode, st.Size, len("no/such/target"))
	}
	must(t, os.Symlink("d/x", m.p("s")))
	if st := stat(t, m.p("s")); st.Ino != lstat(t, m.p("d/x")).Ino {
		t.Error("stat through the symlink is not its target")
	}
}
