package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lighthouse-fs/lighthouse/internal/testbin"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// bin is the command, built on first use: `up` starts its bridges from
// its own executable, so it cannot run inside a test binary.
var built testbin.Lazy

func TestMain(m *testing.M) {
	code := m.Run()
	built.Remove()
	os.Exit(code)
}

func lighthouseBin(t *testing.T) string { return built.Get(t) }

// TestExitStatus runs the built binary: a usage error exits 2 whatever
// catches it (cobra, or a command's own check of its flags), a harness
// that cannot reach what it needs exits 4, and --help lists the table.
func TestExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := lighthouseBin(t)
	missing := filepath.Join(t.TempDir(), "missing.jsonl")
	for _, tc := range []struct {
		name string
		args []string
		want int
		says string
	}{
		{"unknown flag", []string{"up", "--no-such-flag"}, verdict.ExitUsage, "unknown flag: --no-such-flag"},
		{"bad flag value", []string{"workload", "--ops", "many"}, verdict.ExitUsage, `invalid argument "many"`},
		{"missing argument", []string{"replay"}, verdict.ExitUsage, "accepts 1 arg(s), received 0"},
		{"unknown command", []string{"nosuchcommand"}, verdict.ExitUsage, `unknown command "nosuchcommand"`},
		{"bad value found by the command", []string{"replay", "--pace", "slow", missing}, verdict.ExitUsage, `--pace "slow"`},
		{"bad mirror share", []string{"up", "--workload", "--mirror-share", "2"}, verdict.ExitUsage, `--mirror-share "2": want auto, or a fraction`},
		{"missing required flag", []string{"report"}, verdict.ExitUsage, "--html FILE is required"},
		{"unreadable input", []string{"replay", missing}, verdict.ExitUsage, "no such file"},
		{"proxy not reachable", []string{"status", "--admin", "http://127.0.0.1:1"}, verdict.ExitInfra, "connection refused"},
		{"bridge not healthy", []string{"validate", "--url", "http://127.0.0.1:1"}, verdict.ExitFail, "connection refused"},
		{"help", []string{"--help"}, verdict.ExitPass, "Exit status:\n  0  pass"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(bin, tc.args...).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.want || !strings.Contains(string(out), tc.says) {
				t.Errorf("lighthouse %s: exit %d, want %d and %q in:\n%s", strings.Join(tc.args, " "), code, tc.want, tc.says, out)
			}
		})
	}
	help, _ := exec.Command(bin, "--help").Output()
	for code := verdict.ExitPass; code <= verdict.ExitInfra; code++ {
		if !strings.Contains(string(help), fmt.Sprintf("\n  %d  ", code)) {
			t.Errorf("--help lacks exit status %d", code)
		}
	}
}
