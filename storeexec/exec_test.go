package storeexec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/internal/caps"
	"github.com/lighthouse-fs/lighthouse/store"
	"github.com/lighthouse-fs/lighthouse/storeexec"
	"github.com/lighthouse-fs/lighthouse/sysexec"
)

// The differential tests run the same op sequence through the store's
// Executor on a memory store and through sysexec on a temporary directory,
// and require the same errno, the same result and the same final tree, after
// ignoring what legitimately differs: inode numbers, times (unless a case
// sets them), statfs numbers, directory sizes, the order of directory
// entries and xattr names, and the entries' d_off (ext4's name hashes, the
// store's index+1: TestReaddirOffsets).

var umaskOnce sync.Once

// newPair returns the executor under test and the reference on a fresh root.
func newPair(t *testing.T) (*storeexec.Executor, *sysexec.Executor) {
	t.Helper()
	// The store applies no umask; the kernel applies the process's.
	umaskOnce.Do(func() { unix.Umask(0) })
	got := storeexec.New(store.OpenMemory(store.Options{}))
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	want, err := sysexec.New(root, sysexec.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { got.Close(); want.Close() })
	return got, want
}

type diffCase struct {
	name  string
	ops   []fsop.Op
	times bool // compare atime and mtime (every stat in the case follows a utimens)
}

func runDiff(t *testing.T, cases []diffCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, want := newPair(t)
			for i, op := range tc.ops {
				if err := op.Validate(); err != nil {
					t.Fatalf("op %d %s: validate: %v", i, op.Kind, err)
				}
				a, b := op, op
				wr, werr := want.Exec(&a)
				gr, gerr := got.Exec(&b)
				if wc, gc := errClass(werr), errClass(gerr); wc != gc {
					t.Errorf("op %d %s %q: refusal %s (%v), sysexec %s (%v)", i, op.Kind, op.Path, gc, gerr, wc, werr)
					continue
				}
				if w, g := norm(wr, tc.times), norm(gr, tc.times); w != g {
					t.Errorf("op %d %s %q %q:\n  store   %s\n  sysexec %s", i, op.Kind, op.Path, op.To, g, w)
				}
			}
			if w, g := dumpTree(t, want), dumpTree(t, got); w != g {
				t.Errorf("final trees differ:\n--- store\n%s--- sysexec\n%s", g, w)
			}
		})
	}
}

// errClass names the refusal sentinels err wraps ("" for nil).
func errClass(err error) string {
	if err == nil {
		return ""
	}
	var names []string
	for _, s := range []struct {
		n string
		e error
	}{{"escapes", fsop.ErrPathEscapes}, {"badvalue", fsop.ErrBadValue}, {"unknown", fsop.ErrUnknownOp}, {"missing", fsop.ErrMissing}} {
		if errors.Is(err, s.e) {
			names = append(names, s.n)
		}
	}
	return "refused(" + strings.Join(names, ",") + ")"
}

// norm renders r as JSON without what may legitimately differ.
func norm(r fsop.Result, times bool) string {
	if r.Stat != nil {
		s := *r.Stat
		s.Ino, s.CtimeNs = 0, 0
		if !times {
			s.AtimeNs, s.MtimeNs = 0, 0
		}
		if s.Mode&unix.S_IFMT == unix.S_IFDIR {
			s.Size = 0 // ext4 directories are 4096 bytes, the store's 0
		}
		r.Stat = &s
	}
	if r.Statfs != nil {
		r.Statfs = &fsop.StatfsInfo{}
	}
	r.Entries = slices.Clone(r.Entries)
	for i := range r.Entries {
		r.Entries[i].Off = 0
	}
	slices.SortFunc(r.Entries, func(a, b fsop.Dirent) int { return strings.Compare(a.Name, b.Name) })
	r.Names = slices.Clone(r.Names)
	slices.Sort(r.Names)
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestReaddirOffsets: the store has no cookie of its own, so an entry's
// d_off is its index+1 (the position after it, as go-fuse gives it).
func TestReaddirOffsets(t *testing.T) {
	e, _ := newPair(t)
	for _, op := range []fsop.Op{mkdir("d"), writeFile("d/a", ""), mkdir("d/b"), symlink("a", "d/c")} {
		if r, err := e.Exec(&op); err != nil || r.Errno != "" {
			t.Fatalf("%s %s: %v %s", op.Kind, op.Path, err, r.Errno)
		}
	}
	op := readdir("d")
	r, err := e.Exec(&op)
	if err != nil || len(r.Entries) != 5 {
		t.Fatalf("readdir: %+v, %v", r, err)
	}
	for i, d := range r.Entries {
		if d.Off != uint64(i+1) {
			t.Errorf("entry %d (%s): d_off %d, want %d", i, d.Name, d.Off, i+1)
		}
	}
}

// dumpTree renders the tree through ex's own ops: per entry its type, mode,
// owner, link count, then its content, target or children, and xattrs.
func dumpTree(t *testing.T, ex interface {
	Exec(*fsop.Op) (fsop.Result, error)
}) string {
	t.Helper()
	var b strings.Builder
	run := func(op fsop.Op) fsop.Result {
		r, err := ex.Exec(&op)
		if err != nil || r.Errno != "" {
			t.Fatalf("dump %s %q: %v %s", op.Kind, op.Path, err, r.Errno)
		}
		return r
	}
	var walk func(dir string)
	walk = func(dir string) {
		var names []string
		for _, e := range run(readdir(dir)).Entries {
			if e.Name != "." && e.Name != ".." {
				names = append(names, e.Name)
			}
		}
		slices.Sort(names)
		for _, name := range names {
			p := filepath.Join(dir, name)
			st := run(lstat(p)).Stat
			fmt.Fprintf(&b, "%s mode=%o nlink=%d uid=%d gid=%d rdev=%#x", p, st.Mode, st.Nlink, st.UID, st.GID, st.Rdev)
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFREG:
				fmt.Fprintf(&b, " data=%q", run(readFile(p)).Data)
			case unix.S_IFLNK:
				fmt.Fprintf(&b, " target=%q\n", run(readlink(p)).Target)
				continue
			}
			xs := run(listxattr(p, 0)).Names
			slices.Sort(xs)
			for _, x := range xs {
				fmt.Fprintf(&b, " %s=%q", x, run(getxattr(p, x, 0)).Value)
			}
			b.WriteString("\n")
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				walk(p)
			}
		}
	}
	walk(".")
	return b.String()
}

