// Package supervisetest starts a supervised child process for a test: it
// is stopped in t.Cleanup, and a child that did not stop cleanly or left a
// mount fails the test, with its log.
package supervisetest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/internal/supervise"
)

// Child says how to start one child and how long to wait for it.
type Child struct {
	supervise.Config
	// Ready is a text the child's log shows once it is ready ("" for no
	// wait); ReadyTimeout (default 30 s) bounds the wait.
	Ready        string
	ReadyTimeout time.Duration
	// StopTimeout (default 20 s) is the grace after SIGTERM at cleanup.
	StopTimeout time.Duration
}

// Start starts c and waits for its Ready line, whose key=value fields it
// returns. The child is stopped in t.Cleanup: an unsuccessful exit, a kill
// after the grace period or a mount left is an error of the test, and the
// end of its log is shown when the test failed.
func Start(t testing.TB, c Child) (*supervise.Proc, map[string]string) {
	t.Helper()
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 30 * time.Second
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 20 * time.Second
	}
	p, err := supervise.Start(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(c.StopTimeout); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("log of %s (%s):\n%s", p.Name(), p.Log(), Tail(p, 30))
		}
	})
	if c.Ready == "" {
		return p, nil
	}
	f, err := p.WaitLine(context.Background(), c.Ready, c.ReadyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return p, f
}

// Tail is the last n lines of p's log, indented for a test's output.
func Tail(p *supervise.Proc, n int) string {
	return "  " + strings.ReplaceAll(p.Tail(n), "\n", "\n  ")
}

// RequireFUSE skips a test that mounts FUSE file systems where it cannot:
// it needs root and /dev/fuse.
func RequireFUSE(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts FUSE file systems")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("needs /dev/fuse")
	}
}
