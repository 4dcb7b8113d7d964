package conformance

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// JSONSchema names the shape of `lighthouse compat --json` output; it
// changes when a field changes meaning or goes away.
const JSONSchema = "lighthouse.compat/v1"

// JSONReport is `lighthouse compat --json` output (documented in
// docs/compatibility-json.md).
type JSONReport struct {
	Schema     string     `json:"schema"`
	Targets    []string   `json:"targets"`
	Cases      []JSONCase `json:"cases"`
	Unexpected []string   `json:"unexpected"` // "case on target", not explained
}

// JSONCase is one case: every step with every target's result.
type JSONCase struct {
	Name      string `json:"name"`
	Family    string `json:"family"`
	Reproduce string `json:"reproduce"`
	// Verdict per target: "ref", "same", "DIFF", "DIFF (expected)" or "n/a".
	Verdict  map[string]string `json:"verdict"`
	Expected map[string]string `json:"expected,omitempty"` // target -> reason
	Steps    []JSONStep        `json:"steps"`
}

// JSONStep is one op or syscall of a case.
type JSONStep struct {
	Index int    `json:"index"`
	Call  string `json:"call"`
	// Op is the wire op (absent for a syscall step).
	Op *fsop.Op `json:"op,omitempty"`
	// Text is each target's result as the report prints it; Result the
	// result itself (absent where the case does not apply).
	Text    map[string]string      `json:"text"`
	Result  map[string]fsop.Result `json:"result"`
	Differs bool                   `json:"differs"` // any two targets differ (not in order alone)
}

// JSON renders the report for scripts.
func (r *Report) JSON(ex Expectations) ([]byte, error) {
	out := JSONReport{Schema: JSONSchema, Targets: r.Targets, Cases: []JSONCase{}, Unexpected: r.Unexpected(ex)}
	if out.Unexpected == nil {
		out.Unexpected = []string{}
	}
	for _, o := range r.Outcomes {
		jc := JSONCase{Name: o.Case.Name, Family: o.Case.Family(), Reproduce: "lighthouse compat --case " + o.Case.Name,
			Verdict: map[string]string{}, Expected: ex[o.Case.Name], Steps: []JSONStep{}}
		for _, t := range r.Targets {
			jc.Verdict[t] = r.mark(o, t, ex)
		}
		for i := 0; i < o.Case.Len(); i++ {
			st := JSONStep{Index: i, Call: o.Case.Call(i), Text: map[string]string{}, Result: map[string]fsop.Result{}}
			if i < len(o.Case.Ops) {
				op := o.Case.Ops[i]
				st.Op = &op
			}
			for _, t := range r.Targets {
				if res := o.Results[t]; i < len(res) {
					st.Text[t] = stepResult(o, t, i)
					st.Result[t] = res[i]
				}
			}
			for a := 0; a < len(r.Targets) && !st.Differs; a++ {
				for b := a + 1; b < len(r.Targets) && !st.Differs; b++ {
					st.Differs = r.opDiffers(o, i, r.Targets[a], r.Targets[b])
				}
			}
			jc.Steps = append(jc.Steps, st)
		}
		out.Cases = append(out.Cases, jc)
	}
	return json.MarshalIndent(out, "", "  ")
}

// Select returns the cases named (a name ending in "/" selects a family).
func Select(cases []Case, names []string) ([]Case, error) {
	if len(names) == 0 {
		return cases, nil
	}
	var out []Case
	for _, n := range names {
		found := false
		for _, c := range cases {
			if c.Name == n || (strings.HasSuffix(n, "/") && strings.HasPrefix(c.Name, n)) {
				out = append(out, c)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("no conformance case %q (see docs/compatibility.md for the names)", n)
		}
	}
	return out, nil
}
