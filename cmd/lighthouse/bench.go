package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/bench"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

func benchCmd() *cobra.Command {
	var (
		cfg       bench.Config
		jsonOut   string
		markdown  string
		compareTo string
		th        bench.Thresholds
		confirm   int
		progress  bool
	)
	cmd := &cobra.Command{
		Use:   "bench [--targets T,...] [--json FILE] [--compare baseline.json]",
		Short: "Measure every layer of the harness (local dir, store, both mounts, both bridges, the proxy) in one run",
		Long: `Run the same filesystem ops on every target in one run and print, per
concurrency, p50/p95/p99 latency, ops/s and MiB/s, then the ratios that
matter for the migration (go-fuse/bazil per op, proxy/direct per op,
mount/tmpdir and bridge/mount per op). Mounts and bridges are served by
child processes (` + "`lighthouse mount`, `lighthouse bridge`" + `) on memory
stores, all stopped and unmounted at the end, also on Ctrl-C.

Targets: ` + strings.Join(bench.AllTargets, ", ") + `.
Ops: ` + strings.Join(bench.AllOps, ", ") + `.

The machines are noisy: compare ratios, never absolute times. With
--compare, the run's ratios are checked against a baseline written by
--json, and the command exits 1 if one worsened by more than --threshold,
or the geometric mean of a family's ratios (one definition, every op) by
more than --family-threshold, in the run and again when re-measured
(--confirm).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd.Context(), &cfg, benchOutput{jsonOut, markdown, compareTo, th, confirm, progress})
		},
	}
	registerBenchFlags(cmd, &cfg)
	fl := cmd.Flags()
	fl.StringVar(&jsonOut, "json", "", "write the report as JSON to this file")
	fl.StringVar(&markdown, "markdown", "", "also write the tables as Markdown to this file (docs/performance.md)")
	fl.StringVar(&compareTo, "compare", "", "check the ratios against this baseline (a --json report); exit 1 on a regression")
	fl.Float64Var(&th.Ratio, "threshold", 0.5, "with --compare: the relative worsening of a ratio that fails (0.5: 50%)")
	fl.Float64Var(&th.Family, "family-threshold", 0.3, "with --compare: the relative worsening of a family's geometric mean (one ratio definition over every op) that fails")
	fl.IntVar(&confirm, "confirm", 1, "with --compare: re-measure the worsened ratios up to this many times; a ratio fails only if worse in every run")
	fl.BoolVar(&progress, "progress", true, "show a progress bar on stderr")
	return cmd
}

// registerBenchFlags binds what to measure and how to cfg.
func registerBenchFlags(cmd *cobra.Command, cfg *bench.Config) {
	fl := cmd.Flags()
	fl.StringSliceVar(&cfg.Targets, "targets", nil, "targets to measure (default all)")
	fl.StringSliceVar(&cfg.Ops, "ops", nil, "op types to run (default all)")
	fl.IntVar(&cfg.Iterations, "iterations", 1000, "measured iterations per op type, target and concurrency")
	fl.IntVar(&cfg.Warmup, "warmup", 100, "unmeasured warm-up iterations before them")
	fl.IntSliceVar(&cfg.Concurrency, "concurrency", []int{1, 4, 16}, "numbers of concurrent clients")
	fl.IntVar(&cfg.Rounds, "rounds", 10, "slices the iterations are measured in, interleaved across targets")
	fl.Int64Var(&cfg.SeqSize, "seq-size", 64<<20, "bytes of the large sequential write and read")
	fl.Int64Var(&cfg.SeqBlock, "seq-block", 1<<20, "bytes per sequential write and read")
	fl.BoolVar(&cfg.Cached, "cached", false, "mount with the page cache on (default: direct I/O, every read and write reaches the library)")
	fl.Float64Var(&cfg.ReadbackRate, "readback-rate", proxy.DefaultReadbackRate, "proxy-mirror's read-back rate, as `lighthouse proxy --readback-rate` (0 disables)")
	fl.DurationVar(&cfg.Lag, "lag", 0, "also run the lagging-shadow scenario this long (proxy memory while the shadow falls behind), e.g. 30s")
	fl.DurationVar(&cfg.LagDelay, "lag-delay", 5*time.Millisecond, "what the lagging shadow sleeps per op, one op at a time")
	fl.IntVar(&cfg.LagClients, "lag-clients", 16, "clients writing through the proxy during the lagging-shadow scenario")
	fl.IntSliceVar(&cfg.CPUs, "cpus", nil, "pin this process and its children to these CPUs (the regression check uses one: fewer cross-CPU wake-ups, less spread)")
	fl.StringVar(&cfg.Dir, "dir", "", "working directory (default: a temporary one, removed afterwards)")
	fl.StringVar(&cfg.ProfileDir, "profile", "", "write cpu.pprof and heap.pprof of this process here")
}

// benchOutput is where `lighthouse bench` writes and what it checks.
type benchOutput struct {
	json, markdown, compareTo string
	th                        bench.Thresholds
	confirm                   int
	progress                  bool
}

// runBench runs the suite, writes the report and compares it.
func runBench(ctx context.Context, cfg *bench.Config, o benchOutput) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Exe = exe
	if cfg.ReadbackRate <= 0 {
		cfg.ReadbackRate = -1 // bench.Config: negative is none, 0 the default
	}
	cfg.Log = os.Stderr
	if o.progress {
		cfg.Progress = os.Stderr
	}
	var base *bench.Report
	if o.compareTo != "" { // fail before a long run, not after it
		if base, err = bench.LoadReport(o.compareTo); err != nil {
			return err
		}
	}
	rep, err := bench.Run(ctx, *cfg)
	if err != nil {
		if errors.Is(err, ctx.Err()) {
			return errors.New("interrupted: everything started was stopped")
		}
		return err
	}
	rep.WriteText(os.Stdout)
	if o.json != "" {
		if err := rep.WriteJSON(o.json); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", o.json)
	}
	if o.markdown != "" {
		var b strings.Builder
		rep.Markdown(&b, rep.Settings.Concurrency)
		if err := os.WriteFile(o.markdown, []byte(b.String()), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", o.markdown)
	}
	if base == nil {
		return nil
	}
	err = bench.CheckBaseline(ctx, *cfg, base, rep, bench.CheckOptions{Thresholds: o.th, Confirm: o.confirm, Out: os.Stdout})
	if errors.Is(err, bench.ErrRegression) {
		return verdict.Failed(err)
	}
	return err
}
