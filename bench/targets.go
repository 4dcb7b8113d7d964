package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/bridgeclient"
	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/store"
	"github.com/lighthouse-fs/lighthouse/storeexec"
	"github.com/lighthouse-fs/lighthouse/sysexec"
)

// execFunc runs one op on a target.
type execFunc func(ctx context.Context, op *fsop.Op) (fsop.Result, error)

// target is one thing the suite measures.
type target struct {
	name string
	idx  int
	exec execFunc
	// proxy, for the proxy targets: drained after each slice so that its
	// mirror's backlog does not run during the next target's slice.
	proxy    *proxy.Proxy
	mirrored bool
	// submitted counts the ops sent through the proxy.
	submitted   atomic.Int64
	divergences atomic.Int64
	levels      map[int]*level
}

// run runs op on t, counting it for the proxy's drain.
func (t *target) run(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
	if t.proxy != nil {
		t.submitted.Add(1)
	}
	return t.exec(ctx, op)
}

// drain waits until the proxy has run and compared every mirrored op and
// read-back (at most a minute), and returns how long that took.
func (t *target) drain(ctx context.Context) (time.Duration, error) {
	if t.proxy == nil || !t.mirrored {
		return 0, nil
	}
	start := time.Now()
	deadline := start.Add(time.Minute)
	lastRB, still := int64(-1), 0
	for {
		st := t.proxy.Status()
		v := t.proxy.Stats()
		busy := v.Ops < t.submitted.Load()
		for _, b := range st.Bridges {
			busy = busy || b.QueueDepth > 0 || b.Stale || b.Quarantined > 0
		}
		if v.Readbacks == lastRB {
			still++
		} else {
			lastRB, still = v.Readbacks, 0
		}
		// Every read-back admitted is done; or, should one never finish
		// (its mirror op was dropped by a resync), the count has not moved
		// for 50 ms.
		if !busy && (v.Readbacks >= v.ReadbacksAdmitted || still >= 50) {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("%s: the mirror did not drain within a minute: %+v", t.name, st)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// start makes the selected targets, starting the children they need (in
// parallel) first.
func (r *runner) start(ctx context.Context) error {
	cfg, e := r.cfg, r.env
	type want struct {
		name, backend, role string // role: a bridge's; "" for a mount
		c                   *child
	}
	var wants []*want
	if cfg.needs(TargetBazilMount) {
		wants = append(wants, &want{name: TargetBazilMount, backend: "bazil"})
	}
	if cfg.needs(TargetGofuseMount) {
		wants = append(wants, &want{name: TargetGofuseMount, backend: "gofuse"})
	}
	lag := cfg.Lag > 0
	if lag || cfg.needs(TargetBazilBridge, TargetBazilBridgeHTTP, TargetProxyMirror, TargetProxyNoMirror, TargetProxyHTTP) {
		wants = append(wants, &want{name: "bazil-bridge", backend: "bazil", role: "primary"})
	}
	if lag || cfg.needs(TargetGofuseBridge) {
		wants = append(wants, &want{name: "gofuse-bridge", backend: "gofuse", role: "shadow"})
	}
	if cfg.needs(TargetProxyMirror, TargetProxyHTTP) {
		// A shadow of its own: the proxy lowers the CPU priority of a
		// bridge that only mirrors, which must not touch gofuse-bridge's
		// own numbers.
		wants = append(wants, &want{name: "gofuse-shadow", backend: "gofuse", role: "shadow"})
	}
	errs := make([]error, len(wants))
	var wg sync.WaitGroup
	for i, w := range wants {
		wg.Go(func() {
			if w.role != "" {
				w.c, errs[i] = e.startBridge(ctx, w.name, w.backend, w.role)
			} else {
				w.c, errs[i] = e.startMount(ctx, w.backend)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.children = map[string]*child{}
	for _, w := range wants {
		r.children[w.name] = w.c
	}

	for _, name := range AllTargets {
		if !cfg.needs(name) {
			continue
		}
		t := &target{name: name, idx: len(r.targets), levels: map[int]*level{}}
		var err error
		// Goroutines a target starts (the proxy's workers, a client's
		// connections) carry its label in the CPU profile.
		pprof.Do(ctx, pprof.Labels("target", name), func(ctx context.Context) { err = r.makeTarget(ctx, t) })
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r.targets = append(r.targets, t)
	}
	return nil
}

func (r *runner) makeTarget(ctx context.Context, t *target) error {
	e := r.env
	switch t.name {
	case TargetTmpdir:
		dir, err := tmpfsDir(e)
		if err != nil {
			return err
		}
		r.tmpdir = dir
		return r.sysexecTarget(t, dir)
	case TargetStore:
		st := store.OpenMemory(store.Options{})
		ex := storeexec.New(st)
		e.onClose(func() error { return errors.Join(ex.Close(), st.Close()) })
		t.exec = func(_ context.Context, op *fsop.Op) (fsop.Result, error) { return ex.Exec(op) }
		return nil
	case TargetBazilMount, TargetGofuseMount:
		return r.sysexecTarget(t, r.children[t.name].mnt)
	case TargetBazilBridge, TargetGofuseBridge:
		c, err := r.client(r.children[t.name])
		if err != nil {
			return err
		}
		t.exec = c.Exec
		return nil
	case TargetBazilBridgeHTTP:
		t.exec = httpExec(r.children["bazil-bridge"].url)
		return nil
	case TargetProxyMirror, TargetProxyHTTP:
		shadow, err := r.client(r.children["gofuse-shadow"])
		if err != nil {
			return err
		}
		p, err := r.newProxy(t, shadow)
		if err != nil {
			return err
		}
		t.proxy, t.mirrored, t.exec = p, true, p.Exec
		if t.name == TargetProxyMirror {
			return nil
		}
		// proxy-http: what a client of the proxy sees, its JSON API on
		// loopback, as bazil-bridge-http is the bridge's.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		e.onClose(srv.Close)
		t.exec = httpExec("http://" + ln.Addr().String())
		return nil
	case TargetProxyNoMirror:
		p, err := r.newProxy(t, detached{})
		if err != nil {
			return err
		}
		t.proxy, t.exec = p, p.Exec
		// Detach the shadow: the first op's mirror fails at once and the
		// proxy marks the shadow stale; every later op runs unmirrored.
		op := fsop.Op{Kind: fsop.Stat, Path: "."}
		if _, err := t.run(ctx, &op); err != nil {
			return err
		}
		deadline := time.Now().Add(5 * time.Second)
		for !p.Status().Bridges[proxy.Shadow].Stale {
			if time.Now().After(deadline) {
				return errors.New("the detached shadow was not marked stale")
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	}
	return fmt.Errorf("unknown target")
}

// tmpfsDir makes the tmpdir target's directory: on tmpfs (/dev/shm) when
// there is one, so that the floor is the kernel's own cost with no disk
// under it (the stores are in memory too), else in the working directory.
// It is removed at the end.
func tmpfsDir(e *env) (string, error) {
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) == nil && st.Type == unix.TMPFS_MAGIC {
		dir, err := os.MkdirTemp("/dev/shm", "lighthouse-bench-")
		if err == nil {
			e.onClose(func() error { return os.RemoveAll(dir) })
			return dir, nil
		}
	}
	dir := filepath.Join(e.dir, "tmpdir")
	return dir, os.MkdirAll(dir, 0o755)
}

func (r *runner) sysexecTarget(t *target, dir string) error {
	ex, err := sysexec.New(dir, sysexec.Limits{})
	if err != nil {
		return err
	}
	r.env.onClose(ex.Close)
	t.exec = func(_ context.Context, op *fsop.Op) (fsop.Result, error) { return ex.Exec(op) }
	return nil
}

// client is a new frames client of bridge c, closed at the end.
func (r *runner) client(c *child) (*bridgeclient.Client, error) {
	bc, err := bridgeclient.New(c.url, bridgeclient.Options{})
	if err != nil {
		return nil, err
	}
	r.env.onClose(bc.Close)
	return bc, nil
}

// newProxy starts a proxy in this process, the bazil bridge as its primary
// and shadow as its shadow bridge, with `lighthouse proxy`'s defaults
// (the read-back rate aside: Config.ReadbackRate). Its log goes to the
// working directory.
func (r *runner) newProxy(t *target, shadow proxy.Bridge, tweaks ...func(*proxy.Config)) (*proxy.Proxy, error) {
	primary, err := r.client(r.children["bazil-bridge"])
	if err != nil {
		return nil, err
	}
	cfg := proxy.Config{Primary: primary, Shadow: shadow, PrimaryName: "bazil", ShadowName: "gofuse",
		ReadbackRate: r.cfg.ReadbackRate,
		OnDivergence: func(d proxy.Divergence) {
			if d.Class != compare.ClassAllowed && d.Class != compare.ClassShadowError {
				t.divergences.Add(1)
			}
		}}
	for _, tw := range tweaks {
		tw(&cfg)
	}
	logFile, err := os.Create(filepath.Join(r.env.dir, t.name+".log"))
	if err != nil {
		return nil, err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logFile, nil))
	p, err := proxy.New(cfg)
	if err != nil {
		logFile.Close()
		return nil, err
	}
	r.env.onClose(func() error { return errors.Join(p.Close(), logFile.Close()) })
	return p, nil
}

// detached is a shadow bridge that is never there: every call fails at
// once with ErrUnavailable, so the proxy keeps it stale and mirrors
// nothing (its resync attempts fail at the first probe).
type detached struct{}

var errDetached = fmt.Errorf("%w: mirroring is off (detached shadow)", bridgeclient.ErrUnavailable)

func (detached) Exec(context.Context, *fsop.Op) (fsop.Result, error) {
	return fsop.Result{}, errDetached
}
func (detached) State(context.Context, string, int64, int64) (fsop.Result, error) {
	return fsop.Result{}, errDetached
}
func (detached) SnapshotSubtree(context.Context, string) ([]byte, error) { return nil, errDetached }
func (detached) RestoreSubtree(context.Context, string, []byte) error    { return errDetached }

// httpExec is a client of a bridge's JSON API: one POST /v1/ops per op
// over keep-alive connections.
func httpExec(baseURL string) execFunc {
	hc := &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}}
	url := strings.TrimRight(baseURL, "/") + "/v1/ops"
	return func(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
		var body bytes.Buffer
		if err := fsop.EncodeRequest(&body, []fsop.Op{*op}, false); err != nil {
			return fsop.Result{}, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &body)
		if err != nil {
			return fsop.Result{}, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return fsop.Result{}, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return fsop.Result{}, err
		}
		if resp.StatusCode != http.StatusOK {
			return fsop.Result{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
		}
		var res fsop.Result
		if err := json.Unmarshal(b, &res); err != nil {
			return fsop.Result{}, fmt.Errorf("decode result: %w", err)
		}
		return res, nil
	}
}
