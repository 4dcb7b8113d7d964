package proxy

import (
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/store"
	"github.com/lighthouse-fs/lighthouse/storeexec"
)

// TestEntryResultIsState: the audit's view of a subtree entry is what a
// read-back (storeexec.State) reports for the path, for every kind of
// file: special files have no content digest, a device its number.
func TestEntryResultIsState(t *testing.T) {
	st := store.OpenMemory(store.Options{})
	ex := storeexec.New(st)
	defer ex.Close()
	for _, op := range []fsop.Op{
		{Kind: fsop.WriteFile, Path: "f", Data: []byte("data")},
		{Kind: fsop.Symlink, Path: "l", Target: "f"},
		{Kind: fsop.Mknod, Path: "p", Mode: unix.S_IFIFO | 0o644},
		{Kind: fsop.Mknod, Path: "c", Mode: unix.S_IFCHR | 0o600, Rdev: unix.Mkdev(1, 3)},
		{Kind: fsop.Mknod, Path: "s", Mode: unix.S_IFSOCK | 0o600},
		{Kind: fsop.Setxattr, Path: "f", Name: "user.k", Value: []byte("v")},
	} {
		if r, err := ex.Exec(&op); err != nil || r.Errno != "" {
			t.Fatalf("%s %s: %v %s", op.Kind, op.Path, err, r.Errno)
		}
	}
	snap, err := st.SnapshotSubtree(".")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := walk(".", snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"f", "l", "p", "c", "s"} {
		want, err := ex.State(p)
		if err != nil {
			t.Fatal(err)
		}
		got := entryResult(entries[p])
		if eq, _ := compare.Equal(&got, &want, compare.Rules{Mtime: true}); !eq {
			t.Errorf("%s: audit sees %s", p, compare.Diff(want, got, compare.Rules{Mtime: true}))
		}
	}
	if c := entryResult(entries["c"]); c.Stat.Rdev != unix.Mkdev(1, 3) || c.Stat.Mode&syscall.S_IFMT != syscall.S_IFCHR {
		t.Errorf("the device in the audit: %+v", c.Stat)
	}
}
