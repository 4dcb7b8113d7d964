package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/harness"
	"github.com/lighthouse-fs/lighthouse/internal/contract"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// workloadCmd runs the built-in workload against a proxy that is already
// running elsewhere: the migration-test container of
// docker-compose.dual-fuse.yml, or a CI job against a staging proxy.
func workloadCmd() *cobra.Command {
	var f harness.RemoteOptions
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
			return harness.Remote(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Target, "target", contract.URL(contract.ProxyAddr), "the proxy's client API")
	adminFlag(cmd, &f.Admin)
	fl.IntVar(&f.Ops, "ops", contract.Ops, "ops in all, the setup of the tree included")
	fl.IntVar(&f.Clients, "clients", contract.Clients, "concurrent clients")
	fl.Uint64Var(&f.Seed, "seed", contract.Seed, "seed of the op sequence (the same seed sends the same ops)")
	fl.DurationVar(&f.Drain, "drain-timeout", 2*time.Minute, "how long to wait for the mirror to catch up after the last op")
	fl.BoolVar(&f.JSON, "json", false, "print the verdict as JSON (schema lighthouse.workload/v1, docs/json.md) instead of the report")
	fl.Float64Var(&f.MinCoverage, "min-coverage", verdict.DefaultMinCoverage, "the share of the run's ops that must be compared for a PASS; below it the verdict is INCONCLUSIVE")
	return cmd
}
