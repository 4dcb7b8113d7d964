package progress

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPlainLog: not a terminal, a line at each tenth and no carriage
// return.
func TestPlainLog(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, 1000, "workload", "ops")
	for i := int64(1); i <= 1000; i++ {
		b.Set(i)
	}
	b.Finish()
	b.Set(1000)
	out := buf.String()
	if n := strings.Count(out, "\n"); n != 10 || strings.Contains(out, "\r") || !strings.HasSuffix(out, "workload: 1000/1000 ops\n") {
		t.Errorf("%d lines, want 10 plain ones:\n%q", n, out)
	}
	var nilBar *Bar
	nilBar.Set(3) // a nil bar shows nothing and does not panic
	if New(nil, 10, "x", "y") != nil {
		t.Error("New(nil) made a bar")
	}
}

// openPTY returns both ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

func TestTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if Terminal(w) || Terminal(&bytes.Buffer{}) {
		t.Error("a pipe or a buffer taken for a terminal")
	}
	_, slave := openPTY(t)
	if !Terminal(slave) {
		t.Error("a pseudo-terminal not taken for a terminal")
	}
	if b := New(slave, 10, "replay", "ops"); b.bar == nil {
		t.Error("no bar drawn on a terminal")
	}
}
