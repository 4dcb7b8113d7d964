package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/internal/testbin"
)

// lighthouseBin is the binary TestMain built; skipReason, if set, is why
// every test skips.
var (
	lighthouseBin string
	moduleRoot    string
	skipReason    string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		skipReason = fmt.Sprintf("no /dev/fuse (%v): the end-to-end tests mount real FUSE filesystems; run them as root on Linux with the fuse3 package (deploy/install-deps.sh)", err)
		return m.Run()
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		fmt.Fprintf(os.Stderr, "e2e: cannot find the module root (go env GOMOD: %q, %v)\n", gomod, err)
		return 1
	}
	moduleRoot = filepath.Dir(gomod)
	start := time.Now()
	bin, remove, err := testbin.BuildTemp()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer remove()
	lighthouseBin = bin
	fmt.Printf("e2e: built %s in %v\n", lighthouseBin, time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// requireE2E skips the test when the machine cannot run it.
func requireE2E(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// timed logs how long the test took.
func timed(t *testing.T) {
	start := time.Now()
	t.Cleanup(func() { t.Logf("%s took %v", t.Name(), time.Since(start).Round(time.Millisecond)) })
}
