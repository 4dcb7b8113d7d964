package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lighthouse-fs/lighthouse/conformance"
	"github.com/lighthouse-fs/lighthouse/fusemount"
)

// TestCompatOneCase reruns one catalogue entry (a RENAME_NOREPLACE case)
// on both libraries in one command and reads its --json output.
func TestCompatOneCase(t *testing.T) {
	needFUSE(t)
	bin := lighthouseBin(t)
	dir := t.TempDir()
	out, err := exec.Command(bin, "compat", "--dir", dir, "--case", "rename/noreplace-free", "--json").Output()
	if err != nil {
		t.Fatalf("compat --case: %v\n%s", err, out)
	}
	var rep conformance.JSONReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if len(rep.Cases) != 1 || rep.Cases[0].Name != "rename/noreplace-free" {
		t.Fatalf("want just rename/noreplace-free, got %d cases", len(rep.Cases))
	}
	c := rep.Cases[0]
	if c.Verdict["bazil"] != "DIFF (expected)" || c.Verdict["gofuse"] != "same" || c.Expected["bazil"] == "" {
		t.Errorf("verdicts %v, expected %v", c.Verdict, c.Expected)
	}
	if len(c.Steps) != 3 || c.Steps[1].Text["bazil"] != "EINVAL" || c.Steps[1].Text["gofuse"] != "ok" || !c.Steps[1].Differs || c.Steps[0].Differs {
		t.Errorf("steps: %+v", c.Steps)
	}
	for _, b := range []string{"bazil", "gofuse"} {
		if _, mounted := fusemount.Find(filepath.Join(dir, "mnt", b)); mounted {
			t.Errorf("%s mount left behind", b)
		}
	}
}
