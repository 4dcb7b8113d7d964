package sysexec

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

func TestMain(m *testing.M) {
	// sysexec applies no umask of its own; tests want modes verbatim.
	syscall.Umask(0)
	os.Exit(m.Run())
}

// newRoot makes a fresh root directory and an executor on it.
func newRoot(tb testing.TB, lim Limits) (*Executor, string) {
	tb.Helper()
	root := filepath.Join(tb.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		tb.Fatal(err)
	}
	e, err := New(root, lim)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close() })
	return e, root
}

// do validates op (as the harness does) and runs it; a refusal is fatal.
func do(tb testing.TB, e *Executor, op fsop.Op) fsop.Result {
	tb.Helper()
	if err := op.Validate(); err != nil {
		tb.Fatalf("%s: validate: %v", op.Kind, err)
	}
	r, err := e.Exec(&op)
	if err != nil {
		tb.Fatalf("%s %q: unexpected refusal: %v", op.Kind, op.Path, err)
	}
	return r
}

// must runs op and fails unless it succeeds.
func must(tb testing.TB, e *Executor, op fsop.Op) fsop.Result {
	tb.Helper()
	r := do(tb, e, op)
	if r.Errno != "" {
		tb.Fatalf("%s %q: errno %s", op.Kind, op.Path, r.Errno)
	}
	return r
}

func writeFile(t testing.TB, root, rel, data string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t testing.TB, root, rel string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, rel), 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, root, target, rel string) {
	t.Helper()
	if err := os.Symlink(target, filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lstat(t testing.TB, root, rel string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, rel), &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func exists(root, rel string) bool {
	_, err := os.Lstat(filepath.Join(root, rel))
	return err == nil
}

func wantContent(t testing.TB, root, rel, want string) {
	t.Helper()
	if got := readFile(t, root, rel); got != want {
		t.Errorf("%s = %q, want %q", rel, got, want)
	}
}

func wantData(t testing.TB, got []byte, want string) {
	t.Helper()
	if !bytes.Equal(got, []byte(want)) {
		t.Errorf("data = %q, want %q", got, want)
	}
}

// requireUserXattr skips the test when the temp filesystem has no user
// xattrs.
func requireUserXattr(t *testing.T) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(p, "user.probe", []byte("x"), 0); err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			t.Skip("no user xattrs on the temp filesystem")
		}
		t.Fatal(err)
	}
}

// fdCount is the number of open fds of this process.
func fdCount(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