// Op constructors, one op per call.

func mkdir(p string) fsop.Op                { return fsop.Op{Kind: fsop.Mkdir, Path: p, Mode: 0o755} }
func mkdirMode(p string, m uint32) fsop.Op  { return fsop.Op{Kind: fsop.Mkdir, Path: p, Mode: m} }
func rmdir(p string) fsop.Op                { return fsop.Op{Kind: fsop.Rmdir, Path: p} }
func create(p string) fsop.Op               { return fsop.Op{Kind: fsop.Create, Path: p, Mode: 0o644} }
func createMode(p string, m uint32) fsop.Op { return fsop.Op{Kind: fsop.Create, Path: p, Mode: m} }
func createExcl(p string) fsop.Op           { return fsop.Op{Kind: fsop.Create, Path: p, Exclusive: true} }
func writeFile(p, data string) fsop.Op {
	return fsop.Op{Kind: fsop.WriteFile, Path: p, Data: []byte(data)}
}
func appendTo(p, data string) fsop.Op       { return fsop.Op{Kind: fsop.Append, Path: p, Data: []byte(data)} }
func readFile(p string) fsop.Op             { return fsop.Op{Kind: fsop.ReadFile, Path: p} }
func truncate(p string, size int64) fsop.Op { return fsop.Op{Kind: fsop.Truncate, Path: p, Size: size} }
func stat(p string) fsop.Op                 { return fsop.Op{Kind: fsop.Stat, Path: p} }
func lstat(p string) fsop.Op                { return fsop.Op{Kind: fsop.Lstat, Path: p} }
func readdir(p string) fsop.Op              { return fsop.Op{Kind: fsop.Readdir, Path: p} }
func unlink(p string) fsop.Op               { return fsop.Op{Kind: fsop.Unlink, Path: p} }
func rename(p, to string) fsop.Op           { return fsop.Op{Kind: fsop.Rename, Path: p, To: to} }
func link(p, to string) fsop.Op             { return fsop.Op{Kind: fsop.Link, Path: p, To: to} }
func symlink(target, p string) fsop.Op      { return fsop.Op{Kind: fsop.Symlink, Target: target, Path: p} }
func readlink(p string) fsop.Op             { return fsop.Op{Kind: fsop.Readlink, Path: p} }
func chmod(p string, m uint32) fsop.Op      { return fsop.Op{Kind: fsop.Chmod, Path: p, Mode: m} }
func chown(p string, uid, gid int64) fsop.Op {
	return fsop.Op{Kind: fsop.Chown, Path: p, UID: uid, GID: gid}
}
func statfs(p string) fsop.Op             { return fsop.Op{Kind: fsop.Statfs, Path: p} }
func fsyncPath(p string) fsop.Op          { return fsop.Op{Kind: fsop.Fsync, Path: p} }
func listxattr(p string, n int64) fsop.Op { return fsop.Op{Kind: fsop.Listxattr, Path: p, Length: n} }
func removexattr(p, name string) fsop.Op  { return fsop.Op{Kind: fsop.Removexattr, Path: p, Name: name} }
func closeH(h uint64) fsop.Op             { return fsop.Op{Kind: fsop.Close, Handle: h} }
func fsyncH(h uint64) fsop.Op             { return fsop.Op{Kind: fsop.Fsync, Handle: h} }

func writeAt(p string, off int64, data string) fsop.Op {
	return fsop.Op{Kind: fsop.Write, Path: p, Offset: off, Data: []byte(data)}
}
func readAt(p string, off, n int64) fsop.Op {
	return fsop.Op{Kind: fsop.Read, Path: p, Offset: off, Length: n}
}
func renameFlags(p, to string, flags int) fsop.Op {
	return fsop.Op{Kind: fsop.Rename, Path: p, To: to, Flags: flags}
}
func utimens(p string, atime, mtime int64) fsop.Op {
	return fsop.Op{Kind: fsop.Utimens, Path: p, AtimeNs: atime, MtimeNs: mtime}
}
func noFollow(op fsop.Op) fsop.Op { op.Flags |= fsop.NoFollow; return op }
func setxattr(p, name, value string, flags int) fsop.Op {
	return fsop.Op{Kind: fsop.Setxattr, Path: p, Name: name, Value: []byte(value), Flags: flags}
}
func getxattr(p, name string, n int64) fsop.Op {
	return fsop.Op{Kind: fsop.Getxattr, Path: p, Name: name, Length: n}
}
func open(h uint64, p string, flags int) fsop.Op {
	return fsop.Op{Kind: fsop.Open, Path: p, Flags: flags, Mode: 0o644, Handle: h}
}
func pread(h uint64, off, n int64) fsop.Op {
	return fsop.Op{Kind: fsop.Pread, Handle: h, Offset: off, Length: n}
}
func pwrite(h uint64, off int64, data string) fsop.Op {
	return fsop.Op{Kind: fsop.Pwrite, Handle: h, Offset: off, Data: []byte(data)}
}
func ftruncate(h uint64, size int64) fsop.Op {
	return fsop.Op{Kind: fsop.Ftruncate, Handle: h, Size: size}
}

const (
	rdonly = unix.O_RDONLY
	wronly = unix.O_WRONLY
	rdwr   = unix.O_RDWR
)

