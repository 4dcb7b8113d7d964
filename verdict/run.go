package verdict

import (
	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/workload"
)

// Counted is a Run with the proxy's counters from its status: every op,
// those compared, those skipped by reason, and the divergences beyond the
// allowlist, a mirror-only error (class shadow_error) counted as one.
func Counted(st proxy.Status) Run {
	return Run{Ops: st.Ops, Compared: st.Compared, Skipped: st.Skipped,
		Divergent: st.Divergent + st.ByClass[compare.ClassShadowError]}
}

// SetClients fills in what the workload's clients saw: the ops sent, those
// with no result, the first error, or werr, the workload's own, and the
// reads the workload's oracle found wrong.
func (r *Run) SetClients(res workload.Result, werr error) {
	r.ClientOps, r.ClientErrors, r.ClientError = res.Ops, res.Errors, res.FirstError
	r.Mismatches = res.Mismatches
	if werr != nil {
		r.ClientError = werr.Error()
	}
}

// ServingSide is the bridge that served every op of a run, from the
// proxy's served-by counters: "" when both served some (the proxy's
// answers do not say which served a given op).
func ServingSide(servedBy map[string]int64) string {
	side := ""
	for name, n := range servedBy {
		if n == 0 {
			continue
		}
		if side != "" {
			return ""
		}
		side = name
	}
	return side
}
