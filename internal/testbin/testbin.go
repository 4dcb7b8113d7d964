// Package testbin builds the lighthouse command for tests that run it as a
// child process (bridges, the proxy, `up`): a test binary cannot stand in
// for it, since those processes re-execute their own executable.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Package is the command's import path.
const Package = "github.com/lighthouse-fs/lighthouse/cmd/lighthouse"

// EnvRace, set to 1, builds it with the race detector, so that the child
// processes are checked too.
const EnvRace = "LIGHTHOUSE_TEST_RACE"

// Build builds the lighthouse command into dir and returns its path. The
// go command is the one on PATH, else /usr/local/go/bin/go.
func Build(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		if goBin, err = exec.LookPath("/usr/local/go/bin/go"); err != nil {
			return "", fmt.Errorf("no go command to build lighthouse with: %w", err)
		}
	}
	bin := filepath.Join(dir, "lighthouse")
	args := []string{"build", "-o", bin}
	if os.Getenv(EnvRace) == "1" {
		args = append(args, "-race")
	}
	if out, err := exec.Command(goBin, append(args, Package)...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", Package, err, out)
	}
	return bin, nil
}

// BuildTemp builds the command into a new temporary directory, for a
// TestMain: remove deletes the directory (call it after m.Run).
func BuildTemp() (bin string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "lighthouse-test-bin-")
	if err != nil {
		return "", nil, err
	}
	remove = func() { os.RemoveAll(dir) }
	if bin, err = Build(dir); err != nil {
		remove()
		return "", nil, err
	}
	return bin, remove, nil
}

// Lazy builds the command once, on the first Get, for the tests of one
// package (those that do not need it do not pay for the build). Call
// Remove from TestMain after m.Run.
type Lazy struct {
	once   sync.Once
	bin    string
	remove func()
	err    error
}

// Get returns the built command, failing t if it could not be built.
func (l *Lazy) Get(t testing.TB) string {
	t.Helper()
	l.once.Do(func() { l.bin, l.remove, l.err = BuildTemp() })
	if l.err != nil {
		t.Fatal(l.err)
	}
	return l.bin
}

// Remove deletes the built command, if any.
func (l *Lazy) Remove() {
	if l.remove != nil {
		l.remove()
	}
}
