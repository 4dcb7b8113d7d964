package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/rollout"
)

// WriteStatus renders a proxy's rollout and mirror state as a table
// (`lighthouse status`, `promote`, `rollback`); px may be nil.
func WriteStatus(w io.Writer, st rollout.Status, px *proxy.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	s := st.State
	fmt.Fprintf(tw, "phase\t%s\n", s.Phase)
	fmt.Fprintf(tw, "candidate weight\t%.0f%%\n", 100*s.Weight)
	fmt.Fprintf(tw, "rolled back\t%v\n", s.RolledBack)
	tw.Flush() // the window table aligns on its own
	writeWindows(w, st)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(st.Latency) == 0 {
		fmt.Fprintf(tw, "latency vs primary\tno verdict\t(each side must serve %d ops of a kind)\n", st.Thresholds.LatencyMinSample)
	}
	for _, v := range st.Latency {
		fmt.Fprintf(tw, "latency vs primary, %s\t%.2fx (%v / %v), z %.1f\t(trigger at %gx and z %g; %d / %d served ops)\n",
			v.Op, v.Ratio, v.Candidate, v.Primary, v.Z, st.Thresholds.LatencyRatio, st.Thresholds.LatencyZ, v.NCand, v.NPrim)
	}
	if d := s.Decision; d != nil {
		fmt.Fprintf(tw, "last decision\t%s %s\t%s -> %.0f%%: %s\n", d.Time.Format(time.RFC3339), d.Action, d.Trigger, 100*d.To, d.Reason)
	}
	if px != nil {
		writeProxyStatus(tw, px)
	}
	tw.Flush()
}

// writeWindows renders the rollout's window rates now and, when there
// was a decision, the window it was made on beside them: after a
// rollback the windows start afresh, and what the candidate did before
// it is what the operator needs to see.
func writeWindows(w io.Writer, st rollout.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	th, now, d := st.Thresholds, st.Rates, st.State.Decision
	row := func(key string, cell func(r rollout.Rates, cusum float64) string, i int, threshold string) {
		fmt.Fprintf(tw, "%s\t%s", key, cell(now, st.CUSUM[i]))
		if d != nil {
			fmt.Fprintf(tw, "\t%s", cell(d.Rates, d.Statistics[i]))
		}
		fmt.Fprintf(tw, "\t%s\n", threshold)
	}
	fmt.Fprintf(tw, "window\tnow")
	if d != nil {
		fmt.Fprintf(tw, "\tbefore the %s at %s", d.Action, d.Time.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "\ttrigger\n")
	row("divergence", func(r rollout.Rates, s float64) string {
		return fmt.Sprintf("%.3f%% of %d compared, cusum %.1f", 100*r.Divergence, r.Compared, s)
	}, 0, fmt.Sprintf("%.2f%%", 100*th.Divergence))
	row("candidate errors", func(r rollout.Rates, s float64) string {
		return fmt.Sprintf("%.3f%% of %d ops, cusum %.1f", 100*r.ErrorRate, r.CandidateOp, s)
	}, 1, fmt.Sprintf("%.2f%%", 100*th.ErrorRate))
	row(fmt.Sprintf("candidate ops over %v", th.P99), func(r rollout.Rates, s float64) string {
		return fmt.Sprintf("%.3f%%, cusum %.1f", 100*r.SlowRate, s)
	}, 2, "1%")
	row("coverage (window)", func(r rollout.Rates, _ float64) string {
		return fmt.Sprintf("%.1f%% of %d ops compared", 100*r.Coverage, r.Observed)
	}, 0, fmt.Sprintf("advance at %.0f%% or more", 100*th.MinCoverage))
}

// writeProxyStatus is the mirror's part of the status: coverage and its
// breakdown, each bridge, and each subtree out of step with what will
// bring it back.
func writeProxyStatus(tw io.Writer, px *proxy.Status) {
	fmt.Fprintf(tw, "ops / compared / divergent\t%d / %d / %d\n", px.Ops, px.Compared, px.Divergent)
	cov := fmt.Sprintf("%.1f%% of ops compared", 100*px.Coverage)
	if px.Skipped[proxy.SkipSampled] > 0 || (px.MirrorShare > 0 && px.MirrorShare < 1) {
		cov = fmt.Sprintf("%.1f%% of the ops in the mirror share compared", 100*px.Coverage)
	}
	if len(px.Skipped) > 0 {
		reasons := make([]string, 0, len(px.Skipped))
		for r := range px.Skipped {
			reasons = append(reasons, r)
		}
		slices.Sort(reasons)
		var parts []string
		for _, r := range reasons {
			if n := px.Skipped[r]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", r, n))
			}
		}
		if len(parts) > 0 {
			cov += " (not compared: " + strings.Join(parts, ", ") + ")"
		}
	}
	if px.Pending > 0 {
		cov += fmt.Sprintf(", %d pending", px.Pending)
	}
	fmt.Fprintf(tw, "coverage\t%s\n", cov)
	if px.MirrorShare > 0 && (px.MirrorShare < 1 || px.MirrorShareAuto) {
		how := "pinned by --mirror-share"
		if px.MirrorShareAuto {
			how = "adapts to what the mirror keeps up with (--mirror-share auto)"
		}
		fmt.Fprintf(tw, "mirror share\t%.1f%% of the tree, %s\n", 100*px.MirrorShare, how)
	}
	for _, b := range px.Bridges {
		state := "in step"
		switch {
		case b.Record:
			state = "store of record"
		case b.Stale:
			state = "OUT OF STEP: " + b.StaleReason
		case len(b.OutOfStep) > 0:
			state = fmt.Sprintf("%d subtree(s) out of step", len(b.OutOfStep))
		}
		fmt.Fprintf(tw, "bridge %s (%s)\t%s\tqueue %d, lag %.2fs\n", b.Backend, b.Role, state, b.QueueDepth, b.LagSeconds)
		for _, sc := range b.OutOfStep {
			why := sc.Reason
			if sc.Held != "" {
				why = "HELD: " + sc.Held
			} else if sc.LastError != "" {
				why += fmt.Sprintf(" (%d attempts, last: %s)", sc.Attempts, sc.LastError)
			}
			where := sc.Subtree
			if sc.Names > 0 {
				where = fmt.Sprintf("%s (%d names)", sc.Subtree, sc.Names)
			}
			fmt.Fprintf(tw, "  %s\t%s since %s\tfix: %s\n", where, why, sc.Since.Format(time.RFC3339), sc.Fix)
		}
	}
}

