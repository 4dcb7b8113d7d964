// Package proxyserver runs the front proxy as a server: it connects to both
// bridges, starts the rollout controller (its state file wins over the
// flags, so a restart never undoes a rollback), opens the record and
// divergence logs, serves the front FUSE mount, the client API and the
// admin port (metrics, rollout admin API), and reloads the rollout config
// on SIGHUP. `lighthouse proxy` and `lighthouse up` both run it. AdminClient
// is the admin API's client.
package proxyserver

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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/lighthouse-fs/lighthouse/bridge"
	"github.com/lighthouse-fs/lighthouse/bridgeclient"
	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/front"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/contract"
	"github.com/lighthouse-fs/lighthouse/internal/httpguard"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/rollout"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// Config is what a proxy server runs: `lighthouse proxy`'s flags.
type Config struct {
	Listen, Admin         string // client API and admin addresses
	PrimaryURL, ShadowURL string
	Mount                 string // a front FUSE mount here, if set
	// FrontOwnerOnly mounts the front without allow_other (fusemount.Options).
	FrontOwnerOnly bool
	// FrontCache lets the kernel keep the front's names, attributes and
	// missing names this long, and file pages across opens (0: nothing
	// kept, every request reaches the proxy). Changes made through the
	// proxy's API are dropped from those caches before they are answered.
	FrontCache            time.Duration
	Record, DivergenceLog string // JSON-lines logs, if set
	Allowlist             string // a YAML allowlist; empty: the built-in one
	ReadbackRate          float64
	MirrorMaxOps          int
	MirrorMaxLag          time.Duration
	// MirrorShare is --mirror-share: "auto", or a fraction in (0, 1] of
	// the tree mirrored (proxy.ParseShare; empty: auto).
	MirrorShare string
	// MirrorShareDepth: how many leading path components make a unit of
	// the share (proxy.Config.MirrorShareDepth; 0: 2).
	MirrorShareDepth int
	Phase            string  // the rollout phase at start, if no state file says otherwise
	Weight           float64 // the candidate's weight at start, 0..1; -1: none (Phase decides)
	RolloutConfig    string  // a rollout config file, reloaded on SIGHUP
	StateFile        string  // where rollout decisions persist
	AdvanceAfter     int     // one rollout step after this many quiet candidate ops (0: never)
	// OpTimeout bounds one op on a bridge (proxy.Config.OpTimeout; 0: its
	// default, 30 s): a hung primary fails a client's op after this long.
	OpTimeout time.Duration
	// ServeFallback is how long an op the candidate serves may go
	// unanswered before the store of record's answer stands in
	// (proxy.Config.ServeFallback; 0: its default, 5 s; negative: never).
	ServeFallback time.Duration
	// AA is an A/A run: both bridges must run the same library, and no
	// allowlist applies, so every chance difference counts.
	AA bool
}

// DefaultConfig is the proxy of the contract: its ports, the contract
// bridges, and the mirror's bounds.
func DefaultConfig() Config {
	return Config{Listen: contract.ProxyAddr, Admin: contract.AdminAddr,
		PrimaryURL: contract.URL(contract.PrimaryAddr), ShadowURL: contract.URL(contract.ShadowAddr),
		ReadbackRate: proxy.DefaultReadbackRate, MirrorMaxOps: 10000, MirrorMaxLag: 10 * time.Second, MirrorShare: "auto", MirrorShareDepth: 2, Weight: -1}
}

// initialWeight is the weight the flags ask for, -1 if they do not.
func (f *Config) initialWeight() (float64, error) {
	switch {
	case f.Weight >= 0:
		if f.Weight > 1 {
			return 0, verdict.Usage(fmt.Errorf("--weight %v outside [0, 1]", f.Weight))
		}
		return f.Weight, nil
	case f.Phase != "":
		w, ok := rollout.PhaseWeight[f.Phase]
		if !ok {
			return 0, verdict.Usage(fmt.Errorf("unknown --phase %q: shadow, canary, progressive or full", f.Phase))
		}
		return w, nil
	}
	return -1, nil
}

// Server is a proxy with its rollout controller, logs and front mount,
// for `lighthouse proxy` and `lighthouse up`.
type Server struct {
	Proxy      *proxy.Proxy
	Rollout    *rollout.Controller
	cfgFile    *rollout.File // the rollout config last loaded
	configPath string
	clients    []*bridgeclient.Client
	files      []*os.File
	front      atomic.Pointer[front.Mounted]
}

