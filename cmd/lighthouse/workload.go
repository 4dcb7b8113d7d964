package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/workload"
)

type workloadFlags struct {
	target, admin string
	ops, clients  int
	seed          uint64
	drain         time.Duration
}

// workloadCmd runs the built-in workload against a proxy that is already
// running elsewhere: the migration-test container of
// docker-compose.dual-fuse.yml, or a CI job against a staging proxy.
func workloadCmd() *cobra.Command {
	var f workloadFlags
	cmd := &cobra.Command{
		Use:   "workload --target URL --admin URL [--ops N] [--clients N] [--seed N]",
		Short: "Run the built-in workload through a running proxy and fail on divergence",
		Long: `Send the built-in workload (people editing a source tree) to a running
proxy's client API, wait until its mirror has caught up (the admin API's
/admin/status), and print what the proxy counted for these ops. Exit status
0 when every op got an answer and nothing diverged beyond the allowlist, 1
otherwise: the migration-test job of docker-compose.dual-fuse.yml.

Only the difference of the proxy's counters over the run is judged, so a
proxy that has served other traffic before can be tested. Give the admin
token in LIGHTHOUSE_ADMIN_TOKEN when the proxy has one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRemoteWorkload(cmd.Context(), os.Stdout, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.target, "target", "http://127.0.0.1:8764", "the proxy's client API")
	adminFlag(cmd, &f.admin)
	fl.IntVar(&f.ops, "ops", workload.DefaultOps, "ops in all, the setup of the tree included")
	fl.IntVar(&f.clients, "clients", workload.DefaultClients, "concurrent clients")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the op sequence (the same seed sends the same ops)")
	fl.DurationVar(&f.drain, "drain-timeout", 2*time.Minute, "how long to wait for the mirror to catch up after the last op")
	return cmd
}

func runRemoteWorkload(ctx context.Context, out io.Writer, f *workloadFlags) error {
	status := func(ctx context.Context) (proxy.Status, error) {
		var st adminStatus
		if err := (adminClient{f.admin}).do(ctx, http.MethodGet, "/admin/status", nil, &st); err != nil {
			return proxy.Status{}, err
		}
		if st.Proxy == nil {
			return proxy.Status{}, fmt.Errorf("%s/admin/status has no mirror state: is it a lighthouse proxy?", f.admin)
		}
		return *st.Proxy, nil
	}
	before, err := status(ctx)
	if err != nil {
		return err
	}
	res, werr := sendWorkload(ctx, f.target, workload.Config{Clients: f.clients, Ops: f.ops, Seed: f.seed})
	if res.Ops == 0 {
		return werr
	}
	drained := waitDrained(ctx, status, f.drain)
	after, err := status(ctx)
	if err != nil {
		return err
	}
	d := remoteDelta(before, after)
	rep := remoteReport{res: res, werr: werr, d: d, drained: drained, drain: f.drain}
	rep.write(out)
	if pass, line := rep.verdict(); !pass {
		return errors.New(line)
	}
	return nil
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

type remoteReport struct {
	res     workload.Result
	werr    error
	d       proxy.Status
	drained bool
	drain   time.Duration
}

func (r *remoteReport) verdict() (bool, string) {
	d := r.d
	diverged := d.Divergent + d.ByClass[compare.ClassShadowError]
	switch {
	case diverged > 0:
		return false, fmt.Sprintf("FAIL: %d divergences (the proxy's divergence log has each one)", diverged)
	case r.res.Errors > 0 || r.werr != nil:
		why := r.res.FirstError
		if r.werr != nil {
			why = r.werr.Error()
		}
		return false, fmt.Sprintf("FAIL: %d ops got no result from the proxy (%s)", r.res.Errors, why)
	case d.Ops < int64(r.res.Ops-r.res.Errors):
		return false, fmt.Sprintf("FAIL: %d ops were answered but the proxy behind --admin counted %d: is --target that proxy?", r.res.Ops-r.res.Errors, d.Ops)
	case !r.drained:
		return false, fmt.Sprintf("FAIL: the mirror did not catch up within %v (lighthouse status --admin ...)", r.drain)
	case d.Ops > 0 && d.Compared*2 < d.Ops:
		return false, fmt.Sprintf("FAIL: only %d of %d ops were compared (skipped: %s)", d.Compared, d.Ops, counts(d.Skipped))
	}
	return true, "PASS: no divergence beyond the allowlist"
}

func (r *remoteReport) write(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	res, d := &r.res, &r.d
	fmt.Fprintf(w, "ops sent\t%d in %.1fs (%.0f ops/s), %d without a result\n", res.Ops, res.Elapsed.Seconds(),
		float64(res.Ops)/max(res.Elapsed.Seconds(), 1e-9), res.Errors)
	fmt.Fprintf(w, "client latency\tp50 %v  p95 %v  p99 %v\n", res.All.P50, res.All.P95, res.All.P99)
	fmt.Fprintf(w, "proxy ops / compared / read back\t%d / %d / %d\n", d.Ops, d.Compared, d.Readbacks)
	fmt.Fprintf(w, "divergences by class\t%s\n", counts(d.ByClass))
	fmt.Fprintf(w, "skipped\t%s\n", counts(d.Skipped))
	fmt.Fprintf(w, "resyncs\t%d\n", d.Resyncs)
	for _, b := range d.Bridges {
		fmt.Fprintf(w, "%s (%s)\tqueue %d, stale %v\n", b.Role, b.Backend, b.QueueDepth, b.Stale)
	}
	_, line := r.verdict()
	fmt.Fprintf(w, "\n%s\n", line)
	w.Flush()
}
