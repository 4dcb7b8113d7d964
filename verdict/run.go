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
// with no result, and the first error, or werr, the workload's own.
func (r *Run) SetClients(res workload.Result, werr error) {
	r.ClientOps, r.ClientErrors, r.ClientError = res.Ops, res.Errors, res.FirstError
	if werr != nil {
		r.ClientError = werr.Error()
	}
}
