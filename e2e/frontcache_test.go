package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
	builtin "github.com/lighthouse-fs/lighthouse/workload"
)

// TestFrontCacheSeesAPIChanges: with --front-cache 1h the kernel keeps the
// front's names, missing names, attributes and file pages for an hour, yet
// a change made through the proxy's API is seen in the front at once: the
// proxy drops the names it changed from the kernel's caches before it
// answers the API's client.
func TestFrontCacheSeesAPIChanges(t *testing.T) {
	requireE2E(t)
	timed(t)
	s := startFrontStack(t, testRoot(t), "cache", lighthouseBin, "none", "--front-cache", "1h")
	api := builtin.HTTPExec(s.proxy.url())
	do := func(op fsop.Op) {
		t.Helper()
		res, err := api(context.Background(), &op)
		if err != nil || res.Errno != "" {
			t.Fatalf("%s %s through the API: %v %s", op.Kind, op.Path, err, res.Errno)
		}
	}
	p := func(name string) string { return filepath.Join(s.front, name) }
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(p(name))
		if err != nil {
			return err.Error()
		}
		return string(b)
	}
	missing := func(name string) bool {
		var st unix.Stat_t
		return errors.Is(unix.Lstat(p(name), &st), unix.ENOENT)
	}

	if err := os.Mkdir(p("t"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A missing name, looked up in the front (kept as missing), then made.
	if !missing("t/x") {
		t.Fatal("t/x exists before anything made it")
	}
	do(fsop.Op{Kind: fsop.WriteFile, Path: "t/x", Data: []byte("one")})
	if got := read("t/x"); got != "one" {
		t.Errorf("after the API wrote t/x: the front reads %q, want %q", got, "one")
	}
	// A file read in the front (size and pages kept), rewritten longer.
	do(fsop.Op{Kind: fsop.WriteFile, Path: "t/x", Data: []byte("two, longer")})
	if got := read("t/x"); got != "two, longer" {
		t.Errorf("after the API rewrote t/x: the front reads %q, want %q", got, "two, longer")
	}
	// Through a descriptor open in the front since before the change (no
	// lookup to refresh anything): its size and pages.
	f, err := os.Open(p("t/x"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64)
	if n, err := f.ReadAt(buf, 0); string(buf[:n]) != "two, longer" {
		t.Fatalf("the front reads %q (%v) in t/x through a descriptor", buf[:n], err)
	}
	do(fsop.Op{Kind: fsop.WriteFile, Path: "t/x", Data: []byte("three, longer still")})
	if fi, err := f.Stat(); err != nil || fi.Size() != int64(len("three, longer still")) {
		t.Errorf("after the API rewrote t/x: fstat in the front says %v bytes (%v), want %d", fi.Size(), err, len("three, longer still"))
	}
	if n, err := f.ReadAt(buf, 0); string(buf[:n]) != "three, longer still" {
		t.Errorf("after the API rewrote t/x: the front reads %q (%v) through the descriptor", buf[:n], err)
	}
	// Renamed, then its mode changed.
	do(fsop.Op{Kind: fsop.Rename, Path: "t/x", To: "t/y"})
	if !missing("t/x") {
		t.Error("t/x still shows in the front after the API renamed it to t/y")
	}
	if got := read("t/y"); got != "three, longer still" {
		t.Errorf("after the rename: the front reads %q in t/y", got)
	}
	do(fsop.Op{Kind: fsop.Chmod, Path: "t/y", Mode: 0o600})
	var st unix.Stat_t
	if err := unix.Lstat(p("t/y"), &st); err != nil || st.Mode&0o7777 != 0o600 {
		t.Errorf("after the API's chmod 0600: the front shows mode %04o (%v)", st.Mode&0o7777, err)
	}
	// An extended attribute asked for in the front (missing: remembered
	// as such), then set.
	xbuf := make([]byte, 16)
	if _, err := unix.Getxattr(p("t/y"), "user.k", xbuf); !errors.Is(err, unix.ENODATA) {
		t.Fatalf("getxattr user.k of t/y before anything set it: %v, want ENODATA", err)
	}
	do(fsop.Op{Kind: fsop.Setxattr, Path: "t/y", Name: "user.k", Value: []byte("v")})
	if n, err := unix.Getxattr(p("t/y"), "user.k", xbuf); err != nil {
		t.Errorf("after the API's setxattr: the front's getxattr user.k fails: %v", err)
	} else if string(xbuf[:n]) != "v" {
		t.Errorf("after the API's setxattr: the front's getxattr user.k is %q, want %q", xbuf[:n], "v")
	}
	// A directory made and filled, then emptied.
	if !missing("t/d") {
		t.Fatal("t/d exists before anything made it")
	}
	do(fsop.Op{Kind: fsop.Mkdir, Path: "t/d", Mode: 0o755})
	do(fsop.Op{Kind: fsop.WriteFile, Path: "t/d/f", Data: []byte("f")})
	if names := list(t, p("t/d")); !slices.Equal(names, []string{"f"}) {
		t.Errorf("the front lists %v in t/d, want [f]", names)
	}
	if got := read("t/d/f"); got != "f" {
		t.Errorf("the front reads %q in t/d/f", got)
	}
	do(fsop.Op{Kind: fsop.Unlink, Path: "t/d/f"})
	if !missing("t/d/f") {
		t.Error("t/d/f still shows in the front after the API removed it")
	}
	if names := list(t, p("t")); !slices.Equal(names, []string{"d", "y"}) {
		t.Errorf("the front lists %v in t, want [d y]", names)
	}
}

// list returns the names in dir, sorted.
func list(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