func TestExecutorNamespace(t *testing.T) {
	runDiff(t, []diffCase{
		{name: "mkdir rmdir unlink", ops: []fsop.Op{
			mkdir("a"), mkdir("a"), mkdir("."), mkdir("x/y"), stat("a"),
			mkdirMode("m0", 0), stat("m0"), mkdirMode("ms", 0o7755), stat("ms"), mkdirMode("mt", 0o40700), stat("mt"),
			mkdir("a/b"), stat("a"), rmdir("a"), rmdir("."), rmdir("a/b"), stat("a"), rmdir("a"), stat("a"), lstat("a"),
			writeFile("f", "x"), rmdir("f"), mkdir("f/x"), rmdir("f/x"), unlink("m0"), unlink("."), unlink("missing"),
			rmdir("missing"), unlink("f"), readdir("."), mkdir("m0/n"), rmdir("m0/n/x"), unlink("m0/n/x"),
		}},
		{name: "create", ops: []fsop.Op{
			create("f"), writeFile("f", "data"), create("f"), readFile("f"), createExcl("f"),
			mkdir("d"), create("d"), createExcl("d"), create("."), createExcl("."), create("f/x"), create("nodir/x"),
			createMode("m0", 0), stat("m0"), createMode("m4", 0o4755), stat("m4"), createMode("mz", 0o10000), stat("mz"),
			symlink("target", "dl"), create("dl"), lstat("target"), lstat("dl"),
			symlink("t2", "dl2"), createExcl("dl2"), lstat("t2"),
			symlink("nodir/x", "dl3"), create("dl3"),
			symlink("d/", "ds"), create("ds"), symlink("nf/", "dsl"), create("dsl"), lstat("nf"),
			symlink("d", "ld"), create("ld/inner"), stat("d/inner"),
		}},
		{name: "hard links", ops: []fsop.Op{
			writeFile("f", "x"), link("f", "g"), stat("f"), link("f", "g"), mkdir("d"), link("d", "e"),
			link("d", "f"), link("f", "."), link(".", "x"), link("missing", "x"), link("f", "nodir/x"),
			symlink("f", "sl"), link("sl", "sl2"), lstat("sl2"), stat("sl2"),
			unlink("f"), stat("g"), readFile("g"), rename("g", "f"), link("f", "d/h"), stat("d/h"),
			unlink("f"), stat("d/h"), link("d/h", "d/h2"), link("d/h2", "f"), stat("f"),
		}},
		{name: "rename", ops: []fsop.Op{
			writeFile("a", "A"), writeFile("b", "B"), rename("a", "b"), readFile("b"), stat("a"),
			mkdir("d1"), mkdir("d2"), rename("d1", "d2"), stat("d2"), stat("d1"),
			mkdir("d3"), writeFile("d3/x", "x"), mkdir("d4"), rename("d4", "d3"), rename("b", "d3"), rename("d3", "b"),
			rename("d3", "d3/sub"), mkdir("d3/s"), rename("d3", "d3/s/t"), rename("d3/s", "d3"), rename("d3/x", "d3"),
			link("b", "b2"), rename("b", "b2"), stat("b"), stat("b2"), rename("missing", "x"),
			rename(".", "x"), rename("b", "."), renameFlags("b", ".", fsop.RenameNoReplace),
			renameFlags("b", "b2", fsop.RenameNoReplace), renameFlags("b", "nb", fsop.RenameNoReplace), stat("nb"),
			writeFile("p", "P"), writeFile("q", "Q"), renameFlags("p", "q", fsop.RenameExchange), readFile("p"), readFile("q"),
			renameFlags("p", "missing", fsop.RenameExchange), renameFlags("missing", "p", fsop.RenameExchange),
			renameFlags("p", "q", fsop.RenameExchange|fsop.RenameNoReplace), renameFlags("p", "q", 8),
			renameFlags("d3", "d3/s/new", fsop.RenameNoReplace), mkdir("d3/s/e"),
			renameFlags("d3", "d3/s/e", fsop.RenameNoReplace), renameFlags("d3/s/e", "d3", fsop.RenameExchange),
			renameFlags("d3", "d3/s/e", fsop.RenameExchange), renameFlags("d3/s", "d3", fsop.RenameExchange|fsop.RenameNoReplace),
			renameFlags("d3/x", "p", fsop.RenameExchange), lstat("p"), lstat("d3/x"), readFile("d3/x"),
			renameFlags("d3/s", "q", fsop.RenameExchange), stat("d3"), stat("q"), stat("."),
			mkdir("m"), rename("q", "m/q"), stat("m"), stat("."), rename("m/q/e", "e"), stat("m/q"),
			rename("p", "nodir/x"), rename("nb", "nb/x"), rename("nb/x", "y"), renameFlags("nb", "nb", fsop.RenameNoReplace),
			rename("nb", "nb"), rename("e", "e"), renameFlags("e", "e", fsop.RenameExchange), readdir("."),
		}},
		{name: "symlinks", ops: []fsop.Op{
			writeFile("f", "F"), mkdir("d"), symlink("f", "lf"), symlink("d", "ld"), symlink("missing", "dang"),
			readlink("lf"), readlink("f"), readlink("."), readlink("missing"), readlink("lf/x"),
			lstat("lf"), stat("lf"), stat("dang"), lstat("dang"), symlink("x", "lf"), symlink("x", "."), symlink("x", "nodir/l"),
			writeFile("ld/g", "G"), readFile("d/g"), stat("ld/g"), lstat("ld/g"), readdir("ld"),
			symlink("../f", "d/up"), readFile("d/up"), stat("d/up"), readFile("ld/up"),
			symlink("f/", "lslash"), stat("lslash"), readFile("lslash"), symlink("d/", "ldslash"), stat("ldslash"),
			symlink("./d/../f", "ldots"), readFile("ldots"), symlink("ld/../f", "lphys"), readFile("lphys"),
			symlink("d//g", "ldbl"), readFile("ldbl"), symlink("..", "d/dotdot"), stat("d/dotdot"), readFile("d/dotdot/f"),
			symlink(".", "self"), stat("self"), readFile("self/self/f"),
			symlink("f/x", "lfx"), stat("lfx"), symlink("missing/../f", "lmiss"), stat("lmiss"),
			chmod("lf", 0o600), stat("f"), lstat("lf"), unlink("lf"), stat("f"), rmdir("ld"), unlink("ld"), stat("d"),
		}},
		{name: "symlink loops", ops: symlinkLoops()},
		{name: "long names", ops: longNames()},
	})
}

func symlinkLoops() []fsop.Op {
	ops := []fsop.Op{
		symlink("b", "a"), symlink("a", "b"), stat("a"), readFile("a"), lstat("a"), create("a"), writeFile("a", "x"),
		stat("a/x"), mkdir("a/x"), symlink("self", "self"), stat("self"), symlink("self2/x", "self2"), stat("self2"),
		writeFile("f", "F"), symlink("f", "c0"),
	}
	for i := 1; i <= 40; i++ {
		ops = append(ops, symlink(fmt.Sprintf("c%d", i-1), fmt.Sprintf("c%d", i)))
	}
	return append(ops, stat("c39"), readFile("c39"), stat("c40"), readFile("c40"), lstat("c40"), stat("c39/x"),
		stat("c40/x"), open(1, "c0", rdonly|unix.O_NOFOLLOW), open(1, "c0", unix.O_PATH|unix.O_NOFOLLOW),
		pread(1, 0, 0), closeH(1), open(2, "c0", unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY),
		open(2, "c40", unix.O_PATH), open(2, "c39", unix.O_PATH), closeH(2))
}

