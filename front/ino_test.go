package front_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/fusemount"
)

// withSameIno makes an lstat of path p report q's inode number, for
// spec "p=q" (envSameIno).
func withSameIno(run execFunc, spec string) execFunc {
	p, q, ok := strings.Cut(spec, "=")
	if !ok {
		return run
	}
	return func(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
		res, err := run(ctx, op)
		if op.Kind == fsop.Lstat && op.Path == p && err == nil && res.Stat != nil {
			other, oerr := run(ctx, &fsop.Op{Kind: fsop.Lstat, Path: q})
			if oerr == nil && other.Stat != nil {
				res.Stat.Ino = other.Stat.Ino
			}
		}
		return res, err
	}
}

// TestDirectoryWithAnAncestorsNumber: a directory whose bridge reports an
// ancestor's inode number (after a resync renumbered the serving bridge's
// copy, in canary) gets a number of its own instead of the ancestor's
// node, which the kernel would refuse as a directory inside itself
// (ELOOP); it works as any directory.
func TestDirectoryWithAnAncestorsNumber(t *testing.T) {
	m := startFront(t, fusemount.Options{}, false, envSameIno+"=a/b/c=a")
	root := m.dir
	if err := os.MkdirAll(filepath.Join(root, "a/b/c"), 0o755); err != nil {
		t.Fatalf("mkdir -p a/b/c: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "a/b/c/f"), []byte("inside"), 0o644); err != nil {
		t.Fatalf("write a/b/c/f: %v", err)
	}
	var a, c unix.Stat_t
	must(t, "lstat a", unix.Lstat(filepath.Join(root, "a"), &a))
	must(t, "lstat a/b/c", unix.Lstat(filepath.Join(root, "a/b/c"), &c))
	if a.Ino == c.Ino {
		t.Errorf("a/b/c shows a's inode number %d", a.Ino)
	}
	for i := 0; i < 3; i++ { // looked up again (no entry caching): the same number
		var again unix.Stat_t
		must(t, "lstat a/b/c", unix.Lstat(filepath.Join(root, "a/b/c"), &again))
		if again.Ino != c.Ino {
			t.Fatalf("a/b/c's inode number changed from %d to %d on a new lookup", c.Ino, again.Ino)
		}
	}
	if c.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("a/b/c: mode %o, want a directory", c.Mode)
	}
	b, err := os.ReadFile(filepath.Join(root, "a/b/c/f"))
	if err != nil || string(b) != "inside" {
		t.Errorf("read a/b/c/f: %q, %v", b, err)
	}
	ents, err := os.ReadDir(filepath.Join(root, "a/b/c"))
	if err != nil || len(ents) != 1 || ents[0].Name() != "f" {
		t.Errorf("readdir a/b/c: %v, %v", ents, err)
	}
	must(t, "rm -r a", os.RemoveAll(filepath.Join(root, "a")))
}
