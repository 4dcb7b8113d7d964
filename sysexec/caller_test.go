package sysexec

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// TestCaller: an op with a Caller runs with that user's credentials: what
// it creates is theirs, and modes, groups and ownership rules apply to it
// as the kernel applies them; the same op without a Caller runs as the
// executor (root), and the executor stays root afterwards.
func TestCaller(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (switching credentials)")
	}
	e, root := newRoot(t, Limits{})
	if err := os.Chmod(root, 0o777); err != nil {
		t.Fatal(err)
	}
	alice := &fsop.Caller{UID: 1000, GID: 1000}
	bob := &fsop.Caller{UID: 1001, GID: 1001, Groups: []uint32{2000}}
	writeFile(t, root, "secret", "s")
	writeFile(t, root, "group", "g")
	if err := os.Chmod(filepath.Join(root, "secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(root, "group"), 0, 2000); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "group"), 0o640); err != nil {
		t.Fatal(err)
	}
	must(t, e, fsop.Op{Kind: fsop.Create, Path: "mine", Mode: 0o644, Caller: alice})
	must(t, e, fsop.Op{Kind: fsop.Mkdir, Path: "d", Mode: 0o755, Caller: alice})
	for _, name := range []string{"mine", "d"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 1000 || st.Gid != 1000 {
			t.Errorf("%s made for uid 1000 belongs to %d:%d", name, st.Uid, st.Gid)
		}
	}
	for _, tc := range []struct {
		name  string
		op    fsop.Op
		errno string
	}{
		{"root reads a 0600 file", fsop.Op{Kind: fsop.ReadFile, Path: "secret"}, ""},
		{"alice reads it", fsop.Op{Kind: fsop.ReadFile, Path: "secret", Caller: alice}, "EACCES"},
		{"bob reads a 0640 file of his group", fsop.Op{Kind: fsop.ReadFile, Path: "group", Caller: bob}, ""},
		{"alice, not in the group, reads it", fsop.Op{Kind: fsop.ReadFile, Path: "group", Caller: alice}, "EACCES"},
		{"root gives alice's file to bob", fsop.Op{Kind: fsop.Chown, Path: "mine", UID: 1001, GID: -1}, ""},
		{"alice chmods bob's file", fsop.Op{Kind: fsop.Chmod, Path: "mine", Mode: 0o600, Caller: alice}, "EPERM"},
		{"bob chmods his file", fsop.Op{Kind: fsop.Chmod, Path: "mine", Mode: 0o600, Caller: bob}, ""},
		{"alice creates in her directory", fsop.Op{Kind: fsop.Create, Path: "d/f", Mode: 0o644, Caller: alice}, ""},
		{"bob creates in it", fsop.Op{Kind: fsop.Create, Path: "d/g", Mode: 0o644, Caller: bob}, "EACCES"},
	} {
		if r := do(t, e, tc.op); r.Errno != tc.errno {
			t.Errorf("%s: errno %q, want %q", tc.name, r.Errno, tc.errno)
		}
	}
	if os.Geteuid() != 0 || unix.Getuid() != 0 {
		t.Fatalf("the executor's process is no longer root: uid %d euid %d", unix.Getuid(), os.Geteuid())
	}
}
