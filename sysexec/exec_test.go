package sysexec

import (
	"errors"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// opCase is one path-based op on a fresh root.
type opCase struct {
	name  string
	setup func(t *testing.T, root string)
	op    fsop.Op
	errno string
	check func(t *testing.T, root string, r fsop.Result)
}

func runOpCases(t *testing.T, cases []opCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, root := newRoot(t, Limits{})
			if tc.setup != nil {
				tc.setup(t, root)
			}
			r := do(t, e, tc.op)
			if r.Errno != tc.errno {
				t.Fatalf("errno = %q, want %q (result %+v)", r.Errno, tc.errno, r)
			}
			if tc.check != nil {
				tc.check(t, root, r)
			}
		})
	}
}

func fileAt(rel, data string) func(*testing.T, string) {
	return func(t *testing.T, root string) { writeFile(t, root, rel, data) }
}

func dirAt(rel string) func(*testing.T, string) {
	return func(t *testing.T, root string) { mkdir(t, root, rel) }
}

func wantMode(rel string, mode uint32) func(*testing.T, string, fsop.Result) {
	return func(t *testing.T, root string, _ fsop.Result) {
		if got := lstat(t, root, rel).Mode; got != mode {
			t.Errorf("mode of %s = %o, want %o", rel, got, mode)
		}
	}
}

func wantFile(rel, data string) func(*testing.T, string, fsop.Result) {
	return func(t *testing.T, root string, _ fsop.Result) { wantContent(t, root, rel, data) }
}

func wantGone(rel string) func(*testing.T, string, fsop.Result) {
	return func(t *testing.T, root string, _ fsop.Result) {
		if exists(root, rel) {
			t.Errorf("%s still exists", rel)
		}
	}
}