// RolloutRows are a proxy's rollout state as the HTML report's status
// rows.
func RolloutRows(s rollout.Status) []KV {
	rows := []KV{
		{Key: "phase", Value: s.State.Phase},
		{Key: "candidate weight", Value: fmt.Sprintf("%.0f%%", 100*s.State.Weight)},
		{Key: "rolled back", Value: fmt.Sprint(s.State.RolledBack)},
		{Key: "divergence (window)", Value: fmt.Sprintf("%.3f%% of %d compared (threshold %.2f%%)", 100*s.Rates.Divergence, s.Rates.Compared, 100*s.Thresholds.Divergence)},
		{Key: "candidate errors (window)", Value: fmt.Sprintf("%.3f%% of %d ops (threshold %.2f%%)", 100*s.Rates.ErrorRate, s.Rates.CandidateOp, 100*s.Thresholds.ErrorRate)},
	}
	if v := s.Rates.Latency; v != nil {
		rows = append(rows, KV{Key: "latency vs primary (slowest op)", Value: fmt.Sprintf("%s %.2fx, z %.1f (trigger at %gx and z %g)",
			v.Op, v.Ratio, v.Z, s.Thresholds.LatencyRatio, s.Thresholds.LatencyZ)})
	}
	if d := s.State.Decision; d != nil {
		trig := d.Trigger
		if trig != "" {
			trig = " (" + trig + ")"
		}
		rows = append(rows, KV{Key: "last decision", Value: fmt.Sprintf("%s %s%s: weight %.0f%% -> %.0f%%: %s",
			d.Time.UTC().Format(time.RFC3339), d.Action, trig, 100*d.From, 100*d.To, d.Reason)})
		r := d.Rates
		rows = append(rows, KV{Key: "window before the " + d.Action, Value: fmt.Sprintf("divergence %.3f%% of %d compared, candidate errors %.3f%% of %d ops, coverage %.1f%% of %d ops",
			100*r.Divergence, r.Compared, 100*r.ErrorRate, r.CandidateOp, 100*r.Coverage, r.Observed)})
	}
	return rows
}

// SchemaStatus names `lighthouse status --json`'s object (docs/json.md).
const SchemaStatus = "lighthouse.status/v1"

// StatusJSON is `lighthouse status --json`: the admin API's status with
// its schema.
type StatusJSON struct {
	Schema    string         `json:"schema"`
	Rollout   rollout.Status `json:"rollout"`
	Proxy     *proxy.Status  `json:"proxy"`
	AdminAuth string         `json:"admin_auth"` // "token", or "none": the admin API is open
}
