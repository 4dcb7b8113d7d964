package verdict

import (
	"encoding/json"
	"io"
)

// SchemaRun names the --json object of `up --workload` and `workload`
// (docs/json.md).
const SchemaRun = "lighthouse.workload/v1"

// RunJSON is the verdict of a workload run for scripts: what the proxy
// counted, what the clients and the oracle saw, and the outcome with its
// exit status.
type RunJSON struct {
	Schema      string  `json:"schema"`
	Command     string  `json:"command"` // "up --workload" or "workload"
	Outcome     Outcome `json:"outcome"`
	ExitStatus  int     `json:"exit_status"`
	Line        string  `json:"line"`
	Ops         int64   `json:"ops"`
	Compared    int64   `json:"compared"`
	Coverage    float64 `json:"coverage"`
	MinCoverage float64 `json:"min_coverage"`
	// Skipped are the ops not compared, by reason; Divergent the
	// divergences beyond the allowlist; DivergencesByClass every one the
	// proxy counted (allowlisted ones under "allowed").
	Skipped            map[string]int64 `json:"skipped_by_reason"`
	Divergent          int64            `json:"divergent"`
	DivergencesByClass map[string]int64 `json:"divergences_by_class"`
	Clients            ClientsJSON      `json:"clients"`
	Oracle             OracleJSON       `json:"oracle"`
	Drained            bool             `json:"drained"`
	Degraded           []string         `json:"degraded,omitempty"`
	ElapsedSeconds     float64          `json:"elapsed_seconds"`
}

// ClientsJSON is what the workload's clients saw.
type ClientsJSON struct {
	OpsSent    int            `json:"ops_sent"`
	NoResult   int            `json:"no_result"`
	FirstError string         `json:"first_error,omitempty"`
	Errnos     map[string]int `json:"errnos"`
}

// OracleJSON is the workload's check of its reads against what it wrote.
type OracleJSON struct {
	Verified   int            `json:"verified"`
	Mismatches map[string]int `json:"mismatches_by_class"`
	ServedBy   string         `json:"served_by,omitempty"` // "" when the proxy's counters do not say
	Examples   []string       `json:"examples,omitempty"`
}

// JSON is r judged as v under rules, for --json. The caller fills in what
// a Run does not hold (divergences by class, the clients' errnos, the
// oracle's count and examples, the elapsed time).
func (r Run) JSON(command string, v Verdict, rules Rules) RunJSON {
	nz := func(m map[string]int64) map[string]int64 {
		if m == nil {
			return map[string]int64{}
		}
		return m
	}
	mm := r.Mismatches
	if mm == nil {
		mm = map[string]int{}
	}
	return RunJSON{Schema: SchemaRun, Command: command, Outcome: v.Outcome, ExitStatus: v.ExitCode, Line: v.Line,
		Ops: r.Ops, Compared: r.Compared, Coverage: r.Coverage(), MinCoverage: rules.MinCoverage,
		Skipped: nz(r.Skipped), Divergent: r.Divergent, DivergencesByClass: map[string]int64{},
		Clients: ClientsJSON{OpsSent: r.ClientOps, NoResult: r.ClientErrors, FirstError: r.ClientError, Errnos: map[string]int{}},
		Oracle:  OracleJSON{Mismatches: mm, ServedBy: r.MismatchSide},
		Drained: r.Drained, Degraded: r.Degraded}
}

// WriteJSON writes v as indented JSON and a newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