func TestNamespaceOps(t *testing.T) {
	runOpCases(t, []opCase{
		{name: "mkdir default mode", op: fsop.Op{Kind: fsop.Mkdir, Path: "d"},
			check: wantMode("d", unix.S_IFDIR|0o755)},
		{name: "mkdir mode", op: fsop.Op{Kind: fsop.Mkdir, Path: "d", Mode: 0o1700},
			check: wantMode("d", unix.S_IFDIR|0o1700)},
		{name: "mkdir nested", setup: dirAt("a/b"), op: fsop.Op{Kind: fsop.Mkdir, Path: "a/b/c"},
			check: wantMode("a/b/c", unix.S_IFDIR|0o755)},
		{name: "mkdir exists", setup: dirAt("d"), op: fsop.Op{Kind: fsop.Mkdir, Path: "d"}, errno: "EEXIST"},
		{name: "mkdir over file", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Mkdir, Path: "f"}, errno: "EEXIST"},
		{name: "mkdir root", op: fsop.Op{Kind: fsop.Mkdir, Path: "."}, errno: "EEXIST"},
		{name: "mkdir missing parent", op: fsop.Op{Kind: fsop.Mkdir, Path: "no/d"}, errno: "ENOENT"},
		{name: "mkdir parent is file", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Mkdir, Path: "f/d"}, errno: "ENOTDIR"},
		{name: "mkdir over dangling symlink", setup: func(t *testing.T, root string) { symlink(t, root, "nowhere", "l") },
			op: fsop.Op{Kind: fsop.Mkdir, Path: "l"}, errno: "EEXIST"},
		{name: "mkdir through symlinked parent", setup: func(t *testing.T, root string) {
			mkdir(t, root, "real")
			symlink(t, root, "real", "l")
		}, op: fsop.Op{Kind: fsop.Mkdir, Path: "l/d"}, check: wantMode("real/d", unix.S_IFDIR|0o755)},

		{name: "mknod fifo", op: fsop.Op{Kind: fsop.Mknod, Path: "p", Mode: unix.S_IFIFO | 0o640},
			check: wantMode("p", unix.S_IFIFO|0o640)},
		{name: "mknod socket", op: fsop.Op{Kind: fsop.Mknod, Path: "s", Mode: unix.S_IFSOCK | 0o600},
			check: wantMode("s", unix.S_IFSOCK|0o600)},
		{name: "mknod exists", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Mknod, Path: "f", Mode: unix.S_IFIFO | 0o644}, errno: "EEXIST"},
		{name: "mknod missing parent", op: fsop.Op{Kind: fsop.Mknod, Path: "no/p", Mode: unix.S_IFIFO | 0o644}, errno: "ENOENT"},

		{name: "rmdir", setup: dirAt("d"), op: fsop.Op{Kind: fsop.Rmdir, Path: "d"}, check: wantGone("d")},
		{name: "rmdir missing", op: fsop.Op{Kind: fsop.Rmdir, Path: "d"}, errno: "ENOENT"},
		{name: "rmdir not empty", setup: fileAt("d/f", ""), op: fsop.Op{Kind: fsop.Rmdir, Path: "d"}, errno: "ENOTEMPTY"},
		{name: "rmdir file", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Rmdir, Path: "f"}, errno: "ENOTDIR"},
		{name: "rmdir symlink to dir", setup: func(t *testing.T, root string) {
			mkdir(t, root, "d")
			symlink(t, root, "d", "l")
		}, op: fsop.Op{Kind: fsop.Rmdir, Path: "l"}, errno: "ENOTDIR"},
		{name: "rmdir root", op: fsop.Op{Kind: fsop.Rmdir, Path: "."}, errno: "EINVAL"},

		{name: "unlink", setup: fileAt("f", "x"), op: fsop.Op{Kind: fsop.Unlink, Path: "f"}, check: wantGone("f")},
		{name: "unlink missing", op: fsop.Op{Kind: fsop.Unlink, Path: "f"}, errno: "ENOENT"},
		{name: "unlink dir", setup: dirAt("d"), op: fsop.Op{Kind: fsop.Unlink, Path: "d"}, errno: "EISDIR"},
		{name: "unlink under file", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Unlink, Path: "f/x"}, errno: "ENOTDIR"},
		{name: "unlink symlink keeps target", setup: func(t *testing.T, root string) {
			writeFile(t, root, "f", "x")
			symlink(t, root, "f", "l")
		}, op: fsop.Op{Kind: fsop.Unlink, Path: "l"}, check: func(t *testing.T, root string, r fsop.Result) {
			wantGone("l")(t, root, r)
			wantContent(t, root, "f", "x")
		}},

		{name: "symlink verbatim", op: fsop.Op{Kind: fsop.Symlink, Path: "l", Target: "../../anything//x/"},
			check: func(t *testing.T, root string, _ fsop.Result) {
				if st := lstat(t, root, "l"); st.Mode&unix.S_IFMT != unix.S_IFLNK {
					t.Errorf("not a symlink: %o", st.Mode)
				}
			}},
		{name: "symlink exists", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Symlink, Path: "f", Target: "x"}, errno: "EEXIST"},
		{name: "symlink missing parent", op: fsop.Op{Kind: fsop.Symlink, Path: "no/l", Target: "x"}, errno: "ENOENT"},

		{name: "readlink", setup: func(t *testing.T, root string) { symlink(t, root, "/etc/../x", "l") },
			op: fsop.Op{Kind: fsop.Readlink, Path: "l"},
			check: func(t *testing.T, _ string, r fsop.Result) {
				if r.Target != "/etc/../x" {
					t.Errorf("target = %q", r.Target)
				}
			}},
		{name: "readlink long", setup: func(t *testing.T, root string) {
			symlink(t, root, longName(1000), "l")
		}, op: fsop.Op{Kind: fsop.Readlink, Path: "l"},
			check: func(t *testing.T, _ string, r fsop.Result) {
				if r.Target != longName(1000) {
					t.Errorf("target has %d bytes, want 1000", len(r.Target))
				}
			}},
		{name: "readlink file", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Readlink, Path: "f"}, errno: "EINVAL"},
		{name: "readlink missing", op: fsop.Op{Kind: fsop.Readlink, Path: "l"}, errno: "ENOENT"},

		{name: "link", setup: fileAt("f", "x"), op: fsop.Op{Kind: fsop.Link, Path: "f", To: "g"},
			check: func(t *testing.T, root string, _ fsop.Result) {
				if lstat(t, root, "f").Ino != lstat(t, root, "g").Ino || lstat(t, root, "g").Nlink != 2 {
					t.Error("g is not a hard link of f")
				}
			}},
		{name: "link symlink itself", setup: func(t *testing.T, root string) {
			writeFile(t, root, "f", "x")
			symlink(t, root, "f", "l")
		}, op: fsop.Op{Kind: fsop.Link, Path: "l", To: "g"}, check: wantMode("g", unix.S_IFLNK|0o777)},
		{name: "link exists", setup: func(t *testing.T, root string) {
			writeFile(t, root, "f", "")
			writeFile(t, root, "g", "")
		}, op: fsop.Op{Kind: fsop.Link, Path: "f", To: "g"}, errno: "EEXIST"},
		{name: "link missing", op: fsop.Op{Kind: fsop.Link, Path: "f", To: "g"}, errno: "ENOENT"},
		{name: "link dir", setup: dirAt("d"), op: fsop.Op{Kind: fsop.Link, Path: "d", To: "e"}, errno: "EPERM"},
		{name: "link to missing dir", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Link, Path: "f", To: "no/g"}, errno: "ENOENT"},

		{name: "rename", setup: fileAt("f", "x"), op: fsop.Op{Kind: fsop.Rename, Path: "f", To: "g"},
			check: func(t *testing.T, root string, r fsop.Result) {
				wantGone("f")(t, root, r)
				wantContent(t, root, "g", "x")
			}},
		{name: "rename replaces", setup: func(t *testing.T, root string) {
			writeFile(t, root, "f", "x")
			writeFile(t, root, "d/g", "y")
		}, op: fsop.Op{Kind: fsop.Rename, Path: "f", To: "d/g"}, check: wantFile("d/g", "x")},
		{name: "rename noreplace", setup: func(t *testing.T, root string) {
			writeFile(t, root, "f", "x")
			writeFile(t, root, "g", "y")
		}, op: fsop.Op{Kind: fsop.Rename, Path: "f", To: "g", Flags: fsop.RenameNoReplace}, errno: "EEXIST"},
		{name: "rename exchange", setup: func(t *testing.T, root string) {
			writeFile(t, root, "f", "x")
			writeFile(t, root, "g", "y")
		}, op: fsop.Op{Kind: fsop.Rename, Path: "f", To: "g", Flags: fsop.RenameExchange},
			check: func(t *testing.T, root string, _ fsop.Result) {
				wantContent(t, root, "f", "y")
				wantContent(t, root, "g", "x")
			}},
		{name: "rename exchange missing", setup: fileAt("f", "x"),
			op: fsop.Op{Kind: fsop.Rename, Path: "f", To: "g", Flags: fsop.RenameExchange}, errno: "ENOENT"},
		{name: "rename bad flags", setup: fileAt("f", "x"),
			op: fsop.Op{Kind: fsop.Rename, Path: "f", To: "g", Flags: fsop.RenameExchange | fsop.RenameNoReplace}, errno: "EINVAL"},
		{name: "rename missing", op: fsop.Op{Kind: fsop.Rename, Path: "f", To: "g"}, errno: "ENOENT"},
		{name: "rename dir over non-empty dir", setup: func(t *testing.T, root string) {
			mkdir(t, root, "a")
			writeFile(t, root, "b/f", "")
		}, op: fsop.Op{Kind: fsop.Rename, Path: "a", To: "b"}, errno: "ENOTEMPTY"},
		{name: "rename file over dir", setup: func(t *testing.T, root string) {
			writeFile(t, root, "f", "")
			mkdir(t, root, "d")
		}, op: fsop.Op{Kind: fsop.Rename, Path: "f", To: "d"}, errno: "EISDIR"},
		{name: "rename dir over file", setup: func(t *testing.T, root string) {
			writeFile(t, root, "f", "")
			mkdir(t, root, "d")
		}, op: fsop.Op{Kind: fsop.Rename, Path: "d", To: "f"}, errno: "ENOTDIR"},
		{name: "rename dir into itself", setup: dirAt("d"),
			op: fsop.Op{Kind: fsop.Rename, Path: "d", To: "d/e"}, errno: "EINVAL"},
		// The root itself goes to the *at syscalls as ".", so the kernel
		// answers exactly as for "." (EBUSY, EPERM, EISDIR, ...).
		{name: "rename root", op: fsop.Op{Kind: fsop.Rename, Path: ".", To: "x"}, errno: "EBUSY"},
		{name: "rename onto root", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Rename, Path: "f", To: "."}, errno: "EBUSY"},
		{name: "link root", op: fsop.Op{Kind: fsop.Link, Path: ".", To: "x"}, errno: "EPERM"},
		{name: "link onto root", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Link, Path: "f", To: "."}, errno: "EEXIST"},
		{name: "unlink root", op: fsop.Op{Kind: fsop.Unlink, Path: "."}, errno: "EISDIR"},
		{name: "symlink root", op: fsop.Op{Kind: fsop.Symlink, Path: ".", Target: "x"}, errno: "EEXIST"},
		{name: "readlink root", op: fsop.Op{Kind: fsop.Readlink, Path: "."}, errno: "EINVAL"},
		{name: "rename symlink not target", setup: func(t *testing.T, root string) {
			writeFile(t, root, "f", "x")
			symlink(t, root, "f", "l")
		}, op: fsop.Op{Kind: fsop.Rename, Path: "l", To: "m"}, check: func(t *testing.T, root string, _ fsop.Result) {
			wantMode("m", unix.S_IFLNK|0o777)(t, root, fsop.Result{})
			wantContent(t, root, "f", "x")
		}},
	})
}

