package conformance_test

import (
	"encoding/json"
	"testing"

	"github.com/lighthouse-fs/lighthouse/conformance"
	"github.com/lighthouse-fs/lighthouse/fsop"
)

// A divergence line becomes a case that runs from an empty directory, and
// the line --emit prints is one traffic-cases.jsonl accepts.
func TestFromDivergence(t *testing.T) {
	raw := []byte(`{"seq":41,"class":"errno","op":{"op":"rename","path":"w/x/a","to":"w/b","flags":1},` +
		`"recent":[{"op":"mkdir","path":"w/x","mode":493},{"op":"write_file","path":"w/x/a","data":"eA=="}]}`)
	tc, err := conformance.FromDivergence(raw, "noreplace-live")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, op := range tc.Ops {
		kinds = append(kinds, string(op.Kind)+" "+op.Path)
	}
	want := []string{"mkdir w", "mkdir w/x", "write_file w/x/a", "rename w/x/a"}
	if tc.Name != "traffic/noreplace-live" || len(kinds) != len(want) {
		t.Fatalf("case %s: ops %v, want %v", tc.Name, kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("ops %v, want %v", kinds, want)
		}
	}
	line, err := json.Marshal(tc)
	if err != nil {
		t.Fatal(err)
	}
	back, err := conformance.ParseTrafficCases(append([]byte("# header\n"), line...))
	if err != nil || len(back) != 1 || back[0].Ops[3].Flags != fsop.RenameNoReplace {
		t.Fatalf("the emitted line does not read back: %v %+v", err, back)
	}
	if _, err := conformance.FromDivergence([]byte(`{"seq":1,"op":{"op":"stat","path":"a"}}`), "x"); err == nil {
		t.Error("a record line (no class) was taken for a divergence")
	}
	if _, err := conformance.ParseTrafficCases([]byte(`{"name":"rename/x","ops":[{"op":"stat","path":"a"}]}`)); err == nil {
		t.Error("a traffic case outside traffic/ was accepted")
	}
	// The shipped file parses (Cases panics otherwise).
	_ = conformance.Cases()
}
