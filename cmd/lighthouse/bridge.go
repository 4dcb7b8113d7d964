package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/lighthouse-fs/lighthouse/bridge"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/internal/contract"
	"github.com/lighthouse-fs/lighthouse/internal/httpguard"
	"github.com/lighthouse-fs/lighthouse/store"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// bridgeFlags configure a bridge from flags, falling back to the contract
// environment variables.
type bridgeFlags struct {
	mountFlags
	listen   string
	mount    string
	fallback string
	role     string
	timeout  time.Duration
	maxBody  int64
	budget   int64
	maxConns int
	inject   float64
	injectAt time.Duration
	nice     int
}

func (f *bridgeFlags) register(cmd *cobra.Command) {
	f.mountFlags.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", contract.PrimaryAddr, "HTTP API address")
	fl.StringVar(&f.mount, "mount", "", "mount point (required unless degraded on purpose)")
	fl.StringVar(&f.fallback, "fallback", "", "second-choice FUSE library (default $"+bridge.EnvFallback+")")
	fl.StringVar(&f.role, "role", "primary", "role label in metrics: primary or shadow")
	fl.DurationVar(&f.timeout, "op-timeout", 30*time.Second, "an op running this long while the mount makes no progress (or 10x as long at all) marks the executor hung: it is replaced")
	fl.Int64Var(&f.maxBody, "max-body", fsop.DefaultMaxRequest, "largest request body (and op frame) accepted, bytes; larger is 413, refused by Content-Length before it is read")
	fl.Int64Var(&f.budget, "body-budget", httpguard.DefaultBodyBudget, "bytes of request bodies admitted at once; a request beyond it is 503 with Retry-After")
	fl.IntVar(&f.maxConns, "max-conns", httpguard.DefaultMaxConns, "connection limit; beyond it new connections wait for one to close (logged)")
	fl.IntVar(&f.nice, "mirror-nice", bridge.DefaultMirrorNice, "nice value while a proxy has this bridge only mirror, so the serving bridge gets the CPU first (0: keep full priority)")
	fl.Float64Var(&f.inject, "inject-divergence", 0, "corrupt this fraction of read results (the rollback demo and tests; never in production)")
	fl.DurationVar(&f.injectAt, "inject-after", 0, "start injecting this long after start")
	fl.MarkHidden("inject-divergence")
	fl.MarkHidden("inject-after")
}

func (f *bridgeFlags) config(reg prometheus.Registerer) (bridge.Config, error) {
	if f.backend == "" {
		f.backend = os.Getenv(bridge.EnvBackend)
	}
	if f.fallback == "" {
		f.fallback = os.Getenv(bridge.EnvFallback)
	}
	if f.backend == "" {
		return bridge.Config{}, verdict.Usage(fmt.Errorf("no FUSE backend: pass --backend %s or set %s", backendNames(), bridge.EnvBackend))
	}
	policy, err := store.ParseSyncPolicy(f.sync)
	if err != nil {
		return bridge.Config{}, err
	}
	opts, err := f.options()
	if err != nil {
		return bridge.Config{}, verdict.Usage(err)
	}
	mnt := f.mount
	if mnt != "" {
		if mnt, err = filepath.Abs(mnt); err != nil {
			return bridge.Config{}, err
		}
	}
	return bridge.Config{
		Backends: backends, Backend: f.backend, Fallback: f.fallback, Role: f.role,
		MountDir: mnt, DataDir: f.data, Sync: policy, NameMax: f.nameMax, Mount: opts,
		MaxBody: f.maxBody, BodyBudget: f.budget, OpTimeout: f.timeout, Registerer: reg, InjectDivergence: f.inject, InjectAfter: f.injectAt,
		MirrorNice: cmp.Or(f.nice, -1), // the flag's 0 keeps full priority; Config's 0 is the default
	}, nil
}

func bridgeCmd() *cobra.Command {
	var f bridgeFlags
	cmd := &cobra.Command{
		Use:   "bridge --listen ADDR --mount DIR --data DIR [--backend bazil|gofuse] [-- COMMAND...]",
		Short: "Serve a store through one FUSE library and an HTTP API that executes every op on the mount",
		Long: `Serve a store on --mount through the FUSE library chosen by --backend (or
$LIGHTHOUSE_FUSE_BACKEND), falling back to --fallback (or
$LIGHTHOUSE_FUSE_FALLBACK), or running degraded on the store when neither
mounts. The HTTP API (docs/protocol.md) executes every op through the mount
from a separate executor process. A COMMAND after -- is run once the bridge is
ready, with LIGHTHOUSE_ACTIVE_FUSE_BACKEND in its environment.
SIGINT/SIGTERM: stop accepting, finish running ops, close handles, flush the
log, unmount.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			cfg, err := f.config(reg)
			if err != nil {
				return err
			}
			return serveBridge(cmd.Context(), cfg, reg, f.listen, f.maxConns, args)
		},
	}
	f.register(cmd)
	return cmd
}

func serveBridge(ctx context.Context, cfg bridge.Config, reg *prometheus.Registry, listen string, maxConns int, run []string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another bridge running?)", listen, err)
	}
	ln = httpguard.LimitListener(ln, maxConns, "bridge", slog.Default(), reg)
	b, err := bridge.Start(ctx, cfg)
	if err != nil {
		ln.Close()
		return err
	}
	srv := httpguard.NewServer(b.Handler(reg))
	slog.Info("bridge listening", "addr", ln.Addr().String(), "active_backend", b.Active())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if len(run) > 0 {
		g.Go(func() error {
			if err := b.RunCommand(gctx, run); err != nil {
				slog.Error("command failed", "command", run, "err", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		slog.Info("shutting down: finishing running ops")
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return errors.Join(srv.Shutdown(sctx), b.Close(sctx))
	})
	return g.Wait()
}

func validateCmd() *cobra.Command {
	var f bridgeFlags
	var url string
	var allowDegraded bool
	cmd := &cobra.Command{
		Use:   "validate [--backend X] [--url http://" + contract.PrimaryAddr + "]",
		Short: "Check a FUSE backend end to end (the container health check): exit 0 if healthy, 1 if not",
		Long: `With --url, ask a running bridge's /readyz and /v1/info. Without it, mount a
fresh memory store through --backend in a temporary directory, write, read back
and remove a probe file through the mount, unmount, and report.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return verdict.Failed(runValidate(cmd.Context(), &f, url, allowDegraded)) // 1: unhealthy, as a health check wants
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&url, "url", "", "check a running bridge instead of mounting")
	cmd.Flags().BoolVar(&allowDegraded, "allow-degraded", false, "exit 0 even when only degraded mode works")
	return cmd
}

// runValidate checks a running bridge (url) or mounts, probes and unmounts
// a fresh memory store.
func runValidate(ctx context.Context, f *bridgeFlags, url string, allowDegraded bool) error {
	if url != "" {
		return bridge.ValidateURL(ctx, url, os.Stdout)
	}
	f.data = ""
	cfg, err := f.config(nil)
	if err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return bridge.Validate(ctx, cfg, allowDegraded, os.Stdout)
}
