package main

import (
	"errors"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lighthouse-fs/lighthouse/proxyserver"
)

// registerProxyFlags binds `lighthouse proxy`'s flags to f, with the
// contract's defaults.
func registerProxyFlags(cmd *cobra.Command, f *proxyserver.Config) {
	d := proxyserver.DefaultConfig()
	fl := cmd.Flags()
	fl.StringVar(&f.Listen, "listen", d.Listen, "client API address (the bridges' own protocol)")
	fl.StringVar(&f.Admin, "admin", d.Admin, "metrics and admin address")
	fl.StringVar(&f.PrimaryURL, "primary", d.PrimaryURL, "primary bridge (bazil)")
	fl.StringVar(&f.ShadowURL, "shadow", d.ShadowURL, "shadow bridge (go-fuse)")
	fl.StringVar(&f.Mount, "mount", "", "also serve a front FUSE mount here: programs run in it generate the traffic")
	registerAllowOther(fl, &f.FrontOwnerOnly, allowOtherUsage+" (the front mount)")
	fl.DurationVar(&f.FrontCache, "front-cache", 0, "let the kernel keep the front mount's names, attributes and missing names this long, and file pages across opens: programs in it run faster, and what the kernel answers from its caches is neither sent to the bridges nor compared. Changes made through the API are dropped from the caches before they are answered. 0: nothing kept, every request is an op")
	fl.StringVar(&f.Record, "record", "", "write every op and both results to this file (JSON lines) for `lighthouse replay`")
	fl.StringVar(&f.DivergenceLog, "divergence-log", "", "write each divergence (JSON lines) to this file (default: the log)")
	fl.StringVar(&f.Allowlist, "allowlist", "", "known differences (YAML); default: the built-in compare/allowlist.yaml")
	fl.Float64Var(&f.ReadbackRate, "readback-rate", d.ReadbackRate, "fraction of mutations whose state (lstat, and content up to 1 MiB) is read back on both bridges (0 disables; 1 checks every mutation at several times the cost of a write)")
	fl.IntVar(&f.MirrorMaxOps, "mirror-max-ops", d.MirrorMaxOps, "mirrored ops the shadow may lag behind before it is marked stale and resynced")
	fl.DurationVar(&f.MirrorMaxLag, "mirror-max-lag", d.MirrorMaxLag, "age of the oldest unmirrored op before the shadow is marked stale")
	fl.StringVar(&f.MirrorShare, "mirror-share", d.MirrorShare, "share of the tree mirrored to the bridge that is not the store of record and compared: auto (all of it while that bridge keeps up, less when it cannot) or a fraction in (0, 1]; the rest is served by the store of record alone and counted as sampled_out. A unit of the tree (--mirror-share-depth) is in it when its name's hash is below the share")
	fl.IntVar(&f.MirrorShareDepth, "mirror-share-depth", d.MirrorShareDepth, "how many leading path components make a unit of the mirror share, mirrored whole or not at all (2: work/pkg in a tree under one project directory; 1: the mount's own entries)")
	fl.StringVar(&f.Phase, "phase", "", "rollout phase at start when no state file says otherwise: shadow, canary, progressive, full")
	fl.Float64Var(&f.Weight, "weight", d.Weight, "candidate (shadow bridge) serving weight at start, 0..1 (overrides --phase)")
	fl.StringVar(&f.RolloutConfig, "rollout-config", "", "rollout config file (phase, weight, thresholds, window); SIGHUP reloads it")
	fl.StringVar(&f.StateFile, "state-file", "", "where rollout decisions are persisted, so a restart keeps a rollback")
	fl.BoolVar(&f.AA, "aa", false, "A/A run: both bridges must run the same FUSE library, and no allowlist applies, so every chance difference counts (the noise floor; see `lighthouse up --aa`)")
	fl.IntVar(&f.AdvanceAfter, "advance-after", 0, "advance one rollout step after this many quiet candidate ops (0: only by an operator)")
	fl.DurationVar(&f.OpTimeout, "op-timeout", 30*time.Second, "how long one op may take on a bridge before the client gets an error (a hung primary)")
	fl.DurationVar(&f.ServeFallback, "serve-fallback", 5*time.Second, "how long an op the candidate serves may go unanswered before the client gets the store of record's answer and the candidate stops serving until a resync (negative: never)")
}

func proxyCmd() *cobra.Command {
	var f proxyserver.Config
	cmd := &cobra.Command{
		Use:   "proxy [--listen ADDR] [--primary URL] [--shadow URL] [--admin ADDR] [--mount DIR]",
		Short: "Serve every op from the primary bridge, mirror it to the shadow, and compare the results",
		Long: `The front proxy: its API is the bridges' own (docs/protocol.md). Each op is
served by the primary bridge and mirrored to the shadow in the same conflict
order; the results are compared into lighthouse_fuse_backend_divergence_total
on the admin port's /metrics. With --mount, a front FUSE mount turns the
requests of ordinary programs into ops.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg := proxyserver.NewRegistry()
			rp, err := proxyserver.Start(cmd.Context(), &f, reg)
			if err != nil {
				return err
			}
			err = rp.Serve(cmd.Context(), reg, f.Listen, f.Admin)
			return errors.Join(err, rp.Close())
		},
	}
	registerProxyFlags(cmd, &f)
	return cmd
}

// registerAllowOther binds --allow-other (default true) to ownerOnly, its
// negation.
func registerAllowOther(fl *pflag.FlagSet, ownerOnly *bool, usage string) {
	fl.Var(negatedBool{ownerOnly}, "allow-other", usage)
	fl.Lookup("allow-other").NoOptDefVal = "true"
}

// negatedBool is a bool flag stored as its negation, so a Config field
// whose zero value is the default can back a flag that defaults to true.
type negatedBool struct{ v *bool }

func (b negatedBool) String() string {
	if b.v == nil {
		return "true"
	}
	return strconv.FormatBool(!*b.v)
}

func (b negatedBool) Set(s string) error {
	on, err := strconv.ParseBool(s)
	*b.v = !on
	return err
}

func (negatedBool) Type() string { return "bool" }