func longName(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}

func TestMetadataOps(t *testing.T) {
	wantStatMode := func(mode uint32, size int64) func(*testing.T, string, fsop.Result) {
		return func(t *testing.T, _ string, r fsop.Result) {
			if r.Stat == nil {
				t.Fatal("no stat")
			}
			if r.Stat.Mode != mode || (size >= 0 && r.Stat.Size != size) {
				t.Errorf("stat mode %o size %d, want %o %d", r.Stat.Mode, r.Stat.Size, mode, size)
			}
		}
	}
	withLink := func(target, rel string) func(*testing.T, string) {
		return func(t *testing.T, root string) {
			writeFile(t, root, "f", "hello")
			mkdir(t, root, "d")
			symlink(t, root, target, rel)
		}
	}
	runOpCases(t, []opCase{
		{name: "stat file", setup: fileAt("f", "hello"), op: fsop.Op{Kind: fsop.Stat, Path: "f"},
			check: func(t *testing.T, root string, r fsop.Result) {
				wantStatMode(unix.S_IFREG|0o644, 5)(t, root, r)
				st := lstat(t, root, "f")
				a := r.Stat
				if a.Ino != st.Ino || a.Nlink != 1 || a.UID != st.Uid || a.GID != st.Gid ||
					a.MtimeNs != st.Mtim.Nano() || a.AtimeNs != st.Atim.Nano() || a.CtimeNs != st.Ctim.Nano() {
					t.Errorf("attr %+v does not match %+v", a, st)
				}
			}},
		{name: "stat root", op: fsop.Op{Kind: fsop.Stat, Path: "."}, check: wantStatMode(unix.S_IFDIR|0o755, -1)},
		{name: "stat follows", setup: withLink("f", "l"), op: fsop.Op{Kind: fsop.Stat, Path: "l"},
			check: wantStatMode(unix.S_IFREG|0o644, 5)},
		{name: "stat follows dotdot inside", setup: withLink("d/../f", "l"), op: fsop.Op{Kind: fsop.Stat, Path: "l"},
			check: wantStatMode(unix.S_IFREG|0o644, 5)},
		{name: "stat missing", op: fsop.Op{Kind: fsop.Stat, Path: "f"}, errno: "ENOENT"},
		{name: "stat dangling", setup: withLink("nowhere", "l"), op: fsop.Op{Kind: fsop.Stat, Path: "l"}, errno: "ENOENT"},
		{name: "stat loop", setup: func(t *testing.T, root string) {
			symlink(t, root, "b", "a")
			symlink(t, root, "a", "b")
		}, op: fsop.Op{Kind: fsop.Stat, Path: "a"}, errno: "ELOOP"},
		{name: "stat under file", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Stat, Path: "f/x"}, errno: "ENOTDIR"},
		{name: "lstat symlink", setup: withLink("f", "l"), op: fsop.Op{Kind: fsop.Lstat, Path: "l"},
			check: wantStatMode(unix.S_IFLNK|0o777, 1)},
		{name: "lstat root", op: fsop.Op{Kind: fsop.Lstat, Path: "."}, check: wantStatMode(unix.S_IFDIR|0o755, -1)},
		{name: "lstat file", setup: fileAt("d/f", "abc"), op: fsop.Op{Kind: fsop.Lstat, Path: "d/f"},
			check: wantStatMode(unix.S_IFREG|0o644, 3)},
		{name: "lstat missing", op: fsop.Op{Kind: fsop.Lstat, Path: "d/f"}, errno: "ENOENT"},
		{name: "lstat block device", setup: func(t *testing.T, root string) {
			if err := unix.Mknod(root+"/b", unix.S_IFBLK|0o600, int(unix.Mkdev(8, 1))); err != nil {
				t.Skipf("mknod of a block device: %v", err)
			}
		}, op: fsop.Op{Kind: fsop.Lstat, Path: "b"}, check: func(t *testing.T, root string, r fsop.Result) {
			if r.Stat == nil || r.Stat.Mode != unix.S_IFBLK|0o600 || r.Stat.Rdev != unix.Mkdev(8, 1) {
				t.Fatalf("stat of a block device: %+v, want mode %o rdev %#x", r.Stat, unix.S_IFBLK|0o600, unix.Mkdev(8, 1))
			}
		}},

		{name: "chmod", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Chmod, Path: "f", Mode: 0o4751},
			check: wantMode("f", unix.S_IFREG|0o4751)},
		{name: "chmod dir", setup: dirAt("d"), op: fsop.Op{Kind: fsop.Chmod, Path: "d", Mode: 0o700},
			check: wantMode("d", unix.S_IFDIR|0o700)},
		{name: "chmod follows", setup: withLink("f", "l"), op: fsop.Op{Kind: fsop.Chmod, Path: "l", Mode: 0o600},
			check: func(t *testing.T, root string, r fsop.Result) {
				wantMode("f", unix.S_IFREG|0o600)(t, root, r)
				wantMode("l", unix.S_IFLNK|0o777)(t, root, r)
			}},
		{name: "chmod missing", op: fsop.Op{Kind: fsop.Chmod, Path: "f", Mode: 0o600}, errno: "ENOENT"},

		{name: "chown", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Chown, Path: "f", UID: 1234, GID: 5678},
			check: func(t *testing.T, root string, _ fsop.Result) {
				if st := lstat(t, root, "f"); st.Uid != 1234 || st.Gid != 5678 {
					t.Errorf("owner %d:%d", st.Uid, st.Gid)
				}
			}},
		{name: "chown unchanged", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Chown, Path: "f", UID: -1, GID: 77},
			check: func(t *testing.T, root string, _ fsop.Result) {
				if st := lstat(t, root, "f"); int(st.Uid) != unix.Getuid() || st.Gid != 77 {
					t.Errorf("owner %d:%d", st.Uid, st.Gid)
				}
			}},
		{name: "chown missing", op: fsop.Op{Kind: fsop.Chown, Path: "f", UID: -1, GID: -1}, errno: "ENOENT"},

		{name: "utimens", setup: fileAt("f", ""),
			op: fsop.Op{Kind: fsop.Utimens, Path: "f", AtimeNs: 1_000_000_123, MtimeNs: 2_000_000_456},
			check: func(t *testing.T, root string, _ fsop.Result) {
				if st := lstat(t, root, "f"); st.Atim.Nano() != 1_000_000_123 || st.Mtim.Nano() != 2_000_000_456 {
					t.Errorf("times %d %d", st.Atim.Nano(), st.Mtim.Nano())
				}
			}},
		{name: "utimens follows", setup: withLink("f", "l"),
			op: fsop.Op{Kind: fsop.Utimens, Path: "l", AtimeNs: 5e9, MtimeNs: 6e9},
			check: func(t *testing.T, root string, _ fsop.Result) {
				if st := lstat(t, root, "f"); st.Mtim.Nano() != 6e9 {
					t.Errorf("target mtime %d", st.Mtim.Nano())
				}
			}},
		{name: "utimens missing", op: fsop.Op{Kind: fsop.Utimens, Path: "f"}, errno: "ENOENT"},

		{name: "truncate shrink", setup: fileAt("f", "hello"), op: fsop.Op{Kind: fsop.Truncate, Path: "f", Size: 2},
			check: wantFile("f", "he")},
		{name: "truncate grow", setup: fileAt("f", "hi"), op: fsop.Op{Kind: fsop.Truncate, Path: "f", Size: 4},
			check: wantFile("f", "hi\x00\x00")},
		{name: "truncate follows", setup: withLink("f", "l"), op: fsop.Op{Kind: fsop.Truncate, Path: "l", Size: 1},
			check: wantFile("f", "h")},
		{name: "truncate dir", setup: dirAt("d"), op: fsop.Op{Kind: fsop.Truncate, Path: "d"}, errno: "EISDIR"},
		{name: "truncate missing", op: fsop.Op{Kind: fsop.Truncate, Path: "f"}, errno: "ENOENT"},

		{name: "statfs", op: fsop.Op{Kind: fsop.Statfs, Path: "."},
			check: func(t *testing.T, root string, r fsop.Result) {
				var sf unix.Statfs_t
				if err := unix.Statfs(root, &sf); err != nil {
					t.Fatal(err)
				}
				s := r.Statfs
				if s == nil || s.Bsize != sf.Bsize || s.Namelen != sf.Namelen || s.Blocks != sf.Blocks {
					t.Errorf("statfs %+v, want %+v", s, sf)
				}
			}},
		{name: "statfs missing", op: fsop.Op{Kind: fsop.Statfs, Path: "x"}, errno: "ENOENT"},

		{name: "readdir", setup: func(t *testing.T, root string) {
			writeFile(t, root, "d/f", "")
			mkdir(t, root, "d/sub")
			symlink(t, root, "f", "d/l")
			if err := unix.Mkfifo(root+"/d/p", 0o644); err != nil {
				t.Fatal(err)
			}
		}, op: fsop.Op{Kind: fsop.Readdir, Path: "d"}, check: func(t *testing.T, _ string, r fsop.Result) {
			got := map[string]string{}
			for _, d := range r.Entries {
				got[d.Name] = d.Type
			}
			want := map[string]string{".": "dir", "..": "dir", "f": "file", "sub": "dir", "l": "symlink", "p": "fifo"}
			if len(got) != len(want) || len(r.Entries) != len(want) {
				t.Fatalf("entries %v, want %v", r.Entries, want)
			}
			for n, ty := range want {
				if got[n] != ty {
					t.Errorf("%s: type %q, want %q", n, got[n], ty)
				}
			}
		}},
		{name: "readdir many", setup: func(t *testing.T, root string) {
			for i := range 2000 {
				writeFile(t, root, "d/"+longName(100)+strconv.Itoa(i), "")
			}
		}, op: fsop.Op{Kind: fsop.Readdir, Path: "d"}, check: func(t *testing.T, _ string, r fsop.Result) {
			if len(r.Entries) != 2002 {
				t.Errorf("%d entries, want 2002", len(r.Entries))
			}
			names := make([]string, 0, len(r.Entries))
			for _, d := range r.Entries {
				names = append(names, d.Name)
			}
			slices.Sort(names)
			if len(slices.Compact(names)) != 2002 {
				t.Error("duplicate entries")
			}
		}},
		{name: "readdir d_off", setup: func(t *testing.T, root string) {
			for i := range 20 {
				writeFile(t, root, "d/f"+strconv.Itoa(i), "")
			}
		}, op: fsop.Op{Kind: fsop.Readdir, Path: "d"}, check: checkOffsets},
		{name: "readdir follows", setup: func(t *testing.T, root string) {
			mkdir(t, root, "d")
			symlink(t, root, "d", "l")
		}, op: fsop.Op{Kind: fsop.Readdir, Path: "l"}, check: func(t *testing.T, _ string, r fsop.Result) {
			if len(r.Entries) != 2 {
				t.Errorf("entries %v", r.Entries)
			}
		}},
		{name: "readdir file", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Readdir, Path: "f"}, errno: "ENOTDIR"},
		{name: "readdir missing", op: fsop.Op{Kind: fsop.Readdir, Path: "d"}, errno: "ENOENT"},

		{name: "fsync file", setup: fileAt("f", "x"), op: fsop.Op{Kind: fsop.Fsync, Path: "f"}},
		{name: "fsync dir", setup: dirAt("d"), op: fsop.Op{Kind: fsop.Fsync, Path: "d"}},
		{name: "fsync missing", op: fsop.Op{Kind: fsop.Fsync, Path: "f"}, errno: "ENOENT"},
		{name: "fsync unknown handle", op: fsop.Op{Kind: fsop.Fsync, Handle: 9}, errno: "EBADF"},
	})
}