// Start connects to both bridges (waiting up to 30 s for them) and starts
// a proxy and its front mount; Serve serves its API and admin port.
func Start(ctx context.Context, f *Config, reg prometheus.Registerer) (*Server, error) {
	if f.FrontCache < 0 {
		return nil, verdict.Usage(fmt.Errorf("--front-cache %v: a duration of 0 or more (0: the kernel keeps nothing)", f.FrontCache))
	}
	rp := &Server{}
	primary, shadow, names, err := rp.connect(ctx, f)
	if err != nil {
		return nil, err
	}
	ctrl, err := newController(f, reg)
	if err != nil {
		return nil, err
	}
	rp.Rollout, rp.configPath = ctrl, f.RolloutConfig
	if f.RolloutConfig != "" {
		if rp.cfgFile, err = rollout.LoadFile(f.RolloutConfig); err != nil {
			return nil, err
		}
		if err := rp.applyConfig(rp.cfgFile, true); err != nil {
			return nil, err
		}
	}
	share, auto, err := proxy.ParseShare(f.MirrorShare)
	if err != nil {
		return nil, err
	}
	cfg := proxy.Config{MirrorShare: share, MirrorShareAuto: auto, MirrorShareDepth: f.MirrorShareDepth, Primary: primary, Shadow: shadow, PrimaryName: names[0], ShadowName: names[1],
		ReadbackRate: f.ReadbackRate, MirrorMaxOps: f.MirrorMaxOps, MirrorMaxLag: f.MirrorMaxLag, Registerer: reg,
		Route: proxy.CandidateRoute(ctrl.ServesCandidate), Weight: ctrl.Weight, Observe: ctrl.Observe, OpTimeout: f.OpTimeout,
		ServeFallback: f.ServeFallback}
	if f.ReadbackRate <= 0 {
		cfg.ReadbackRate = -1
	}
	if f.AA {
		cfg.Allowlist = compare.Allowlist{} // noise must show, not be excused
	} else if f.Allowlist != "" {
		if cfg.Allowlist, err = compare.LoadAllowlist(f.Allowlist); err != nil {
			return nil, err
		}
	}
	if cfg.Record, err = rp.openLog(f.Record); err != nil {
		return nil, err
	}
	if cfg.DivergenceLog, err = rp.openLog(f.DivergenceLog); err != nil {
		return nil, err
	}
	if f.Mount != "" && f.FrontCache > 0 {
		cfg.OnAPIChange = func(paths []string) {
			if m := rp.front.Load(); m != nil {
				m.Forget(paths)
			}
		}
	}
	if cfg.DivergenceLog == nil {
		cfg.OnDivergence = func(d proxy.Divergence) {
			if d.Class != compare.ClassAllowed {
				slog.Warn("divergence", "class", d.Class, "op", d.Op.Kind, "path", d.Op.Path, "seq", d.Seq)
			}
		}
	}
	if rp.Proxy, err = proxy.New(cfg); err != nil {
		return nil, err
	}
	if f.Mount != "" {
		mnt, err := filepath.Abs(f.Mount)
		if err != nil {
			return nil, err
		}
		opts := fusemount.Options{OwnerOnly: f.FrontOwnerOnly, EntryTimeout: f.FrontCache, AttrTimeout: f.FrontCache,
			NegativeTimeout: f.FrontCache, KeepCache: f.FrontCache > 0}
		if err := fusemount.CheckAllowOther(opts, os.Geteuid(), fusemount.FuseConf); err != nil {
			rp.Close()
			return nil, verdict.Usage(fmt.Errorf("front mount on %s: %w", mnt, err))
		}
		m, err := front.Mount(mnt, rp.Proxy.Exec, opts)
		if err != nil {
			rp.Close()
			return nil, fmt.Errorf("front mount on %s: %w", mnt, err)
		}
		rp.front.Store(m)
		slog.Info("front mount ready: programs run here generate the shadow traffic", "mount", mnt)
	}
	return rp, nil
}

// connect waits for both bridges and says which library each runs; with
// LIGHTHOUSE_FUSE_BACKEND naming the shadow's library, the two swap roles
// (a full manual rollback by restart).
func (rp *Server) connect(ctx context.Context, f *Config) (primary, shadow *bridgeclient.Client, names [2]string, err error) {
	for i, url := range []string{f.PrimaryURL, f.ShadowURL} {
		c, err := bridgeclient.New(url, bridgeclient.Options{})
		if err != nil {
			return nil, nil, names, err
		}
		rp.clients = append(rp.clients, c)
		info, err := c.WaitInfo(ctx, 30*time.Second)
		if err != nil {
			return nil, nil, names, fmt.Errorf("bridge %s: %w (start it with `lighthouse bridge`, or use `lighthouse up`)", url, err)
		}
		names[i] = info.ActiveBackend
	}
	if f.AA && names[0] != names[1] {
		return nil, nil, names, verdict.Usage(fmt.Errorf("--aa: the bridges run %s and %s; an A/A run needs the same library on both", names[0], names[1]))
	}
	if names[0] == names[1] {
		slog.Warn("both bridges run the same backend: this is an A/A pair, measuring the noise floor", "backend", names[0])
		names[1] += "-shadow"
	}
	primary, shadow = rp.clients[0], rp.clients[1]
	if want := os.Getenv(bridge.EnvBackend); want != "" && want == names[1] {
		slog.Warn("LIGHTHOUSE_FUSE_BACKEND makes the shadow bridge's library primary", "primary", names[1])
		primary, shadow, names[0], names[1] = shadow, primary, names[1], names[0]
	}
	return primary, shadow, names, nil
}

