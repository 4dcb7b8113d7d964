package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/internal/contract"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/report"
	"github.com/lighthouse-fs/lighthouse/verdict"
	"github.com/lighthouse-fs/lighthouse/workload"
)

type workloadFlags struct {
	target, admin string
	ops, clients  int
	seed          uint64
	drain         time.Duration
	minCoverage   float64
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
/admin/status), and print what the proxy counted for these ops: the
migration-test job of docker-compose.dual-fuse.yml. PASS (exit 0) when every
op got an answer, nothing diverged beyond the allowlist and at least
--min-coverage of the ops were compared; FAIL (exit 1) on divergences or ops
without an answer; INCONCLUSIVE (exit 3) when too few ops were compared;
exit 4 when the mirror did not catch up or the proxy behind --admin did not
count the run's ops (is --target that proxy?).

Only the difference of the proxy's counters over the run is judged, so a
proxy that has served other traffic before can be tested. Give the admin
token in LIGHTHOUSE_ADMIN_TOKEN when the proxy has one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRemoteWorkload(cmd.Context(), os.Stdout, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.target, "target", contract.URL(contract.ProxyAddr), "the proxy's client API")
	adminFlag(cmd, &f.admin)
	fl.IntVar(&f.ops, "ops", contract.Ops, "ops in all, the setup of the tree included")
	fl.IntVar(&f.clients, "clients", contract.Clients, "concurrent clients")
	fl.Uint64Var(&f.seed, "seed", contract.Seed, "seed of the op sequence (the same seed sends the same ops)")
	fl.DurationVar(&f.drain, "drain-timeout", 2*time.Minute, "how long to wait for the mirror to catch up after the last op")
	fl.Float64Var(&f.minCoverage, "min-coverage", verdict.DefaultMinCoverage, "the share of the run's ops that must be compared for a PASS; below it the verdict is INCONCLUSIVE")
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
	run := verdict.Counted(d)
	run.SetClients(res, werr)
	run.Drained, run.DrainLimit = drained, f.drain
	run.Uncounted = d.Ops < int64(res.Ops-res.Errors)
	rep := report.Remote{Workload: res, Counted: d, Verdict: verdict.Judge(run, verdict.Rules{MinCoverage: f.minCoverage,
		DivergenceHint: "the proxy's divergence log has each one", DrainHint: "lighthouse status --admin ..."})}
	rep.WriteText(out)
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
