package sysexec

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// snapshot records everything observable about the tree at dir: for each
// entry its mode, owner, size, times, content or link target, and xattrs.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d nlink=%d mtime=%d ctime=%d",
			st.Mode, st.Uid, st.Gid, st.Size, st.Nlink, st.Mtim.Nano(), st.Ctim.Nano())
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " data=" + string(b)
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " target=" + target
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			buf := make([]byte, 4096)
			n, _ := unix.Listxattr(p, buf)
			desc += " xattrs=" + string(buf[:max(n, 0)])
		}
		snap[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestEscapes checks that no op reaches outside the root: each is refused
// with fsop.ErrPathEscapes, and the sibling tree outside is untouched.
func TestEscapes(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	mkdir(t, base, "root")
	writeFile(t, outside, "secret", "s3cret")
	writeFile(t, outside, "sub/file", "x")
	mkdir(t, outside, "empty")
	if err := os.Chmod(filepath.Join(outside, "secret"), 0o640); err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, "f", "inside")
	mkdir(t, root, "d")
	symlink(t, root, "/etc", "etc")                  // absolute, outside
	symlink(t, root, outside, "abs")                 // absolute, to the sibling
	symlink(t, root, "../outside", "rel")            // relative, climbs out
	symlink(t, root, "../../outside", "d/up")        // from a subdirectory
	symlink(t, root, "d/up", "chain")                // chain: chain -> d/up -> ../../outside
	symlink(t, root, "../chain/secret", "d/chain2")  // chain through a chain
	symlink(t, root, "rel/secret", "relfile")        // a file outside
	symlink(t, root, "/proc/self/root/etc", "magic") // a magic link path

	before := snapshot(t, outside)
	var etcBefore unix.Stat_t
	if err := unix.Stat("/etc", &etcBefore); err != nil {
		t.Fatal(err)
	}
	etcMode := etcBefore.Mode & 0o7777

	e, err := New(root, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	requireUserXattr(t)

	type esc struct {
		name string
		op   fsop.Op
	}
	cases := []esc{
		{"dotdot", fsop.Op{Kind: fsop.Stat, Path: ".."}},
		{"dotdot inside", fsop.Op{Kind: fsop.ReadFile, Path: "d/../../outside/secret"}},
		{"absolute", fsop.Op{Kind: fsop.Stat, Path: "/etc"}},
		{"dotdot to", fsop.Op{Kind: fsop.Rename, Path: "f", To: "../outside/f"}},
		{"etc stat", fsop.Op{Kind: fsop.Stat, Path: "etc"}},
		{"etc read_file", fsop.Op{Kind: fsop.ReadFile, Path: "etc/passwd"}},
		{"etc chmod", fsop.Op{Kind: fsop.Chmod, Path: "etc", Mode: etcMode}},
		{"etc readdir", fsop.Op{Kind: fsop.Readdir, Path: "etc"}},
		{"etc lstat below", fsop.Op{Kind: fsop.Lstat, Path: "etc/passwd"}},
		{"etc statfs", fsop.Op{Kind: fsop.Statfs, Path: "etc"}},
		{"magic stat", fsop.Op{Kind: fsop.Stat, Path: "magic"}},
		{"magic below", fsop.Op{Kind: fsop.ReadFile, Path: "magic/hostname"}},
	}
	// Every op, through every escaping route to the sibling tree.
	for _, via := range []string{"abs", "rel", "d/up", "chain"} {
		file, dir := via+"/secret", via+"/sub"
		for _, op := range []fsop.Op{
			{Kind: fsop.Stat, Path: file},
			{Kind: fsop.Lstat, Path: file},
			{Kind: fsop.ReadFile, Path: file},
			{Kind: fsop.Read, Path: file, Length: 4},
			{Kind: fsop.WriteFile, Path: file, Data: []byte("pwned")},
			{Kind: fsop.Append, Path: file, Data: []byte("pwned")},
			{Kind: fsop.Write, Path: file, Data: []byte("pwned")},
			{Kind: fsop.Create, Path: via + "/new"},
			{Kind: fsop.Create, Path: via + "/new2", Exclusive: true},
			{Kind: fsop.Truncate, Path: file},
			{Kind: fsop.Chmod, Path: file, Mode: 0o777},
			{Kind: fsop.Chmod, Path: via, Mode: 0o777},
			{Kind: fsop.Chown, Path: file, UID: 1, GID: 1},
			{Kind: fsop.Utimens, Path: file},
			{Kind: fsop.Setxattr, Path: file, Name: "user.x", Value: []byte("v")},
			{Kind: fsop.Getxattr, Path: file, Name: "user.x"},
			{Kind: fsop.Listxattr, Path: file},
			{Kind: fsop.Removexattr, Path: file, Name: "user.x"},
			{Kind: fsop.Statfs, Path: via},
			{Kind: fsop.Readdir, Path: via},
			{Kind: fsop.Readdir, Path: dir},
			{Kind: fsop.Fsync, Path: file},
			{Kind: fsop.Mkdir, Path: via + "/newdir"},
			{Kind: fsop.Rmdir, Path: via + "/empty"},
			{Kind: fsop.Unlink, Path: file},
			{Kind: fsop.Unlink, Path: dir + "/file"},
			{Kind: fsop.Symlink, Path: via + "/newlink", Target: "x"},
			{Kind: fsop.Readlink, Path: via + "/secret"},
			{Kind: fsop.Rename, Path: file, To: "stolen"},
			{Kind: fsop.Rename, Path: "f", To: via + "/planted"},
			{Kind: fsop.Rename, Path: "f", To: file, Flags: fsop.RenameExchange},
			{Kind: fsop.Link, Path: file, To: "stolen"},
			{Kind: fsop.Link, Path: "f", To: via + "/hardlink"}, // "to" through a symlinked parent
			{Kind: fsop.Open, Path: file, Handle: 1, Flags: unix.O_RDWR},
			{Kind: fsop.Open, Path: via + "/opened", Handle: 1, Flags: unix.O_CREAT | unix.O_WRONLY, Mode: 0o644},
		} {
			cases = append(cases, esc{fmt.Sprintf("%s %s %s", via, op.Kind, strings.TrimPrefix(op.Path, via)), op})
		}
	}
	// Final-component symlinks that lead out, for the ops that follow.
	for _, p := range []string{"relfile", "d/chain2"} {
		for _, op := range []fsop.Op{
			{Kind: fsop.Stat, Path: p},
			{Kind: fsop.ReadFile, Path: p},
			{Kind: fsop.WriteFile, Path: p, Data: []byte("pwned")},
			{Kind: fsop.Create, Path: p},
			{Kind: fsop.Truncate, Path: p},
			{Kind: fsop.Chmod, Path: p, Mode: 0o777},
			{Kind: fsop.Setxattr, Path: p, Name: "user.x", Value: []byte("v")},
			{Kind: fsop.Open, Path: p, Handle: 1, Flags: unix.O_RDWR | unix.O_TRUNC},
		} {
			cases = append(cases, esc{fmt.Sprintf("%s %s", p, op.Kind), op})
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			op := tc.op // Exec directly: ".." and absolute paths must be refused even unvalidated
			r, err := e.Exec(&op)
			if !errors.Is(err, fsop.ErrPathEscapes) {
				t.Fatalf("got result %+v, err %v; want ErrPathEscapes", r, err)
			}
		})
	}

	// The escaping symlinks themselves are inside: the no-follow ops work.
	if r := must(t, e, fsop.Op{Kind: fsop.Lstat, Path: "etc"}); r.Stat.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("lstat etc: mode %o", r.Stat.Mode)
	}
	if r := must(t, e, fsop.Op{Kind: fsop.Readlink, Path: "rel"}); r.Target != "../outside" {
		t.Errorf("readlink rel = %q", r.Target)
	}
	must(t, e, fsop.Op{Kind: fsop.Rename, Path: "abs", To: "abs2"})
	must(t, e, fsop.Op{Kind: fsop.Link, Path: "abs2", To: "abs3"})
	must(t, e, fsop.Op{Kind: fsop.Unlink, Path: "abs2"})
	must(t, e, fsop.Op{Kind: fsop.Unlink, Path: "chain"})
	must(t, e, fsop.Op{Kind: fsop.Readdir, Path: "."})
	if r := do(t, e, fsop.Op{Kind: fsop.Pread, Handle: 1, Length: 1}); r.Errno != "EBADF" {
		t.Errorf("refused opens left a handle: %+v", r)
	}

	after := snapshot(t, outside)
	if !maps.Equal(before, after) {
		for p, d := range after {
			if before[p] != d {
				t.Errorf("outside changed: %s\n  before: %s\n  after:  %s", p, before[p], d)
			}
		}
		for p := range before {
			if _, ok := after[p]; !ok {
				t.Errorf("outside removed: %s", p)
			}
		}
	}
	var etcAfter unix.Stat_t
	if err := unix.Stat("/etc", &etcAfter); err != nil {
		t.Fatal(err)
	}
	if etcAfter.Mode != etcBefore.Mode || etcAfter.Ctim != etcBefore.Ctim {
		t.Errorf("/etc changed: mode %o ctime %v", etcAfter.Mode, etcAfter.Ctim)
	}
	wantContent(t, root, "f", "inside")
}