func longNames() []fsop.Op {
	n255, n256 := strings.Repeat("n", 255), strings.Repeat("m", 256)
	deep := strings.Repeat("a/", 2047) + "aa" // 4096 bytes: PATH_MAX with its NUL exceeded
	return []fsop.Op{
		mkdir(n255), mkdir(n256), create(n256), stat(n256), stat(n256 + "/x"), lstat(n256), stat("missing/" + n256),
		writeFile(n255+"/"+n255, "x"), readFile(n255 + "/" + n255), rename(n255+"/"+n255, n256), link(n255+"/"+n255, n256),
		rename(n256, "x"), symlink("t", n256), unlink(n256), rmdir(n256), readlink(n256),
		symlink(strings.Repeat("t", 4095), "long"), readlink("long"), symlink(strings.Repeat("t", 4096), "toolong"),
		lstat("toolong"), stat(deep), lstat(deep), mkdir(deep), readdir("."),
	}
}

func TestExecutorData(t *testing.T) {
	runDiff(t, []diffCase{
		{name: "write and read", ops: []fsop.Op{
			writeFile("f", "hello"), readFile("f"), appendTo("f", " world"), readFile("f"), writeAt("f", 6, "W"),
			readFile("f"), writeAt("f", 20, "end"), readFile("f"), readAt("f", 0, 5), readAt("f", 3, 100),
			readAt("f", 100, 10), readAt("f", 0, 0), stat("f"), writeFile("f", ""), stat("f"), readFile("f"),
			writeAt("missing", 0, "x"), appendTo("new", "n"), readFile("new"), mkdir("d"), writeAt("d", 0, "x"),
			writeFile("d", "x"), appendTo("d", "x"), readAt("d", 0, 10), readAt("d", 0, 0), readFile("d"),
			readFile("missing"), readAt("missing", 0, 1), writeAt("f", 100, ""), stat("f"),
			writeFile("f", "abc"), writeAt("f", math.MaxInt64-1, "xy"), readAt("f", math.MaxInt64-10, 5),
			readAt("f", math.MaxInt64-2, 5), writeFile("f/x", "x"), readFile("f/x"),
		}},
		{name: "sparse and truncate", ops: []fsop.Op{
			writeAt("f", 1<<20, "x"), stat("f"), readAt("f", 1<<20-2, 4), truncate("f", 10), stat("f"), readFile("f"),
			truncate("f", 100000), readAt("f", 0, 20), stat("f"), writeAt("f", 70000, "yy"), truncate("f", 70001),
			readAt("f", 69990, 20), truncate("f", 65536), truncate("f", 65540), readAt("f", 65530, 20),
			writeAt("g", 3*65536+5, "z"), truncate("g", 2*65536), truncate("g", 3*65536+10), readFile("g"),
			mkdir("d"), truncate("d", 0), truncate("missing", 0), symlink("f", "lf"), truncate("lf", 3), readFile("f"),
			truncate("f", 0), readFile("f"), writeAt("h", storeexec.MaxRead, "!"), readFile("h"), stat("h"),
		}},
		{name: "readdir", ops: []fsop.Op{
			readdir("."), mkdir("d"), writeFile("d/f", "x"), symlink("d", "ld"), mkdir("d/sub"), readdir("d"),
			readdir("ld"), readdir("d/f"), readdir("missing"), unlink("d/f"), readdir("d"), readdir("."),
		}},
		{name: "statfs and fsync", ops: []fsop.Op{
			statfs("."), writeFile("f", "x"), statfs("f"), statfs("missing"), fsyncPath("f"), fsyncPath("."),
			fsyncPath("missing"), symlink("missing", "dang"), fsyncPath("dang"), statfs("dang"),
		}},
		{name: "chmod chown", ops: []fsop.Op{
			writeFile("f", "x"), chmod("f", 0o600), stat("f"), chmod("f", 0o7777), stat("f"), chmod("f", 0o100644), stat("f"),
			chown("f", 1000, 2000), stat("f"), chown("f", -1, -1), stat("f"), chown("f", -1, 3000), stat("f"),
			chmod("f", 0o6755), chown("f", -1, -1), stat("f"), chmod("f", 0o2745), chown("f", 5, -1), stat("f"),
			mkdir("d"), chmod("d", 0o7755), chown("d", 1, 1), stat("d"), chmod("missing", 0o644), chown("missing", 1, 1),
			chown("f", -2, 0), chown("f", 0, 1<<32-1), symlink("f", "lf"), chmod("lf", 0o640), chown("lf", 7, 8), stat("f"),
		}},
		{name: "utimens", times: true, ops: []fsop.Op{
			writeFile("f", "x"), utimens("f", 1e9+5, 2e9+7), stat("f"), symlink("f", "lf"),
			utimens("lf", -1500000000, 1700000000123456789), stat("f"), utimens("missing", 0, 0),
		}},
		{name: "no-follow chown", ops: []fsop.Op{
			writeFile("f", "x"), symlink("f", "lf"), symlink("missing", "dang"), noFollow(chown("lf", 7, 8)), lstat("lf"), stat("f"),
			noFollow(chown("dang", 9, -1)), lstat("dang"), noFollow(chown("f", 3, 4)), stat("f"), noFollow(chown("missing", 1, 1)),
		}},
		{name: "no-follow utimens", times: true, ops: []fsop.Op{
			writeFile("f", "x"), utimens("f", 1e9, 2e9), symlink("f", "lf"), noFollow(utimens("lf", 3e9+1, 4e9+2)), lstat("lf"), stat("f"),
			symlink("missing", "dang"), noFollow(utimens("dang", 5e9, 6e9)), lstat("dang"), noFollow(utimens("f", 7e9, 8e9)), stat("f"),
		}},
		{name: "read limits", ops: []fsop.Op{
			writeFile("f", "x"), readAt("f", 0, storeexec.MaxRead+1), readAt("f", 0, storeexec.MaxRead), open(1, "f", rdonly),
			pread(1, 0, storeexec.MaxRead+1), open(1, "f", rdonly), pread(1, 0, 10),
		}},
	})
}

