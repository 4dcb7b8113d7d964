package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/harness"
	"github.com/lighthouse-fs/lighthouse/internal/contract"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// The addresses default to the contract ports; other ones let two
// harnesses (or a test beside a real one) run on one machine.
func upCmd() *cobra.Command {
	var f harness.Options
	cmd := &cobra.Command{
		Use:   "up [--dir .lighthouse] [--workload [--ops N] [--clients N] [--seed N]] [--front] [--keep] [--html FILE]",
		Short: "Run the whole harness on this machine: both bridges, the proxy, the front mount; optionally the built-in workload and its report",
		Long: `Start a primary bridge (bazil.org/fuse, :8765) and a shadow bridge (go-fuse,
:8766) as child processes, and the front proxy in this process (API :8764,
metrics and admin :9765, front FUSE mount DIR/front). Every op sent to the
proxy is served by the primary, mirrored to the shadow in the same conflict
order, and compared.

Without --workload, print where everything is and serve until Ctrl-C.

With --workload, run the built-in workload (people editing a source tree:
clients of the proxy's JSON API over keep-alive HTTP), wait until the mirror
has caught up, print the report and stop. The verdict: PASS (exit 0) when no
divergence beyond the allowlist was found, every op was answered and at
least --min-coverage of the ops were compared; FAIL (exit 1) on divergences
or ops without an answer; INCONCLUSIVE (exit 3) when too few ops were
compared; exit 4 when the harness failed (a bridge did not start or runs
without its FUSE library, a port is taken, the mirror never caught up).

The ports are the contract ones unless --listen, --admin, --primary-listen
and --shadow-listen say otherwise (two harnesses on one machine); a port
already taken is named, with the process that holds it when /proc says,
before anything is started or removed (exit 4).

--inject-divergence RATE makes the shadow bridge corrupt that fraction of
its read results: a FAIL verdict to look at, or, with --phase canary, the
rollback demo (make run-rollback: up --workload --phase canary
--advance-after 1500 --inject-divergence 0.02 --inject-after 12s).

--html FILE writes one self-contained HTML page when the run ends, finished,
interrupted (Ctrl-C, SIGTERM) or failed: the verdict, the counts and
coverage, the divergences by class with their lines in divergences.jsonl,
and charts of the run's own time span (ops, coverage, divergence ratio and
classes, each bridge's latency, the candidate's weight), recorded in this
process while it runs: no Prometheus needed. A run that fails before the
proxy starts gets a page with only what failed.

Each run starts from fresh stores and logs unless --keep. Stale mounts left
under DIR by a crashed run are cleaned first; at the end no mount is left.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			f.Exe = exe
			return harness.Run(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Dir, "dir", contract.Dir, "working directory: stores, mount points, logs, record and divergence log")
	fl.BoolVar(&f.Workload, "workload", false, "run the built-in workload, print the report and exit (0: PASS, 1: FAIL, 3: INCONCLUSIVE)")
	fl.BoolVar(&f.JSON, "json", false, "with --workload: print the verdict as JSON (schema lighthouse.workload/v1, docs/json.md) instead of the report")
	fl.StringVar(&f.HTML, "html", "", "write the run's HTML page (verdict, counts, divergences, charts) to FILE when it ends or is interrupted")
	fl.Float64Var(&f.MinCoverage, "min-coverage", verdict.DefaultMinCoverage, "workload: the share of ops that must be compared for a PASS; below it the verdict is INCONCLUSIVE")
	fl.IntVar(&f.Ops, "ops", contract.Ops, "workload: ops in all, the setup of the tree included")
	fl.IntVar(&f.Clients, "clients", contract.Clients, "workload: concurrent clients")
	fl.Uint64Var(&f.Seed, "seed", contract.Seed, "workload: seed of the op sequence (the same seed sends the same ops)")
	fl.BoolVar(&f.Front, "front", true, "serve the front FUSE mount on DIR/front")
	fl.DurationVar(&f.FrontCache, "front-cache", 0, "let the kernel keep the front mount's names, attributes and missing names this long, and file pages across opens (the proxy's --front-cache): faster programs, fewer of their requests compared")
	fl.BoolVar(&f.Keep, "keep", false, "keep the stores and logs of the previous run instead of starting fresh")
	fl.StringVar(&f.ProxyListen, "listen", contract.ProxyAddr, "the proxy's client API address")
	fl.StringVar(&f.Admin, "admin", contract.AdminAddr, "the proxy's metrics and admin address")
	fl.StringVar(&f.PrimaryListen, "primary-listen", contract.PrimaryAddr, "the primary bridge's address")
	fl.StringVar(&f.ShadowListen, "shadow-listen", contract.ShadowAddr, "the shadow bridge's address")
	fl.Float64Var(&f.Inject, "inject-divergence", 0, "make the shadow bridge corrupt this fraction of read results: see a FAIL verdict, or a rollback with --phase canary (make run-rollback)")
	fl.DurationVar(&f.InjectAfter, "inject-after", 0, "start the injection this long after the shadow bridge starts")
	fl.StringVar(&f.AA, "aa", "", "A/A run: both bridges run this library (bazil or gofuse), no allowlist applies, and the report ends with the noise floor and the rules it does not justify")
	fl.StringVar(&f.Phase, "phase", "shadow", "rollout phase to start in: shadow, canary, progressive, full")
	fl.IntVar(&f.AdvanceAfter, "advance-after", 0, "advance one rollout step after this many quiet candidate ops (0: never)")
	fl.StringVar(&f.MirrorShare, "mirror-share", "auto", "the share of the tree the proxy mirrors and compares: auto (all of it while the shadow keeps up, less when it cannot), or a fraction in (0, 1] such as 0.25; ops outside it are skipped as sampled_out")
	fl.DurationVar(&f.OpTimeout, "op-timeout", 30*time.Second, "the proxy's bound on one op on a bridge: a hung primary fails a client's op after this long")
	// Tests and the rollback demo (make run-rollback) only.
	_ = fl.MarkHidden("inject-after")
	return cmd
}
