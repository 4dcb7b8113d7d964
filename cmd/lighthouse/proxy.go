package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/lighthouse-fs/lighthouse/bridge"
	"github.com/lighthouse-fs/lighthouse/bridgeclient"
	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/front"
	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/contract"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/rollout"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// proxyFlags configure a front proxy.
type proxyFlags struct {
	listen, admin         string
	primaryURL, shadowURL string
	mount                 string
	record, divergenceLog string
	allowlist             string
	readback              float64
	mirrorMaxOps          int
	mirrorMaxLag          time.Duration
	phase                 string
	weight                float64
	rolloutConfig         string
	stateFile             string
	advanceAfter          int
	aa                    bool
}

func (f *proxyFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", contract.ProxyAddr, "client API address (the bridges' own protocol)")
	fl.StringVar(&f.admin, "admin", contract.AdminAddr, "metrics and admin address")
	fl.StringVar(&f.primaryURL, "primary", contract.URL(contract.PrimaryAddr), "primary bridge (bazil)")
	fl.StringVar(&f.shadowURL, "shadow", contract.URL(contract.ShadowAddr), "shadow bridge (go-fuse)")
	fl.StringVar(&f.mount, "mount", "", "also serve a front FUSE mount here: programs run in it generate the traffic")
	fl.StringVar(&f.record, "record", "", "write every op and both results to this file (JSON lines) for `lighthouse replay`")
	fl.StringVar(&f.divergenceLog, "divergence-log", "", "write each divergence (JSON lines) to this file (default: the log)")
	fl.StringVar(&f.allowlist, "allowlist", "", "known differences (YAML); default: the built-in compare/allowlist.yaml")
	fl.Float64Var(&f.readback, "readback-rate", proxy.DefaultReadbackRate, "fraction of mutations whose state (lstat, and content up to 1 MiB) is read back on both bridges (0 disables; 1 checks every mutation at several times the cost of a write)")
	fl.IntVar(&f.mirrorMaxOps, "mirror-max-ops", 10000, "mirrored ops the shadow may lag behind before it is marked stale and resynced")
	fl.DurationVar(&f.mirrorMaxLag, "mirror-max-lag", 10*time.Second, "age of the oldest unmirrored op before the shadow is marked stale")
	fl.StringVar(&f.phase, "phase", "", "rollout phase at start when no state file says otherwise: shadow, canary, progressive, full")
	fl.Float64Var(&f.weight, "weight", -1, "candidate (shadow bridge) serving weight at start, 0..1 (overrides --phase)")
	fl.StringVar(&f.rolloutConfig, "rollout-config", "", "rollout config file (phase, weight, thresholds, window); SIGHUP reloads it")
	fl.StringVar(&f.stateFile, "state-file", "", "where rollout decisions are persisted, so a restart keeps a rollback")
	fl.BoolVar(&f.aa, "aa", false, "A/A run: both bridges must run the same FUSE library, and no allowlist applies, so every chance difference counts (the noise floor; see `lighthouse up --aa`)")
	fl.IntVar(&f.advanceAfter, "advance-after", 0, "advance one rollout step after this many quiet candidate ops (0: only by an operator)")
}

// initialWeight is the weight the flags ask for, -1 if they do not.
func (f *proxyFlags) initialWeight() (float64, error) {
	switch {
	case f.weight >= 0:
		if f.weight > 1 {
			return 0, verdict.Usage(fmt.Errorf("--weight %v outside [0, 1]", f.weight))
		}
		return f.weight, nil
	case f.phase != "":
		w, ok := rollout.PhaseWeight[f.phase]
		if !ok {
			return 0, verdict.Usage(fmt.Errorf("unknown --phase %q: shadow, canary, progressive or full", f.phase))
		}
		return w, nil
	}
	return -1, nil
}

// runningProxy is a proxy with its servers, for `proxy` and `up`.
type runningProxy struct {
	p          *proxy.Proxy
	rollout    *rollout.Controller
	cfgFile    *rollout.File // the rollout config last loaded
	configPath string
	clients    []*bridgeclient.Client
	files      []*os.File
	unmount    func() error
	done       <-chan error
}

// startProxy connects to both bridges (waiting up to 30 s for them) and
// starts a proxy; the caller serves its handlers.
func startProxy(ctx context.Context, f *proxyFlags, reg prometheus.Registerer) (*runningProxy, error) {
	rp := &runningProxy{}
	var names [2]string
	for i, url := range []string{f.primaryURL, f.shadowURL} {
		c, err := bridgeclient.New(url, bridgeclient.Options{})
		if err != nil {
			return nil, err
		}
		rp.clients = append(rp.clients, c)
		info, err := c.WaitInfo(ctx, 30*time.Second)
		if err != nil {
			return nil, fmt.Errorf("bridge %s: %w (start it with `lighthouse bridge`, or use `lighthouse up`)", url, err)
		}
		names[i] = info.ActiveBackend
	}
	if f.aa && names[0] != names[1] {
		return nil, verdict.Usage(fmt.Errorf("--aa: the bridges run %s and %s; an A/A run needs the same library on both", names[0], names[1]))
	}
	if names[0] == names[1] {
		slog.Warn("both bridges run the same backend: this is an A/A pair, measuring the noise floor", "backend", names[0])
		names[1] += "-shadow"
	}
	primary, shadow := rp.clients[0], rp.clients[1]
	if want := os.Getenv(bridge.EnvBackend); want != "" && want == names[1] {
		// A full manual rollback by restart: the named library becomes primary.
		slog.Warn("LIGHTHOUSE_FUSE_BACKEND makes the shadow bridge's library primary", "primary", names[1])
		primary, shadow, names[0], names[1] = shadow, primary, names[1], names[0]
	}
	ctrl, err := newController(f, reg)
	if err != nil {
		return nil, err
	}
	rp.rollout, rp.configPath = ctrl, f.rolloutConfig
	if f.rolloutConfig != "" {
		if rp.cfgFile, err = rollout.LoadFile(f.rolloutConfig); err != nil {
			return nil, err
		}
		if err := rp.applyConfig(rp.cfgFile, true); err != nil {
			return nil, err
		}
	}
	cfg := proxy.Config{Primary: primary, Shadow: shadow, PrimaryName: names[0], ShadowName: names[1],
		ReadbackRate: f.readback, MirrorMaxOps: f.mirrorMaxOps, MirrorMaxLag: f.mirrorMaxLag, Registerer: reg,
		Route: proxy.CandidateRoute(ctrl.ServesCandidate), Observe: ctrl.Observe}
	if f.readback <= 0 {
		cfg.ReadbackRate = -1
	}
	if f.aa {
		cfg.Allowlist = compare.Allowlist{} // noise must show, not be excused
	} else if f.allowlist != "" {
		l, err := compare.LoadAllowlist(f.allowlist)
		if err != nil {
			return nil, err
		}
		cfg.Allowlist = l
	}
	openLog := func(path string) (io.Writer, error) {
		if path == "" {
			return nil, nil
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		rp.files = append(rp.files, fh)
		return fh, nil
	}
	if cfg.Record, err = openLog(f.record); err != nil {
		return nil, err
	}
	if cfg.DivergenceLog, err = openLog(f.divergenceLog); err != nil {
		return nil, err
	}
	if cfg.DivergenceLog == nil {
		cfg.OnDivergence = func(d proxy.Divergence) {
			if d.Class != compare.ClassAllowed {
				slog.Warn("divergence", "class", d.Class, "op", d.Op.Kind, "path", d.Op.Path, "seq", d.Seq)
			}
		}
	}
	if rp.p, err = proxy.New(cfg); err != nil {
		return nil, err
	}
	if f.mount != "" {
		mnt, err := filepath.Abs(f.mount)
		if err != nil {
			return nil, err
		}
		if rp.unmount, rp.done, err = front.Mount(mnt, rp.p.Exec, fusemount.Options{}); err != nil {
			rp.close()
			return nil, fmt.Errorf("front mount on %s: %w", mnt, err)
		}
		slog.Info("front mount ready: programs run here generate the shadow traffic", "mount", mnt)
	}
	return rp, nil
}

// newController starts the rollout controller: the state file wins over
// the flags, so a restart never undoes a rollback.
func newController(f *proxyFlags, reg prometheus.Registerer) (*rollout.Controller, error) {
	w, err := f.initialWeight()
	if err != nil {
		return nil, err
	}
	ctrl, err := rollout.New(rollout.Config{Initial: max(w, 0), StateFile: f.stateFile, AdvanceAfter: f.advanceAfter, Registerer: reg})
	if err != nil {
		return nil, err
	}
	if st := ctrl.Status().State; w >= 0 && st.Weight != w && f.stateFile != "" && st.Decision != nil {
		slog.Warn("the rollout state file overrides --phase/--weight; promote through the admin API or `lighthouse promote`",
			"state_file", f.stateFile, "weight", st.Weight, "rolled_back", st.RolledBack)
	}
	slog.Info("rollout", "phase", ctrl.Status().State.Phase, "candidate_weight", ctrl.Weight())
	return ctrl, nil
}

// applyConfig installs a rollout config file. A phase or weight is applied
// only when it differs from the previous file's (a reload for a threshold
// never undoes a rollback).
func (rp *runningProxy) applyConfig(f *rollout.File, first bool) error {
	th, err := f.Apply(rollout.DefaultThresholds())
	if err != nil {
		return err
	}
	if err := rp.rollout.Reconfigure(th); err != nil {
		return err
	}
	w, ok := f.TargetWeight()
	prev, had := 0.0, false
	if !first && rp.cfgFile != nil {
		prev, had = rp.cfgFile.TargetWeight()
	}
	if ok && (!had || prev != w) && (first && rp.rollout.Status().State.Decision == nil || !first) {
		return rp.rollout.Promote(w, "rollout config file")
	}
	return nil
}

// reload is SIGHUP: a bad file is rejected with a clear log line and the
// old config stays.
func (rp *runningProxy) reload(path string) {
	if path == "" {
		slog.Warn("SIGHUP ignored: no --rollout-config to reload")
		return
	}
	f, err := rollout.LoadFile(path)
	if err == nil {
		err = rp.applyConfig(f, false)
	}
	if err != nil {
		slog.Error("rollout config rejected, keeping the old one", "file", path, "err", err)
		return
	}
	rp.cfgFile = f
	st := rp.rollout.Status()
	slog.Info("rollout config reloaded", "file", path, "phase", st.State.Phase, "weight", st.State.Weight)
}

// close unmounts the front mount, then stops the proxy and its clients.
func (rp *runningProxy) close() error {
	var errs []error
	if rp.unmount != nil {
		errs = append(errs, rp.unmount())
		select {
		case <-rp.done:
		case <-time.After(10 * time.Second):
		}
	}
	if rp.p != nil {
		errs = append(errs, rp.p.Close())
	}
	for _, c := range rp.clients {
		c.Close()
	}
	for _, fh := range rp.files {
		errs = append(errs, fh.Close())
	}
	return errors.Join(errs...)
}

// serveProxy serves the client API and the admin port until ctx ends.
func serveProxy(ctx context.Context, rp *runningProxy, reg *prometheus.Registry, listen, admin string) error {
	api, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	adm, err := net.Listen("tcp", admin)
	if err != nil {
		api.Close()
		return fmt.Errorf("listen on %s: %w", admin, err)
	}
	srv := &http.Server{Handler: rp.p.Handler(), ReadHeaderTimeout: 10 * time.Second}
	amux := http.NewServeMux()
	amux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	rp.rollout.Register(amux, os.Getenv(rollout.EnvAdminToken), func() any { return rp.p.Status() })
	asrv := &http.Server{Handler: amux, ReadHeaderTimeout: 10 * time.Second}
	slog.Info("proxy listening", "api", api.Addr().String(), "admin", adm.Addr().String())
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{srv, api}, {asrv, adm}} {
		g.Go(func() error {
			if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-hup:
				rp.reload(rp.configPath)
			}
		}
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return errors.Join(srv.Shutdown(sctx), asrv.Shutdown(sctx))
	})
	return g.Wait()
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func proxyCmd() *cobra.Command {
	var f proxyFlags
	cmd := &cobra.Command{
		Use:   "proxy [--listen ADDR] [--primary URL] [--shadow URL] [--admin ADDR] [--mount DIR]",
		Short: "Serve every op from the primary bridge, mirror it to the shadow, and compare the results",
		Long: `The front proxy: its API is the bridges' own (docs/protocol.md). Each op is
served by the primary bridge and mirrored to the shadow in the same conflict
order; the results are compared into lighthouse_fuse_backend_divergence_total
on the admin port's /metrics. With --mount, a front FUSE mount turns the
requests of ordinary programs into ops.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg := newRegistry()
			rp, err := startProxy(cmd.Context(), &f, reg)
			if err != nil {
				return err
			}
			err = serveProxy(cmd.Context(), rp, reg, f.listen, f.admin)
			return errors.Join(err, rp.close())
		},
	}
	f.register(cmd)
	return cmd
}