// needFullRoot skips a comparison with the kernel that depends on root's
// privileges: the store's executor treats uid 0 as fully privileged, but
// root in a container may lack CAP_SYS_ADMIN (trusted.* xattrs).
func needFullRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 && !caps.Has(caps.SysAdmin) {
		t.Skip("root without CAP_SYS_ADMIN (a container): the kernel refuses trusted.* xattrs that the store's executor allows uid 0")
	}
}

func TestExecutorXattrs(t *testing.T) {
	needFullRoot(t)
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(probe, "user.probe", []byte("x"), 0); err != nil {
		t.Skipf("no user xattrs on the temp filesystem: %v", err)
	}
	long := "user." + strings.Repeat("x", 251) // 256 bytes
	runDiff(t, []diffCase{
		{name: "xattrs", ops: []fsop.Op{
			writeFile("f", "x"), setxattr("f", "user.b", "value-b", 0), setxattr("f", "user.a", "A", fsop.XattrCreate),
			setxattr("f", "user.a", "A", fsop.XattrCreate), setxattr("f", "user.c", "C", fsop.XattrReplace),
			setxattr("f", "user.a", "AA", fsop.XattrReplace), setxattr("f", "user.a", "A", fsop.XattrCreate|fsop.XattrReplace),
			getxattr("f", "user.b", 0), getxattr("f", "user.b", 3), getxattr("f", "user.b", 7), getxattr("f", "user.b", 100),
			getxattr("f", "user.zz", 0), getxattr("f", "user.zz", 10), listxattr("f", 0), listxattr("f", 5),
			listxattr("f", 14), listxattr("f", 13), listxattr("f", 1<<20), removexattr("f", "user.a"), removexattr("f", "user.a"),
			setxattr("f", "foo.bar", "x", 0), getxattr("f", "foo.bar", 0), removexattr("f", "foo.bar"),
			setxattr("f", "user.", "x", 0), getxattr("f", "user.", 0), removexattr("f", "user."),
			setxattr("f", long, "x", 0), getxattr("f", long, 0), removexattr("f", long),
			setxattr("f", long[:255], "x", 0), getxattr("f", long[:255], 0),
			setxattr("f", "user.big", strings.Repeat("v", 65537), 0), setxattr("f", "user.x", "x", 4),
			setxattr("f", "foo.bar", strings.Repeat("v", 65537), 8), setxattr("f", long, strings.Repeat("v", 65537), 0),
			setxattr("f", "user.e", "", 0), getxattr("f", "user.e", 0), getxattr("f", "user.e", 10),
			mkdir("d"), setxattr("d", "user.x", "dir", 0), listxattr("d", 0), getxattr("missing", "user.x", 0),
			setxattr("missing", "user.x", "x", 0), listxattr("missing", 0), symlink("f", "lf"), getxattr("lf", "user.b", 0),
			setxattr("lf", "user.l", "via link", 0), listxattr("lf", 0), setxattr("f", "trusted.t", "T", 0),
			getxattr("f", "trusted.t", 0), listxattr("f", 0), removexattr("f", "trusted.t"),
		}},
	})
}

func TestExecutorHandles(t *testing.T) {
	runDiff(t, []diffCase{
		{name: "access modes", ops: []fsop.Op{
			writeFile("f", "hello"), open(1, "f", rdonly), pwrite(1, 0, "x"), pread(1, 0, 5), open(2, "f", wronly),
			pread(2, 0, 5), pread(2, 0, 0), pwrite(2, 0, "J"), pread(1, 0, 5), pwrite(1, 0, ""),
			mkdir("d"), open(3, "d", wronly), open(3, "d", rdwr), open(3, "d", rdonly|unix.O_TRUNC), open(3, "d", rdonly),
			pread(3, 0, 10), pread(3, 0, 0), ftruncate(3, 0), fsyncH(3), closeH(3), pread(3, 0, 1), closeH(3),
			ftruncate(1, 0), ftruncate(2, 2), pread(1, 0, 10), ftruncate(2, 10), pread(1, 0, 20), fsyncH(2),
			symlink("f", "lf"), open(4, "lf", rdonly|unix.O_NOFOLLOW), open(4, "lf", unix.O_PATH|unix.O_NOFOLLOW),
			pread(4, 0, 1), pread(4, 0, 0), pwrite(4, 0, "x"), ftruncate(4, 0), fsyncH(4), closeH(4),
			open(5, "f", unix.O_DIRECTORY), open(5, "f", unix.O_CREAT|unix.O_DIRECTORY), open(5, "f", unix.O_CREAT|unix.O_EXCL|wronly),
			{Kind: fsop.Open, Path: "new", Flags: unix.O_CREAT | rdwr, Mode: 0o600, Handle: 5}, stat("new"),
			pwrite(5, 3, "new"), pread(5, 0, 10), open(6, "f", wronly|unix.O_TRUNC), readFile("f"), pread(1, 0, 10),
			open(7, "new", unix.O_ACCMODE), pread(7, 0, 1), pwrite(7, 0, "x"), ftruncate(7, 0), fsyncH(7),
			open(8, "missing", rdonly), open(8, "missing/x", unix.O_CREAT|rdwr), open(8, "f/x", rdonly),
			pread(99, 0, 1), pread(99, 0, 0), pwrite(99, 0, "x"), ftruncate(99, 0), fsyncH(99), closeH(99),
			writeFile("t", "abc"), open(9, "t", rdonly|unix.O_TRUNC), stat("t"), pread(9, 0, 5),
			open(10, "d", rdonly|unix.O_DIRECTORY), open(11, ".", rdonly), pread(11, 0, 1), open(12, ".", wronly),
			open(12, "lf", unix.O_CREAT|unix.O_EXCL|rdwr), open(12, "d", unix.O_CREAT|rdwr), open(12, "d", unix.O_CREAT|unix.O_EXCL|rdwr),
			open(12, "f", unix.O_PATH|unix.O_DIRECTORY), open(12, "d", unix.O_PATH|unix.O_CREAT|unix.O_TRUNC|rdwr), closeH(12),
			pwrite(2, math.MaxInt64-1, "xy"), pread(1, math.MaxInt64-1, 5), open(13, "f", 1<<40|rdonly), pread(13, 0, 3),
			{Kind: fsop.Open, Path: "m", Flags: unix.O_CREAT | unix.O_EXCL | rdwr, Mode: 0o104755, Handle: 14}, stat("m"),
			{Kind: fsop.Open, Path: "f", Flags: rdonly, Mode: 0o777, Handle: 15}, closeH(15),
			{Kind: fsop.Open, Path: "t", Flags: unix.O_TMPFILE&^unix.O_DIRECTORY | rdwr, Handle: 16},
			{Kind: fsop.Open, Path: "d", Flags: unix.O_TMPFILE | rdonly, Handle: 16},
		}},
		{name: "append from two handles", ops: []fsop.Op{
			open(1, "log", wronly|unix.O_CREAT|unix.O_APPEND), open(2, "log", wronly|unix.O_APPEND),
			pwrite(1, 0, "aa"), pwrite(2, 0, "bb"), pwrite(1, 100, "cc"), appendTo("log", "dd"), readFile("log"),
			open(3, "log", rdwr|unix.O_APPEND), pwrite(3, 0, "ee"), pread(3, 0, 100), ftruncate(3, 1), pwrite(2, 5, "ff"),
			readFile("log"), closeH(1), closeH(2), closeH(3),
		}},
		{name: "unlinked open file", ops: []fsop.Op{
			writeFile("f", "keep"), open(1, "f", rdwr), unlink("f"), readdir("."), stat("f"), pread(1, 0, 10),
			pwrite(1, 4, "!"), pread(1, 0, 10), ftruncate(1, 2), pread(1, 0, 10), fsyncH(1), closeH(1), pread(1, 0, 1),
			writeFile("a", "A"), open(2, "a", rdonly), writeFile("b", "B"), rename("b", "a"), pread(2, 0, 5),
			readFile("a"), closeH(2), mkdir("d"), open(3, "d", rdonly), rmdir("d"), readdir("."), pread(3, 0, 0), closeH(3),
		}},
		{name: "handle in use", ops: []fsop.Op{
			writeFile("f", "x"), open(1, "f", rdonly), open(1, "f", rdonly), open(1, "missing", rdonly), pread(1, 0, 1),
			closeH(1), open(1, "missing", rdonly), open(1, "f", wronly), pwrite(1, 0, "y"), closeH(1), readFile("f"),
		}},
	})
}

