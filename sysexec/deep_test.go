package sysexec

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// readDeep reads rel under root the way a program that walks down does:
// one openat per component, so no syscall sees more than a name.
func readDeep(t *testing.T, root, rel string) string {
	t.Helper()
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(rel, "/")
	for _, name := range parts[:len(parts)-1] {
		next, err := unix.Openat(fd, name, unix.O_PATH|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatalf("openat %q: %v", name, err)
		}
		fd = next
	}
	defer unix.Close(fd)
	f, err := unix.Openat(fd, parts[len(parts)-1], unix.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("openat %q: %v", parts[len(parts)-1], err)
	}
	defer unix.Close(f)
	buf := make([]byte, 64)
	n, err := unix.Read(f, buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

// TestDeepPath: an op's path may be longer than PATH_MAX (the front sends
// one for a file a program reached with *at calls). Every kind of op works
// on it, at and around the lengths where it is cut into pieces, and the
// file it names is the one a walk from the root reaches.
func TestDeepPath(t *testing.T) {
	e, root := newRoot(t, Limits{})
	dir := strings.TrimSuffix(strings.Repeat(strings.Repeat("d", 99)+"/", 40), "/") // 3,999 bytes
	for i := 100; i <= len(dir)+1; i += 100 {
		must(t, e, fsop.Op{Kind: fsop.Mkdir, Path: dir[:i-1], Mode: 0o755})
	}
	// 4,000 + n bytes: one short of a piece, a piece, one past it, and far
	// past it (a second piece).
	for _, n := range []int{95, 96, 97, 200} {
		p := dir + "/" + strings.Repeat("f", n)
		must(t, e, fsop.Op{Kind: fsop.WriteFile, Path: p, Data: []byte(p[len(p)-3:])})
		if got := readDeep(t, root, p); got != "fff" {
			t.Errorf("%d-byte path: file holds %q, want fff", len(p), got)
		}
	}
	deeper := dir + "/" + dir // 7,999 bytes: three pieces
	for i := len(dir) + 101; i <= len(deeper)+1; i += 100 {
		must(t, e, fsop.Op{Kind: fsop.Mkdir, Path: deeper[:i-1], Mode: 0o755})
	}
	p := deeper + "/f"
	must(t, e, fsop.Op{Kind: fsop.WriteFile, Path: p, Data: []byte("deep")})
	if got := readDeep(t, root, p); got != "deep" {
		t.Fatalf("8 KiB path: file holds %q", got)
	}
	must(t, e, fsop.Op{Kind: fsop.Chmod, Path: p, Mode: 0o600})
	if st := must(t, e, fsop.Op{Kind: fsop.Stat, Path: p}); st.Stat == nil || st.Stat.Mode&0o777 != 0o600 || st.Stat.Size != 4 {
		t.Errorf("stat after chmod: %+v", st.Stat)
	}
	must(t, e, fsop.Op{Kind: fsop.Rename, Path: p, To: "top"})
	if got := readDeep(t, root, "top"); got != "deep" {
		t.Errorf("renamed to the root: holds %q", got)
	}
	must(t, e, fsop.Op{Kind: fsop.Symlink, Target: "../g", Path: deeper + "/l"})
	must(t, e, fsop.Op{Kind: fsop.WriteFile, Path: deeper + "/l", Data: []byte("via link")})
	if got := readDeep(t, root, deeper[:len(deeper)-100]+"/g"); got != "via link" {
		t.Errorf("write through a symlink in the last piece: %q", got)
	}
	var names []string
	for _, d := range must(t, e, fsop.Op{Kind: fsop.Readdir, Path: deeper}).Entries {
		names = append(names, d.Name)
	}
	if slices.Sort(names); !slices.Equal(names, []string{".", "..", "l"}) {
		t.Errorf("readdir of the deepest directory: %q", names)
	}
	must(t, e, fsop.Op{Kind: fsop.Unlink, Path: deeper + "/l"})
	must(t, e, fsop.Op{Kind: fsop.Rmdir, Path: deeper})
	if r := do(t, e, fsop.Op{Kind: fsop.Stat, Path: deeper}); r.Errno != "ENOENT" {
		t.Errorf("stat of the removed directory: %q, want ENOENT", r.Errno)
	}
	// A missing or non-directory component in an early piece answers as
	// one walk would.
	if r := do(t, e, fsop.Op{Kind: fsop.Stat, Path: "nope/" + deeper}); r.Errno != "ENOENT" {
		t.Errorf("missing first component: %q, want ENOENT", r.Errno)
	}
	if r := do(t, e, fsop.Op{Kind: fsop.Stat, Path: "top/" + deeper}); r.Errno != "ENOTDIR" {
		t.Errorf("file as first component: %q, want ENOTDIR", r.Errno)
	}
}

// TestDeepPathStaysBeneath: cutting a long path into pieces keeps every
// lookup beneath the root. A symlink in a later piece that climbs out of
// the root is refused; so is one that climbs only above its piece's
// directory (the documented cost of the pieces).
func TestDeepPathStaysBeneath(t *testing.T) {
	e, root := newRoot(t, Limits{})
	dir := strings.TrimSuffix(strings.Repeat(strings.Repeat("d", 99)+"/", 45), "/") // 4,499 bytes: two pieces
	for i := 100; i <= len(dir)+1; i += 100 {
		must(t, e, fsop.Op{Kind: fsop.Mkdir, Path: dir[:i-1], Mode: 0o755})
	}
	out := strings.Repeat("../", 60) + "etc"
	must(t, e, fsop.Op{Kind: fsop.Symlink, Target: out, Path: dir + "/out"})
	must(t, e, fsop.Op{Kind: fsop.Symlink, Target: "../../../../../../../../..", Path: dir + "/up"})
	for _, p := range []string{dir + "/out/passwd", dir + "/up/f"} {
		_, err := e.Exec(&fsop.Op{Kind: fsop.WriteFile, Path: p, Data: []byte("x")})
		if !errors.Is(err, fsop.ErrPathEscapes) {
			t.Errorf("write via %s: %v, want a refusal (escape)", p[len(dir)+1:], err)
		}
	}
	if _, err := os.Stat(root + "/f"); !os.IsNotExist(err) {
		t.Errorf("a file appeared at the root: %v", err)
	}
}
