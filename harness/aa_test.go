package harness_test

import (
	"bytes"
	"os/exec"
	"regexp"
	"testing"

	"github.com/lighthouse-fs/lighthouse/internal/supervise/supervisetest"
)

// TestUpAA runs a small A/A run (go-fuse on both sides) as `make run`
// does, on free ports: the report ends with the noise floor, nothing
// diverges beyond directory order, and the rules the run does not justify
// are flagged.
func TestUpAA(t *testing.T) {
	supervisetest.RequireFUSE(t)
	if testing.Short() {
		t.Skip("builds the binary and mounts three file systems")
	}
	bin := lighthouseBin(t)
	report, stderr, err := runUp(t, bin, "--dir", t.TempDir(), "--workload", "--ops", "2000", "--clients", "4", "--front=false", "--aa", "gofuse")
	if err != nil {
		t.Fatalf("lighthouse up --aa: %v\n%s", err, stderr)
	}
	for _, want := range []string{`primary bridge +gofuse`, `shadow bridge +gofuse`, `(?m)^VERDICT: PASS`,
		`A/A NOISE FLOOR \(gofuse vs gofuse, \d+ ops recorded, \d+ compared\)`,
		`divergences beyond directory order +0`, `ignores inode numbers +[1-9]\d* of`,
		`rename/errno on bazil +0 +FLAGGED`} {
		if !regexp.MustCompile(want).MatchString(report) {
			t.Errorf("report does not match %q", want)
		}
	}
	bad := exec.Command(bin, "up", "--aa", "ext4")
	if out, err := bad.CombinedOutput(); err == nil || !bytes.Contains(out, []byte("want bazil or gofuse")) {
		t.Errorf("--aa ext4: %v %s", err, out)
	}
}