// TestExecutorEscapes checks that every path leaving the root is refused
// with fsop.ErrPathEscapes, exactly where sysexec refuses.
func TestExecutorEscapes(t *testing.T) {
	ops := []fsop.Op{
		writeFile("f", "x"), mkdir("d"), symlink("/etc", "etc"), stat("etc"), chmod("etc", 0o777), lstat("etc"),
		readlink("etc"), readFile("etc/passwd"), mkdir("etc/x"), readdir("etc"), statfs("etc"), truncate("etc", 0),
		symlink("../..", "d/up"), stat("d/up"), stat("d/up/x"), lstat("d/up"), symlink("..", "up1"), stat("up1"),
		readFile("up1/x"), symlink("d/up", "chain"), stat("chain"), symlink("missing/../../x", "m"), stat("m"),
		symlink("d/../../x", "dd"), stat("dd"), create("dd"), rename("f", "etc/x"), rename("etc/x", "f"),
		link("f", "d/up/x"), link("d/up/x", "g"), symlink("/tmp/lighthouse-never", "abs"), create("abs"),
		writeFile("abs", "x"), appendTo("abs", "x"), open(1, "etc", unix.O_PATH|unix.O_NOFOLLOW), closeH(1),
		open(2, "etc", rdonly), open(2, "abs", unix.O_CREAT|wronly), open(2, "abs", unix.O_CREAT|unix.O_EXCL|wronly),
		symlink(".", "selfdir"), stat("selfdir/selfdir/f"), symlink("f/../..", "fup"), stat("fup"),
		rmdir("etc/x"), unlink("etc/passwd"), symlink("x", "etc/x"), readlink("etc/x"), lstat("up1/x"),
		setxattr("etc", "user.x", "x", 0), getxattr("up1", "user.x", 0), listxattr("chain", 0), fsyncPath("etc"),
		chown("etc", 0, 0), utimens("up1", 0, 0), unlink("etc"), unlink("d/up"), readdir("."),
	}
	runDiff(t, []diffCase{{name: "escapes", ops: ops}})

	// And explicitly, for the executor under test.
	got, _ := newPair(t)
	for _, op := range []fsop.Op{mkdir("d"), symlink("/etc", "etc"), symlink("../..", "d/up"), symlink("..", "up")} {
		if r, err := got.Exec(&op); err != nil || r.Errno != "" {
			t.Fatalf("%s: %v %s", op.Kind, err, r.Errno)
		}
	}
	for _, op := range []fsop.Op{stat("etc"), chmod("etc", 0o700), stat("d/up/x"), readFile("up/x"), mkdir("etc/d")} {
		if _, err := got.Exec(&op); !errors.Is(err, fsop.ErrPathEscapes) {
			t.Errorf("%s %q: err %v, want ErrPathEscapes", op.Kind, op.Path, err)
		}
	}
}

// TestExecutorStoreOnly covers answers where a FUSE mount of the store and
// the plain directory (ext4) differ, so sysexec cannot be the reference.
func TestExecutorStoreOnly(t *testing.T) {
	e := storeexec.New(store.OpenMemory(store.Options{}))
	defer e.Close()
	if r, err := e.Exec(&fsop.Op{Kind: fsop.WriteFile, Path: "f", Data: []byte("x")}); err != nil || r.Errno != "" {
		t.Fatalf("write_file: %v %s", err, r.Errno)
	}
	for _, c := range []struct {
		name  string
		op    fsop.Op
		errno string
	}{
		{"whiteout", renameFlags("f", "g", 4), "EINVAL"},                                // ext4 makes a whiteout; the store refuses
		{"tmpfile", open(1, ".", unix.O_TMPFILE|rdwr), fsop.ErrnoName(unix.EOPNOTSUPP)}, // no FUSE_TMPFILE
		{"tmpfile on a file", open(1, "f", unix.O_TMPFILE|rdwr), "ENOTDIR"},
		{"system namespace", setxattr("f", "system.x", "x", 0), ""}, // ext4 has no handler for it
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := e.Exec(&c.op)
			if err != nil || r.Errno != c.errno {
				t.Errorf("got %v %q, want %q", err, r.Errno, c.errno)
			}
		})
	}
	// A handle id in use is refused with both sentinels.
	op := open(7, "f", rdonly)
	if r, err := e.Exec(&op); err != nil || r.Errno != "" {
		t.Fatalf("open: %v %s", err, r.Errno)
	}
	if _, err := e.Exec(&op); !errors.Is(err, storeexec.ErrHandleInUse) || !errors.Is(err, fsop.ErrBadValue) {
		t.Errorf("reopen: %v", err)
	}
}

