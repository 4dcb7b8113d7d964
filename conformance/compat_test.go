package conformance_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/lighthouse-fs/lighthouse/conformance"
	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/supervise/supervisetest"
	"github.com/lighthouse-fs/lighthouse/internal/testbin"
)

// TestCompatOneCase reruns one catalogue entry (a RENAME_NOREPLACE case)
// on both libraries, each mounted by a `lighthouse mount` child, and reads
// the JSON report: bazil differs as expected, and no mount is left.
func TestCompatOneCase(t *testing.T) {
	supervisetest.RequireFUSE(t)
	bin, remove, err := testbin.BuildTemp()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remove)
	cases, err := conformance.Select(conformance.Cases(), []string{"rename/noreplace-free"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out bytes.Buffer
	if err := conformance.Compat(conformance.CompatOptions{Dir: dir, Exe: bin, Cases: cases, Steps: true, JSON: true, Out: &out}); err != nil {
		t.Fatalf("Compat: %v\n%s", err, out.String())
	}
	var rep conformance.JSONReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("the JSON report does not parse: %v\n%s", err, out.String())
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
