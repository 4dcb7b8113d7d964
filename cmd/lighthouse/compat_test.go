package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lighthouse-fs/lighthouse/conformance"
	"github.com/lighthouse-fs/lighthouse/internal/supervise/supervisetest"
)

// TestCompatFromDivergence turns a recorded divergence line into a case:
// run at once on both libraries, or emitted as a traffic-cases.jsonl line.
func TestCompatFromDivergence(t *testing.T) {
	supervisetest.RequireFUSE(t)
	bin := lighthouseBin(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "divergences.jsonl")
	line := `{"seq":41,"class":"errno","op":{"op":"rename","path":"w/a","to":"w/b","flags":1},"recent":[{"op":"write_file","path":"w/a","data":"eA=="}]}`
	if err := os.WriteFile(log, []byte("\n"+line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "compat", "--divergence", log+":2", "--name", "noreplace-live", "--emit").Output()
	if err != nil {
		t.Fatalf("--emit: %v", err)
	}
	if _, err := conformance.ParseTrafficCases(out); err != nil || !strings.Contains(string(out), `"traffic/noreplace-live"`) {
		t.Fatalf("--emit printed %s (%v)", out, err)
	}
	cmd := exec.Command(bin, "compat", "--dir", filepath.Join(dir, "c"), "--divergence", log, "--json")
	out, err = cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("a divergence no entry explains should exit 1, got %v", err)
	}
	var rep conformance.JSONReport
	if err := json.Unmarshal(out, &rep); err != nil || len(rep.Cases) != 1 {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	c := rep.Cases[0]
	if c.Verdict["bazil"] != "DIFF" || c.Verdict["gofuse"] != "same" || len(c.Steps) != 3 || c.Steps[2].Text["bazil"] != "EINVAL" {
		t.Errorf("case %s: verdicts %v, steps %+v", c.Name, c.Verdict, c.Steps)
	}
}