// TestExecutorClose checks that Close releases every handle (an unlinked
// open file goes) and that Exec is refused afterwards.
func TestExecutorClose(t *testing.T) {
	st := store.OpenMemory(store.Options{})
	e := storeexec.New(st)
	do := func(op fsop.Op) fsop.Result {
		t.Helper()
		r, err := e.Exec(&op)
		if err != nil || r.Errno != "" {
			t.Fatalf("%s %q: %v %s", op.Kind, op.Path, err, r.Errno)
		}
		return r
	}
	do(writeFile("f", "data"))
	do(open(1, "f", rdonly))
	do(open(2, "f", rdwr))
	do(unlink("f"))
	if got := string(do(pread(2, 0, 10)).Data); got != "data" {
		t.Errorf("pread of unlinked file = %q", got)
	}
	before := st.Inodes()
	do(closeH(1))
	if st.Inodes() != before {
		t.Errorf("closing one of two handles freed the node")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if st.Inodes() != before-1 {
		t.Errorf("inodes after Close = %d, want %d", st.Inodes(), before-1)
	}
	if _, err := e.Exec(&fsop.Op{Kind: fsop.Stat, Path: "."}); !errors.Is(err, storeexec.ErrClosed) {
		t.Errorf("Exec after Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestExecutorConcurrent runs appenders on their own handles, readers and
// closers on shared ones, and namespace ops at once (run with -race): every
// O_APPEND record must land whole, none overwritten.
func TestExecutorConcurrent(t *testing.T) {
	st := store.OpenMemory(store.Options{})
	e := storeexec.New(st)
	defer e.Close()
	exec := func(op fsop.Op) fsop.Result {
		r, err := e.Exec(&op)
		if err != nil {
			t.Errorf("%s: %v", op.Kind, err)
		}
		return r
	}
	exec(mkdir("d"))
	const writers, records = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := uint64(100 + w)
			if r := exec(open(h, "log", wronly|unix.O_CREAT|unix.O_APPEND)); r.Errno != "" {
				t.Errorf("open: %s", r.Errno)
				return
			}
			rec := fmt.Sprintf("<%d>", w)
			for range records {
				if r := exec(pwrite(h, 0, rec)); r.Errno != "" || r.N != int64(len(rec)) {
					t.Errorf("pwrite: %+v", r)
				}
			}
			exec(closeH(h))
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range records {
				name := fmt.Sprintf("d/n%d-%d", w, i%5)
				exec(create(name))
				exec(readdir("d"))
				exec(rename(name, name+"x"))
				exec(unlink(name + "x"))
				h := uint64(1000 + w*records + i)
				if r := exec(open(h, "log", rdonly)); r.Errno == "" {
					var inner sync.WaitGroup
					inner.Add(1)
					go func() { defer inner.Done(); exec(pread(h, 0, 64)) }()
					exec(closeH(h))
					inner.Wait()
				}
			}
		}()
	}
	wg.Wait()
	data := exec(readFile("log")).Data
	for w := range writers {
		if n := bytes.Count(data, fmt.Appendf(nil, "<%d>", w)); n != records {
			t.Errorf("writer %d: %d records in the log, want %d", w, n, records)
		}
	}
	if want := writers * records * 3; len(data) != want {
		t.Errorf("log is %d bytes, want %d", len(data), want)
	}
	if r := exec(readdir("d")); len(r.Entries) != 2 {
		t.Errorf("d not empty: %v", r.Entries)
	}
}

// TestExecutorCloseWhileBusy closes the executor under running ops: every
// handle is released exactly once (the unlinked file goes), nothing panics.
func TestExecutorCloseWhileBusy(t *testing.T) {
	st := store.OpenMemory(store.Options{})
	e := storeexec.New(st)
	for _, op := range []fsop.Op{writeFile("f", "data"), open(1, "f", rdwr), open(2, "f", rdonly), unlink("f")} {
		if r, err := e.Exec(&op); err != nil || r.Errno != "" {
			t.Fatalf("%s: %v %s", op.Kind, err, r.Errno)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				op := pread(uint64(1+g%2), 0, 4)
				if g%3 == 0 {
					op = pwrite(1, int64(i%4), "x")
				}
				if _, err := e.Exec(&op); errors.Is(err, storeexec.ErrClosed) {
					return
				}
			}
		}()
	}
	e.Close()
	wg.Wait()
	if n := st.Inodes(); n != 1 {
		t.Errorf("%d inodes after Close, want the root only", n)
	}
}

// TestExecutorRandom runs seeded random op sequences over a small name space
// (so that ops collide) through both executors. LIGHTHOUSE_EXEC_RANDOM sets
// the number of sequences (default 50).
func TestExecutorRandom(t *testing.T) {
	needFullRoot(t)
	n := 50
	if v, err := strconv.Atoi(os.Getenv("LIGHTHOUSE_EXEC_RANDOM")); err == nil {
		n = v
	}
	cases := make([]diffCase, n)
	for i := range cases {
		r := rand.New(rand.NewPCG(uint64(i), 7))
		ops := []fsop.Op{mkdir("d"), mkdir("d/e"), writeFile("a", "start"), symlink("d", "l"),
			open(1, "a", rdwr), open(2, "d", rdonly)}
		for range 40 {
			ops = append(ops, randomOp(r))
		}
		cases[i] = diffCase{name: fmt.Sprint("seed", i), ops: ops}
	}
	runDiff(t, cases)
}

// randomOp draws one op. It avoids what ext4 answers differently from a
// FUSE mount of the store: RENAME_WHITEOUT, O_TMPFILE, xattr values too
// large for an ext4 inode, system.* names.
func randomOp(r *rand.Rand) fsop.Op {
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	p := pick("a", "b", "d", "d/a", "d/e", "d/e/a", "l", "d/l", "l/a", ".")
	q := pick("a", "b", "d", "d/a", "d/e", "d/e/f", "l", "d/l", "x")
	data := strings.Repeat(pick("x", "yz", "0123456789"), r.IntN(30))
	off := int64(pick2(r, r.IntN(40), 70000+r.IntN(10)))
	h := uint64(1 + r.IntN(4))
	flags := []int{rdonly, wronly, rdwr}[r.IntN(3)]
	for _, f := range []int{unix.O_CREAT, unix.O_EXCL, unix.O_TRUNC, unix.O_APPEND, unix.O_DIRECTORY, unix.O_NOFOLLOW} {
		if r.IntN(3) == 0 {
			flags |= f
		}
	}
	if r.IntN(10) == 0 {
		flags = unix.O_PATH | flags&(unix.O_NOFOLLOW|unix.O_DIRECTORY)
	}
	xname := pick("user.a", "user.b", "trusted.t", "foo.x", "user.")
	switch r.IntN(34) {
	case 0:
		return mkdir(p)
	case 1:
		return rmdir(p)
	case 2:
		return createMode(p, uint32(pick2(r, 0, 0o644)))
	case 3:
		return createExcl(p)
	case 4:
		return writeFile(p, data)
	case 5:
		return appendTo(p, data)
	case 6:
		return writeAt(p, off, data)
	case 7:
		return readFile(p)
	case 8:
		return readAt(p, off, int64(r.IntN(100)))
	case 9:
		return truncate(p, off)
	case 10:
		return stat(p)
	case 11:
		return lstat(p)
	case 12:
		return readdir(p)
	case 13:
		return unlink(p)
	case 14:
		return renameFlags(p, q, pick2(r, 0, pick2(r, fsop.RenameNoReplace, fsop.RenameExchange)))
	case 15:
		return link(p, q)
	case 16:
		return symlink(pick("a", "d", "../a", "..", "d/", "a/", "nope", "d/e/..", "l", "d/../a", "../../a"), p)
	case 17:
		return readlink(p)
	case 18:
		return chmod(p, uint32(pick2(r, 0o600, 0o4755)))
	case 19:
		return setxattr(p, xname, data[:min(len(data), 40)], pick2(r, 0, pick2(r, fsop.XattrCreate, fsop.XattrReplace)))
	case 20:
		return getxattr(p, xname, int64(pick2(r, 0, r.IntN(12))))
	case 21:
		return listxattr(p, int64(pick2(r, 0, r.IntN(20))))
	case 22:
		return removexattr(p, xname)
	case 23, 24, 30, 31, 32, 33:
		return fsop.Op{Kind: fsop.Open, Path: p, Flags: flags, Mode: 0o640, Handle: h}
	case 25:
		return pread(h, off, int64(r.IntN(100)))
	case 26:
		return pwrite(h, off, data)
	case 27:
		return ftruncate(h, off)
	case 28:
		return fsyncH(h)
	}
	return closeH(h)
}

// pick2 returns a or b, even odds.
func pick2[T any](r *rand.Rand, a, b T) T {
	if r.IntN(2) == 0 {
		return a
	}
	return b
}

func mknod(p string, mode uint32, rdev uint64) fsop.Op {
	return fsop.Op{Kind: fsop.Mknod, Path: p, Mode: mode, Rdev: rdev}
}

// TestMknod: special files made, listed, statted, renamed, linked and
// removed as on a plain directory: each type, a device's number (a FIFO's
// is dropped, a number past 32 bits is cut as the syscall cuts it), the
// errors of each check in its order, and a FIFO's data (pread and pwrite
// ESPIPE) and a socket's open (ENXIO).
func TestMknod(t *testing.T) {
	big := unix.Mkdev(4095, 1<<20-1)
	runDiff(t, []diffCase{
		{name: "types", ops: []fsop.Op{
			mknod("p", unix.S_IFIFO|0o640, unix.Mkdev(1, 3)), mknod("s", unix.S_IFSOCK|0o600, 0),
			mknod("c", unix.S_IFCHR|0o620, unix.Mkdev(1, 3)), mknod("b", unix.S_IFBLK|0o660, unix.Mkdev(8, 1)),
			mknod("big", unix.S_IFCHR|0o600, big), mknod("cut", unix.S_IFCHR|0o600, 1<<40|unix.Mkdev(1, 5)),
			mknod("r", unix.S_IFREG|0o644, 0), mknod("sticky", unix.S_IFIFO|0o1777, 0),
			lstat("p"), lstat("s"), lstat("c"), lstat("b"), lstat("big"), lstat("cut"), stat("r"), lstat("sticky"),
			readdir("."),
		}},
		{name: "errors", ops: []fsop.Op{
			writeFile("f", "x"), mkdir("d"),
			mknod("f", unix.S_IFIFO|0o644, 0), mknod("d", unix.S_IFCHR|0o644, 0),
			mknod("no/p", unix.S_IFIFO|0o644, 0), mknod("f/p", unix.S_IFIFO|0o644, 0),
			mknod("d/.", unix.S_IFIFO|0o644, 0), mknod(".", unix.S_IFIFO|0o644, 0),
			mknod(strings.Repeat("n", 256), unix.S_IFIFO|0o644, 0),
		}},
		{name: "names", ops: []fsop.Op{
			mkdir("d"), mknod("d/c", unix.S_IFCHR|0o644, unix.Mkdev(1, 3)), mknod("p", unix.S_IFIFO|0o644, 0),
			link("d/c", "c2"), rename("p", "d/p"), rename("d/c", "c3"), stat("c2"), lstat("d/p"),
			chmod("d/p", 0o600), truncate("d/p", 0), truncate("c2", 1), readlink("d/p"), unlink("c3"), lstat("c2"),
		}},
		{name: "open", ops: []fsop.Op{
			mknod("p", unix.S_IFIFO|0o644, 0), mknod("s", unix.S_IFSOCK|0o644, 0),
			open(1, "p", unix.O_RDWR|unix.O_NONBLOCK), pwrite(1, 0, "x"), pread(1, 0, 1), closeH(1),
			open(2, "s", unix.O_RDONLY), open(3, "s", unix.O_PATH), closeH(3),
		}},
	})
}
