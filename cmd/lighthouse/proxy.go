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
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/lighthouse-fs/lighthouse/bridgeclient"
	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/front"
	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/proxy"
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
}

func (f *proxyFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8764", "client API address (the bridges' own protocol)")
	fl.StringVar(&f.admin, "admin", "127.0.0.1:9765", "metrics and admin address")
	fl.StringVar(&f.primaryURL, "primary", "http://127.0.0.1:8765", "primary bridge (bazil)")
	fl.StringVar(&f.shadowURL, "shadow", "http://127.0.0.1:8766", "shadow bridge (go-fuse)")
	fl.StringVar(&f.mount, "mount", "", "also serve a front FUSE mount here: programs run in it generate the traffic")
	fl.StringVar(&f.record, "record", "", "write every op and both results to this file (JSON lines) for `lighthouse replay`")
	fl.StringVar(&f.divergenceLog, "divergence-log", "", "write each divergence (JSON lines) to this file (default: the log)")
	fl.StringVar(&f.allowlist, "allowlist", "", "known differences (YAML); default: the built-in compare/allowlist.yaml")
	fl.Float64Var(&f.readback, "readback-rate", 1, "fraction of mutations whose state is read back on both bridges (0 disables)")
	fl.IntVar(&f.mirrorMaxOps, "mirror-max-ops", 10000, "mirrored ops the shadow may lag behind before it is marked stale and resynced")
	fl.DurationVar(&f.mirrorMaxLag, "mirror-max-lag", 10*time.Second, "age of the oldest unmirrored op before the shadow is marked stale")
}

// runningProxy is a proxy with its servers, for `proxy` and `up`.
type runningProxy struct {
	p       *proxy.Proxy
	clients []*bridgeclient.Client
	files   []*os.File
	unmount func() error
	done    <-chan error
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
		info, err := waitBridge(ctx, c, 30*time.Second)
		if err != nil {
			return nil, fmt.Errorf("bridge %s: %w (start it with `lighthouse bridge`, or use `lighthouse up`)", url, err)
		}
		names[i] = info.ActiveBackend
	}
	if names[0] == names[1] {
		slog.Warn("both bridges run the same backend: this is an A/A pair, measuring the noise floor", "backend", names[0])
		names[1] += "-shadow"
	}
	cfg := proxy.Config{Primary: rp.clients[0], Shadow: rp.clients[1], PrimaryName: names[0], ShadowName: names[1],
		ReadbackRate: f.readback, MirrorMaxOps: f.mirrorMaxOps, MirrorMaxLag: f.mirrorMaxLag, Registerer: reg}
	if f.readback <= 0 {
		cfg.ReadbackRate = -1
	}
	if f.allowlist != "" {
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
	var err error
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

func waitBridge(ctx context.Context, c *bridgeclient.Client, limit time.Duration) (bridgeclient.Info, error) {
	deadline := time.Now().Add(limit)
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := c.Info(ictx)
		cancel()
		if err == nil {
			return info, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return info, err
		}
		time.Sleep(200 * time.Millisecond)
	}
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
	asrv := &http.Server{Handler: rp.p.AdminHandler(reg), ReadHeaderTimeout: 10 * time.Second}
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
