package sysexec

import (
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

func TestXattrOps(t *testing.T) {
	requireUserXattr(t)
	withAttrs := func(t *testing.T, root string) {
		writeFile(t, root, "f", "")
		symlink(t, root, "f", "l")
		for name, v := range map[string]string{"user.a": "hello", "user.b": "", "user.c": "xyz"} {
			if err := unix.Setxattr(filepath.Join(root, "f"), name, []byte(v), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantXattr := func(rel, name, want string) func(*testing.T, string, fsop.Result) {
		return func(t *testing.T, root string, _ fsop.Result) {
			buf := make([]byte, 256)
			n, err := unix.Getxattr(filepath.Join(root, rel), name, buf)
			if err != nil || string(buf[:n]) != want {
				t.Errorf("%s %s = %q, %v; want %q", rel, name, buf[:n], err, want)
			}
		}
	}
	wantValue := func(value string, size int64) func(*testing.T, string, fsop.Result) {
		return func(t *testing.T, _ string, r fsop.Result) {
			if string(r.Value) != value || r.Size != size || r.Value == nil {
				t.Errorf("value %q size %d, want %q %d", r.Value, r.Size, value, size)
			}
		}
	}
	runOpCases(t, []opCase{
		{name: "setxattr", setup: withAttrs, op: fsop.Op{Kind: fsop.Setxattr, Path: "f", Name: "user.new", Value: []byte("v")},
			check: wantXattr("f", "user.new", "v")},
		{name: "setxattr replace value", setup: withAttrs, op: fsop.Op{Kind: fsop.Setxattr, Path: "f", Name: "user.a", Value: []byte("bye")},
			check: wantXattr("f", "user.a", "bye")},
		{name: "setxattr follows", setup: withAttrs, op: fsop.Op{Kind: fsop.Setxattr, Path: "l", Name: "user.new", Value: []byte("w")},
			check: wantXattr("f", "user.new", "w")},
		{name: "setxattr create exists", setup: withAttrs,
			op: fsop.Op{Kind: fsop.Setxattr, Path: "f", Name: "user.a", Value: []byte("v"), Flags: fsop.XattrCreate}, errno: "EEXIST"},
		{name: "setxattr replace missing", setup: withAttrs,
			op: fsop.Op{Kind: fsop.Setxattr, Path: "f", Name: "user.zz", Value: []byte("v"), Flags: fsop.XattrReplace}, errno: "ENODATA"},
		{name: "setxattr missing file", op: fsop.Op{Kind: fsop.Setxattr, Path: "f", Name: "user.a"}, errno: "ENOENT"},
		{name: "setxattr bad namespace", setup: withAttrs, op: fsop.Op{Kind: fsop.Setxattr, Path: "f", Name: "bogus.a"}, errno: "ENOTSUP"},

		{name: "getxattr query", setup: withAttrs, op: fsop.Op{Kind: fsop.Getxattr, Path: "f", Name: "user.a"},
			check: wantValue("hello", 5)},
		{name: "getxattr empty value", setup: withAttrs, op: fsop.Op{Kind: fsop.Getxattr, Path: "f", Name: "user.b"},
			check: wantValue("", 0)},
		{name: "getxattr sized", setup: withAttrs, op: fsop.Op{Kind: fsop.Getxattr, Path: "f", Name: "user.a", Length: 5},
			check: wantValue("hello", 5)},
		{name: "getxattr big buffer", setup: withAttrs, op: fsop.Op{Kind: fsop.Getxattr, Path: "f", Name: "user.a", Length: 1 << 30},
			check: wantValue("hello", 5)},
		{name: "getxattr small buffer", setup: withAttrs, op: fsop.Op{Kind: fsop.Getxattr, Path: "f", Name: "user.a", Length: 4}, errno: "ERANGE"},
		{name: "getxattr follows", setup: withAttrs, op: fsop.Op{Kind: fsop.Getxattr, Path: "l", Name: "user.c"},
			check: wantValue("xyz", 3)},
		{name: "getxattr missing", setup: withAttrs, op: fsop.Op{Kind: fsop.Getxattr, Path: "f", Name: "user.zz"}, errno: "ENODATA"},
		{name: "getxattr missing sized", setup: withAttrs, op: fsop.Op{Kind: fsop.Getxattr, Path: "f", Name: "user.zz", Length: 10}, errno: "ENODATA"},
		{name: "getxattr missing file", op: fsop.Op{Kind: fsop.Getxattr, Path: "f", Name: "user.a"}, errno: "ENOENT"},

		{name: "listxattr", setup: withAttrs, op: fsop.Op{Kind: fsop.Listxattr, Path: "f"},
			check: func(t *testing.T, _ string, r fsop.Result) {
				var user []string
				for _, n := range r.Names {
					if len(n) > 5 && n[:5] == "user." {
						user = append(user, n)
					}
				}
				slices.Sort(user)
				if !slices.Equal(user, []string{"user.a", "user.b", "user.c"}) {
					t.Errorf("names %q", r.Names)
				}
				total := 0
				for _, n := range r.Names {
					total += len(n) + 1
				}
				if r.Size != int64(total) {
					t.Errorf("size %d, want %d", r.Size, total)
				}
			}},
		{name: "listxattr sized", setup: withAttrs, op: fsop.Op{Kind: fsop.Listxattr, Path: "l", Length: 4096},
			check: func(t *testing.T, _ string, r fsop.Result) {
				if !slices.Contains(r.Names, "user.c") || r.Size < 21 {
					t.Errorf("names %q size %d", r.Names, r.Size)
				}
			}},
		{name: "listxattr small buffer", setup: withAttrs, op: fsop.Op{Kind: fsop.Listxattr, Path: "f", Length: 3}, errno: "ERANGE"},
		{name: "listxattr none", setup: fileAt("f", ""), op: fsop.Op{Kind: fsop.Listxattr, Path: "f"},
			check: func(t *testing.T, _ string, r fsop.Result) {
				if len(r.Names) != 0 || r.Size != 0 {
					t.Errorf("names %q size %d", r.Names, r.Size)
				}
			}},
		{name: "listxattr missing", op: fsop.Op{Kind: fsop.Listxattr, Path: "f"}, errno: "ENOENT"},

		{name: "removexattr", setup: withAttrs, op: fsop.Op{Kind: fsop.Removexattr, Path: "l", Name: "user.a"},
			check: func(t *testing.T, root string, _ fsop.Result) {
				if _, err := unix.Getxattr(filepath.Join(root, "f"), "user.a", nil); err != unix.ENODATA {
					t.Errorf("user.a still there: %v", err)
				}
			}},
		{name: "removexattr missing", setup: withAttrs, op: fsop.Op{Kind: fsop.Removexattr, Path: "f", Name: "user.zz"}, errno: "ENODATA"},
		{name: "removexattr missing file", op: fsop.Op{Kind: fsop.Removexattr, Path: "f", Name: "user.a"}, errno: "ENOENT"},
	})
}