// openLog opens a JSON-lines log for appending (nil for no path).
func (rp *Server) openLog(path string) (io.Writer, error) {
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

// newController starts the rollout controller: the state file wins over
// the flags, so a restart never undoes a rollback.
func newController(f *Config, reg prometheus.Registerer) (*rollout.Controller, error) {
	w, err := f.initialWeight()
	if err != nil {
		return nil, err
	}
	ctrl, err := rollout.New(rollout.Config{Initial: max(w, 0), StateFile: f.StateFile, AdvanceAfter: f.AdvanceAfter,
		OpKinds: fsop.KindNames(), Registerer: reg})
	if err != nil {
		return nil, err
	}
	if st := ctrl.Status().State; w >= 0 && st.Weight != w && f.StateFile != "" && st.Decision != nil {
		slog.Warn("the rollout state file overrides --phase/--weight; promote through the admin API or `lighthouse promote`",
			"state_file", f.StateFile, "weight", st.Weight, "rolled_back", st.RolledBack)
	}
	slog.Info("rollout", "phase", ctrl.Status().State.Phase, "candidate_weight", ctrl.Weight())
	return ctrl, nil
}

// applyConfig installs a rollout config file. A phase or weight is applied
// only when it differs from the previous file's (a reload for a threshold
// never undoes a rollback).
func (rp *Server) applyConfig(f *rollout.File, first bool) error {
	th, err := f.Apply(rollout.DefaultThresholds())
	if err != nil {
		return err
	}
	if err := rp.Rollout.Reconfigure(th); err != nil {
		return err
	}
	w, ok := f.TargetWeight()
	prev, had := 0.0, false
	if !first && rp.cfgFile != nil {
		prev, had = rp.cfgFile.TargetWeight()
	}
	if ok && (!had || prev != w) && (first && rp.Rollout.Status().State.Decision == nil || !first) {
		return rp.Rollout.Promote(w, "rollout config file")
	}
	return nil
}

// reload is SIGHUP: a bad file is rejected with a clear log line and the
// old config stays.
func (rp *Server) reload(path string) {
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
	st := rp.Rollout.Status()
	slog.Info("rollout config reloaded", "file", path, "phase", st.State.Phase, "weight", st.State.Weight)
}

// Close unmounts the front mount, then stops the proxy and its clients.
func (rp *Server) Close() error {
	var errs []error
	if m := rp.front.Load(); m != nil {
		errs = append(errs, m.Unmount())
		select {
		case <-m.Done:
		case <-time.After(10 * time.Second):
		}
	}
	if rp.Proxy != nil {
		errs = append(errs, rp.Proxy.Close())
	}
	for _, c := range rp.clients {
		c.Close()
	}
	for _, fh := range rp.files {
		errs = append(errs, fh.Close())
	}
	return errors.Join(errs...)
}

// Serve serves the client API on listen and the metrics of reg and the
// admin API on admin until ctx ends; SIGHUP reloads the rollout config.
func (rp *Server) Serve(ctx context.Context, reg *prometheus.Registry, listen, admin string) error {
	api, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	adm, err := net.Listen("tcp", admin)
	if err != nil {
		api.Close()
		return fmt.Errorf("listen on %s: %w", admin, err)
	}
	api = httpguard.LimitListener(api, httpguard.DefaultMaxConns, "proxy", slog.Default(), reg)
	adm = httpguard.LimitListener(adm, httpguard.DefaultMaxConns, "admin", slog.Default(), reg)
	srv := httpguard.NewServer(rp.Proxy.Handler())
	amux := http.NewServeMux()
	amux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	token := os.Getenv(rollout.EnvAdminToken)
	if token == "" {
		slog.Warn("the admin API has no token: anyone who can reach "+adm.Addr().String()+" can promote or roll back; set "+rollout.EnvAdminToken, "admin", adm.Addr().String())
	}
	rp.Rollout.Register(amux, token, func() any { return rp.Proxy.Status() },
		map[string]http.HandlerFunc{"POST /admin/resync": rp.Proxy.HandleResync})
	asrv := httpguard.NewServer(amux)
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

// NewRegistry is a process's registry: the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
