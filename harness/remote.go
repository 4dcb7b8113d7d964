package harness

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/proxyserver"
	"github.com/lighthouse-fs/lighthouse/report"
	"github.com/lighthouse-fs/lighthouse/verdict"
	"github.com/lighthouse-fs/lighthouse/workload"
)

// RemoteOptions configure a workload against a proxy running elsewhere:
// `lighthouse workload`'s flags.
type RemoteOptions struct {
	Target, Admin string // the proxy's client API and admin URLs
	Ops, Clients  int
	Seed          uint64
	Drain         time.Duration // how long the mirror may take to catch up
	MinCoverage   float64
	JSON          bool      // print the verdict as JSON (verdict.RunJSON) instead of the text report
	Out, Err      io.Writer // the report; progress and notes (os.Stdout, os.Stderr when nil)
}

// Remote sends the workload to a running proxy, waits until its mirror has
// caught up, and judges only what the proxy counted during the run, so a
// proxy that served other traffic before can be tested. Its error is the
// verdict's.
func Remote(ctx context.Context, f RemoteOptions) error {
	if f.Out == nil {
		f.Out = os.Stdout
	}
	if f.Err == nil {
		f.Err = os.Stderr
	}
	status := proxyserver.AdminClient{URL: f.Admin}.Status
	before, err := status(ctx)
	if err != nil {
		return err
	}
	res, werr := sendWorkload(ctx, f.Err, f.Target, workload.Config{Clients: f.Clients, Ops: f.Ops, Seed: f.Seed})
	if res.Ops == 0 {
		return werr
	}
	drained := waitDrained(ctx, status, f.Drain)
	after, err := status(ctx)
	if err != nil {
		return err
	}
	d := remoteDelta(before, after)
	run := verdict.Counted(d)
	run.SetClients(res, werr)
	run.Drained, run.DrainLimit = drained, f.Drain
	run.Uncounted = d.Ops < int64(res.Ops-res.Errors)
	rules := verdict.Rules{MinCoverage: f.MinCoverage,
		DivergenceHint: "the proxy's divergence log has each one", DrainHint: "lighthouse status --admin ..."}
	rep := report.Remote{Workload: res, Counted: d, Verdict: verdict.Judge(run, rules)}
	if f.JSON {
		if err := verdict.WriteJSON(f.Out, runJSON("workload", run, rep.Verdict, rules, res, d.ByClass)); err != nil {
			return err
		}
		return rep.Verdict.Err()
	}
	rep.WriteText(f.Out)
	return rep.Verdict.Err()
}

// remoteDelta is what the proxy counted between two of its statuses.
func remoteDelta(before, after proxy.Status) proxy.Status {
	sub := func(a, b map[string]int64) map[string]int64 {
		m := map[string]int64{}
		for k, v := range a {
			if n := v - b[k]; n != 0 {
				m[k] = n
			}
		}
		return m
	}
	return proxy.Status{
		Ops: after.Ops - before.Ops, Compared: after.Compared - before.Compared,
		Divergent: after.Divergent - before.Divergent, Resyncs: after.Resyncs - before.Resyncs,
		Readbacks: after.Readbacks - before.Readbacks,
		ByClass:   sub(after.ByClass, before.ByClass), Skipped: sub(after.Skipped, before.Skipped),
		Bridges: after.Bridges,
	}
}