func TestDataOps(t *testing.T) {
	wantN := func(n int64) func(*testing.T, string, fsop.Result) {
		return func(t *testing.T, _ string, r fsop.Result) {
			if r.N != n {
				t.Errorf("N = %d, want %d", r.N, n)
			}
		}
	}
	both := func(fs ...func(*testing.T, string, fsop.Result)) func(*testing.T, string, fsop.Result) {
		return func(t *testing.T, root string, r fsop.Result) {
			for _, f := range fs {
				f(t, root, r)
			}
		}
	}
	wantRead := func(want string) func(*testing.T, string, fsop.Result) {
		return func(t *testing.T, _ string, r fsop.Result) { wantData(t, r.Data, want) }
	}
	runOpCases(t, []opCase{
		{name: "create", op: fsop.Op{Kind: fsop.Create, Path: "f", Mode: 0o600},
			check: both(wantMode("f", unix.S_IFREG|0o600), wantFile("f", ""))},
		{name: "create default mode", op: fsop.Op{Kind: fsop.Create, Path: "f"}, check: wantMode("f", unix.S_IFREG|0o644)},
		{name: "create existing keeps data", setup: fileAt("f", "x"), op: fsop.Op{Kind: fsop.Create, Path: "f"},
			check: wantFile("f", "x")},
		{name: "create exclusive", setup: fileAt("f", "x"), op: fsop.Op{Kind: fsop.Create, Path: "f", Exclusive: true}, errno: "EEXIST"},
		{name: "create exclusive symlink", setup: func(t *testing.T, root string) { symlink(t, root, "nowhere", "l") },
			op: fsop.Op{Kind: fsop.Create, Path: "l", Exclusive: true}, errno: "EEXIST"},
		{name: "create through dangling symlink", setup: func(t *testing.T, root string) {
			mkdir(t, root, "d")
			symlink(t, root, "../t", "d/l")
		}, op: fsop.Op{Kind: fsop.Create, Path: "d/l"}, check: wantFile("t", "")},
		{name: "create dir", setup: dirAt("d"), op: fsop.Op{Kind: fsop.Create, Path: "d"}, errno: "EISDIR"},
		{name: "create root", op: fsop.Op{Kind: fsop.Create, Path: "."}, errno: "EISDIR"},
		{name: "create missing parent", op: fsop.Op{Kind: fsop.Create, Path: "no/f"}, errno: "ENOENT"},

		{name: "write_file", op: fsop.Op{Kind: fsop.WriteFile, Path: "f", Data: []byte("hello")},
			check: both(wantN(5), wantFile("f", "hello"), wantMode("f", unix.S_IFREG|0o644))},
		{name: "write_file truncates", setup: fileAt("f", "long old content"),
			op: fsop.Op{Kind: fsop.WriteFile, Path: "f", Data: []byte("new")}, check: wantFile("f", "new")},
		{name: "write_file empty", setup: fileAt("f", "old"),
			op: fsop.Op{Kind: fsop.WriteFile, Path: "f"}, check: both(wantN(0), wantFile("f", ""))},
		{name: "write_file dir", setup: dirAt("d"), op: fsop.Op{Kind: fsop.WriteFile, Path: "d", Data: []byte("x")}, errno: "EISDIR"},
		{name: "write_file missing parent", op: fsop.Op{Kind: fsop.WriteFile, Path: "no/f", Data: []byte("x")}, errno: "ENOENT"},
		{name: "write_file through symlink", setup: func(t *testing.T, root string) {
			writeFile(t, root, "f", "old")
			symlink(t, root, "f", "l")
		}, op: fsop.Op{Kind: fsop.WriteFile, Path: "l", Data: []byte("new")}, check: wantFile("f", "new")},

		{name: "append", setup: fileAt("f", "ab"), op: fsop.Op{Kind: fsop.Append, Path: "f", Data: []byte("cd")},
			check: both(wantN(2), wantFile("f", "abcd"))},
		{name: "append creates", op: fsop.Op{Kind: fsop.Append, Path: "f", Data: []byte("cd")}, check: wantFile("f", "cd")},
		{name: "append dir", setup: dirAt("d"), op: fsop.Op{Kind: fsop.Append, Path: "d", Data: []byte("x")}, errno: "EISDIR"},

		{name: "write at offset", setup: fileAt("f", "hello"),
			op:    fsop.Op{Kind: fsop.Write, Path: "f", Offset: 1, Data: []byte("EL")},
			check: both(wantN(2), wantFile("f", "hELlo"))},
		{name: "write past end", setup: fileAt("f", "ab"),
			op: fsop.Op{Kind: fsop.Write, Path: "f", Offset: 4, Data: []byte("x")}, check: wantFile("f", "ab\x00\x00x")},
		{name: "write no create", op: fsop.Op{Kind: fsop.Write, Path: "f", Data: []byte("x")}, errno: "ENOENT"},
		{name: "write dir", setup: dirAt("d"), op: fsop.Op{Kind: fsop.Write, Path: "d", Data: []byte("x")}, errno: "EISDIR"},

		{name: "read_file", setup: fileAt("f", "hello"), op: fsop.Op{Kind: fsop.ReadFile, Path: "f"}, check: wantRead("hello")},
		{name: "read_file empty", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.ReadFile, Path: "f"}, check: wantRead("")},
		{name: "read_file large", setup: fileAt("f", longName(300_000)), op: fsop.Op{Kind: fsop.ReadFile, Path: "f"},
			check: wantRead(longName(300_000))},
		{name: "read_file missing", op: fsop.Op{Kind: fsop.ReadFile, Path: "f"}, errno: "ENOENT"},
		{name: "read_file dir", setup: dirAt("d"), op: fsop.Op{Kind: fsop.ReadFile, Path: "d"}, errno: "EISDIR"},
		{name: "read_file under file", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.ReadFile, Path: "f/g"}, errno: "ENOTDIR"},

		{name: "read", setup: fileAt("f", "hello"), op: fsop.Op{Kind: fsop.Read, Path: "f", Offset: 1, Length: 3}, check: wantRead("ell")},
		{name: "read short", setup: fileAt("f", "hello"), op: fsop.Op{Kind: fsop.Read, Path: "f", Offset: 3, Length: 100}, check: wantRead("lo")},
		{name: "read past eof", setup: fileAt("f", "hello"), op: fsop.Op{Kind: fsop.Read, Path: "f", Offset: 10, Length: 4}, check: wantRead("")},
		{name: "read big", setup: fileAt("f", longName(200_000)), op: fsop.Op{Kind: fsop.Read, Path: "f", Offset: 7, Length: 150_000},
			check: wantRead(longName(200_000)[7:150_007])},
		{name: "read missing", op: fsop.Op{Kind: fsop.Read, Path: "f", Length: 1}, errno: "ENOENT"},
		{name: "read dir", setup: dirAt("d"), op: fsop.Op{Kind: fsop.Read, Path: "d", Length: 1}, errno: "EISDIR"},
		{name: "read zero length", setup: fileAt("f", "x"), op: fsop.Op{Kind: fsop.Read, Path: "f"}, check: wantRead("")},
		{name: "read zero length dir", setup: dirAt("d"), op: fsop.Op{Kind: fsop.Read, Path: "d"}, errno: "EISDIR"},
		{name: "write zero length", setup: fileAt("f", "x"), op: fsop.Op{Kind: fsop.Write, Path: "f", Offset: 9},
			check: both(wantN(0), wantFile("f", "x"))},
	})
}

