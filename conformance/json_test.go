package conformance_test

import (
	"encoding/json"
	"testing"

	"github.com/lighthouse-fs/lighthouse/conformance"
)

// TestJSONSchema runs two cases (one wire-op case, one syscall case) on
// two plain directories and the store, and reads the JSON back the way a
// script would: every step of every case, with each target's result.
func TestJSONSchema(t *testing.T) {
	cases, err := conformance.Select(conformance.Cases(), []string{"rename/noreplace-existing", "node/mkfifo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conformance.Select(conformance.Cases(), []string{"no/such-case"}); err == nil {
		t.Error("Select accepted an unknown case name")
	}
	ts := []conformance.Target{conformance.DirTarget(conformance.Reference, t.TempDir()),
		conformance.DirTarget("other", t.TempDir()), conformance.StoreTarget("store")}
	rep, err := conformance.Run(cases, ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rep.JSON(conformance.Expectations{})
	if err != nil {
		t.Fatal(err)
	}
	var got conformance.JSONReport
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, b)
	}
	if got.Schema != conformance.JSONSchema || len(got.Cases) != 2 || len(got.Unexpected) != 0 {
		t.Fatalf("schema %q, %d cases, unexpected %v; want %s, 2, none", got.Schema, len(got.Cases), got.Unexpected, conformance.JSONSchema)
	}
	ops, sys := got.Cases[0], got.Cases[1]
	if ops.Reproduce != "lighthouse compat --case rename/noreplace-existing" || ops.Family != "rename" {
		t.Errorf("case 0: reproduce %q family %q", ops.Reproduce, ops.Family)
	}
	if len(ops.Steps) != 3 || ops.Steps[2].Op == nil || ops.Steps[2].Result["store"].Errno != "EEXIST" || ops.Steps[2].Text["other"] != "EEXIST" {
		t.Errorf("case 0 steps: %+v", ops.Steps)
	}
	if ops.Verdict["other"] != "same" || ops.Verdict["store"] != "same" || ops.Verdict[conformance.Reference] != "ref" {
		t.Errorf("case 0 verdicts: %v", ops.Verdict)
	}
	if sys.Verdict["store"] != "n/a" || sys.Steps[1].Op != nil || sys.Steps[1].Text["other"] != "type=fifo mode=0644" {
		t.Errorf("case 1: verdicts %v, steps %+v", sys.Verdict, sys.Steps)
	}
	if _, ran := sys.Steps[0].Result["store"]; ran {
		t.Error("a syscall step has a result on the store, where it does not apply")
	}
}