func TestReadLimits(t *testing.T) {
	e, root := newRoot(t, Limits{MaxRead: 10})
	writeFile(t, root, "small", "0123456789")
	writeFile(t, root, "big", "0123456789a")
	wantData(t, must(t, e, fsop.Op{Kind: fsop.ReadFile, Path: "small"}).Data, "0123456789")
	if r := do(t, e, fsop.Op{Kind: fsop.ReadFile, Path: "big"}); r.Errno != "EFBIG" {
		t.Errorf("read_file big: errno %q, want EFBIG", r.Errno)
	}
	wantData(t, must(t, e, fsop.Op{Kind: fsop.Read, Path: "big", Length: 10}).Data, "0123456789")
	for _, op := range []fsop.Op{
		{Kind: fsop.Read, Path: "big", Length: 11},
		{Kind: fsop.Pread, Handle: 1, Length: 11},
	} {
		if _, err := e.Exec(&op); !errors.Is(err, fsop.ErrBadValue) {
			t.Errorf("%s length 11: err %v, want ErrBadValue", op.Kind, err)
		}
	}
	if _, err := New(root, Limits{MaxRead: -1}); !errors.Is(err, fsop.ErrBadValue) {
		t.Errorf("New with negative MaxRead: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	e, root := newRoot(t, Limits{})
	writeFile(t, root, "f", "")
	for _, tc := range []struct {
		name string
		op   fsop.Op
		want error
	}{
		{"unknown kind", fsop.Op{Kind: "frobnicate", Path: "f"}, fsop.ErrUnknownOp},
		{"chown uid too big", fsop.Op{Kind: fsop.Chown, Path: "f", UID: 1 << 32, GID: -1}, fsop.ErrBadValue},
		{"chown uid -2", fsop.Op{Kind: fsop.Chown, Path: "f", UID: -2, GID: -1}, fsop.ErrBadValue},
		{"empty path", fsop.Op{Kind: fsop.Stat, Path: ""}, fsop.ErrBadPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.Exec(&tc.op); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := e.Exec(nil); err == nil {
		t.Error("nil op accepted")
	}
}

func TestClose(t *testing.T) {
	e, root := newRoot(t, Limits{})
	writeFile(t, root, "f", "x")
	before := fdCount(t)
	must(t, e, fsop.Op{Kind: fsop.Open, Path: "f", Handle: 1})
	must(t, e, fsop.Op{Kind: fsop.Open, Path: "f", Handle: 2})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := fdCount(t); got != before-1 { // the root fd is closed too
		t.Errorf("fds after Close: %d, want %d", got, before-1)
	}
	if _, err := e.Exec(&fsop.Op{Kind: fsop.Stat, Path: "f"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Exec after Close: %v", err)
	}
}

// checkOffsets: each entry's d_off is the filesystem's cookie for the
// position after it: getdents after lseek to it starts at the next entry.
func checkOffsets(t *testing.T, root string, r fsop.Result) {
	fd, err := unix.Open(root+"/d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	for i, d := range r.Entries {
		if d.Off == 0 {
			t.Fatalf("entry %d (%s): d_off 0", i, d.Name)
		}
		if _, err := unix.Seek(fd, int64(d.Off), 0); err != nil {
			t.Fatal(err)
		}
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		var next []fsop.Dirent
		if next = parseDirents(buf[:n], nil); i+1 == len(r.Entries) {
			if len(next) != 0 {
				t.Errorf("after the last entry's d_off: %v, want nothing", next)
			}
			continue
		}
		if len(next) == 0 || next[0] != r.Entries[i+1] {
			t.Errorf("after %s's d_off %d: %v, want %v first", d.Name, d.Off, next, r.Entries[i+1])
		}
	}
}
