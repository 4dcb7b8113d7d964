// Package bridge serves one store through one FUSE library and executes
// every operation it receives through the kernel, on its own mount point,
// with real syscalls: the result includes the library's behaviour.
//
// # Processes
//
// The bridge process serves the HTTP API, the store and the FUSE mount. It
// never makes a syscall on its own mount (the Go runtime can deadlock): ops
// run in an executor process, this binary re-executed with EnvExecutor set,
// started before the mount and spoken to with fsop frames over its stdin
// and stdout. Frames connections (GET /v1/frames, the proxy's transport)
// are handed to the executor once upgraded, and it serves their ops itself.
// A watchdog (watchdog.go) tells a slow executor from a hung one by
// progress, not by wall time alone: an op running longer than
// Config.OpTimeout while the store completed no request for as long (the
// mount is stuck), or longer than Config.OpCeiling at all, or an executor
// that does not answer the watchdog within OpTimeout, marks the executor
// hung: it is killed and replaced, its ops answer an error, the bridge
// serves on. Handles held by a replaced executor are gone (later ops on
// them: EBADF).
//
// # Backend selection
//
// Config.Backend is the first choice, Config.Fallback the second; if
// neither mounts, the bridge runs degraded, executing ops on the store
// directly (storeexec.Executor), and says so in the log, in /v1/info, in the
// lighthouse_fuse_backend_active gauge and in LIGHTHOUSE_ACTIVE_FUSE_BACKEND.
package bridge

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/httpguard"
	"github.com/lighthouse-fs/lighthouse/metrics"
	"github.com/lighthouse-fs/lighthouse/store"
	"github.com/lighthouse-fs/lighthouse/storeexec"
)

// Environment contract (../shared/design/ARCHITECTURE.md).
const (
	EnvBackend       = "LIGHTHOUSE_FUSE_BACKEND"
	EnvFallback      = "LIGHTHOUSE_FUSE_FALLBACK"
	EnvActiveBackend = "LIGHTHOUSE_ACTIVE_FUSE_BACKEND"
	Degraded         = "degraded"
)

// Config configures a bridge. Zero values get the documented defaults.
type Config struct {
	// Backends maps backend names (bazil, gofuse) to their Mount functions.
	Backends map[string]fusemount.MountFunc
	// Backend and Fallback are the first and second choice of library.
	Backend, Fallback string
	// Role is the bridge's role label in metrics: primary or shadow.
	Role string
	// MountDir is the mount point; DataDir the store's directory ("" keeps
	// the store in memory).
	MountDir, DataDir string
	// Sync is the store's fsync policy (default always).
	Sync store.SyncPolicy
	// NameMax is the store's name cap (store.Options.NameMax; 0: 255, as
	// ext4). The conformance suite raises it on the front's bridges as on
	// its own mounts, so that each library's own limit shows.
	NameMax int
	// Mount are the kernel cache settings, the same for every backend.
	Mount fusemount.Options
	// MaxBody bounds a request body and a frame (default
	// fsop.DefaultMaxRequest); BodyBudget the bytes of request bodies
	// admitted at once (default httpguard.DefaultBodyBudget); MaxSnapshot
	// a PUT /v1/snapshot body (default 2 GiB).
	MaxBody, BodyBudget, MaxSnapshot int64
	// OpTimeout is how long an op may wait while the mount makes no
	// progress (the store completes no request) before the executor is
	// declared hung and replaced, and how long the executor may take to
	// answer the watchdog (default 30 s).
	OpTimeout time.Duration
	// OpCeiling is how long an op may run at all, progress or not, before
	// the executor is declared hung (default 10 x OpTimeout).
	OpCeiling time.Duration
	// InjectDivergence corrupts this fraction of read results (a flipped
	// byte): for the rollback demo and tests only, never in production.
	InjectDivergence float64
	// InjectAfter delays the injection (the demo shows a healthy start).
	InjectAfter time.Duration
	// MirrorNice is the nice value the bridge takes when a proxy says it
	// only mirrors (fsop.ControlPriority): 0 means DefaultMirrorNice,
	// negative keeps full priority.
	MirrorNice int
	// Registerer receives the bridge's metrics; nil means a private registry.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.MaxBody == 0 {
		c.MaxBody = fsop.DefaultMaxRequest
	}
	if c.MirrorNice == 0 {
		c.MirrorNice = DefaultMirrorNice
	}
	if c.MaxSnapshot == 0 {
		c.MaxSnapshot = 2 << 30
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = 30 * time.Second
	}
	if c.OpCeiling == 0 {
		c.OpCeiling = 10 * c.OpTimeout
	}
	if c.Role == "" {
		c.Role = "primary"
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Bridge is a running bridge: store, mount (or degraded mode) and executor.
type Bridge struct {
	cfg     Config
	log     *slog.Logger
	st      *store.Store
	metrics *metrics.Bridge

	// opsMu is held shared by every op and exclusively to swap the mount
	// or the executor (snapshot restore, executor replacement).
	opsMu         sync.RWMutex
	active        string // bazil, gofuse or degraded
	unmount       func() error
	done          <-chan error
	exec          *executorProc       // nil when degraded
	direct        *storeexec.Executor // degraded mode
	audit         *storeexec.Executor // State: reads the store, never through the mount
	handles       map[uint64]bool     // open handle ids, for the gauge and close-all
	hmu           sync.Mutex
	started       time.Time
	prioMu        sync.Mutex
	nice          int               // what SetPriority last set
	prioErr       string            // its last failure, logged once
	frames        frameConns        // upgraded GET /v1/frames connections served here (degraded)
	bodies        *httpguard.Bodies // request bodies admitted (HTTP API)
	flights       opFlights         // ops sent to the executor, for the watchdog
	mountProgress progressClock     // when the store last made progress
	stopDog       chan struct{}     // closed by Close: the watchdog ends
	dogDone       chan struct{}     // closed when it has
	closing       sync.Once
}

// Start opens the store, starts the executor, and mounts with the first
// backend that works (or runs degraded).
func Start(ctx context.Context, cfg Config) (*Bridge, error) {
	cfg.defaults()
	b := &Bridge{cfg: cfg, log: cfg.Logger, metrics: metrics.NewBridge(cfg.Registerer),
		bodies:  httpguard.NewBodies(cfg.MaxBody, cfg.BodyBudget, cfg.Registerer),
		handles: map[uint64]bool{}, started: time.Now(), stopDog: make(chan struct{}), dogDone: make(chan struct{})}
	var err error
	if cfg.DataDir == "" {
		b.st = store.OpenMemory(store.Options{NameMax: cfg.NameMax})
	} else if b.st, err = store.Open(cfg.DataDir, store.Options{Sync: cfg.Sync, NameMax: cfg.NameMax,
		Logf:  func(f string, a ...any) { b.log.Info(fmt.Sprintf(f, a...), "component", "store") },
		Warnf: func(f string, a ...any) { b.log.Warn(fmt.Sprintf(f, a...), "component", "store") },
	}); err != nil {
		return nil, err
	}
	b.reportRecovery()
	// A bridge that runs as another user than root (the container's uid
	// 1000) owns its store's root, or its own executor could not write there.
	if uid := os.Geteuid(); uid != 0 {
		if err := b.st.OwnRoot(uint32(uid), uint32(os.Getegid())); err != nil {
			b.st.Close()
			return nil, fmt.Errorf("give the store root to uid %d: %w", uid, err)
		}
	}
	// The executor first: forking after the mount is up is what deadlocks.
	if b.exec, err = b.startExecutor(); err != nil {
		b.st.Close()
		return nil, err
	}
	b.metrics.Executors.Inc()
	b.audit = storeexec.New(b.st)
	b.active = b.mountFirstWorking()
	if b.active == Degraded {
		b.exec.stop(ctx)
		b.exec = nil
		b.direct = storeexec.New(b.st)
		b.log.Error("NO FUSE MOUNT: running DEGRADED, ops execute on the store directly; results no longer include a FUSE library",
			"backend", cfg.Backend, "fallback", cfg.Fallback)
	} else if err := b.exec.control(ctx, ctlAttach, cfg.MountDir); err != nil {
		close(b.dogDone)
		b.Close(ctx)
		return nil, fmt.Errorf("attach executor to %s: %w", cfg.MountDir, err)
	}
	if b.exec != nil {
		go b.watchExecutor()
	} else {
		close(b.dogDone)
	}
	os.Setenv(EnvActiveBackend, b.active)
	b.metrics.Active.WithLabelValues(b.active, cfg.Role).Set(1)
	b.metrics.Init(b.active, fsop.KindNames())
	if cfg.InjectDivergence > 0 {
		b.log.Warn("INJECTING DIVERGENCE: a fraction of read results will be corrupted (demo/test only)", "rate", cfg.InjectDivergence)
	}
	b.log.Info("bridge ready", "active_backend", b.active, "role", cfg.Role, "mount", cfg.MountDir, EnvActiveBackend, b.active)
	return b, nil
}

// mountFirstWorking tries the backend, then the fallback; "degraded" if
// neither mounts.
func (b *Bridge) mountFirstWorking() string {
	for _, name := range []string{b.cfg.Backend, b.cfg.Fallback} {
		if name == "" {
			continue
		}
		if err := b.mount(name); err != nil {
			b.log.Warn("backend unusable", "backend", name, "err", err)
			continue
		}
		return name
	}
	return Degraded
}

func (b *Bridge) mount(name string) error {
	mount, ok := b.cfg.Backends[name]
	if !ok {
		return fmt.Errorf("unknown FUSE backend %q", name)
	}
	if b.cfg.MountDir == "" {
		return errors.New("no mount directory configured")
	}
	unmount, done, err := mount(b.cfg.MountDir, b.st, b.cfg.Mount)
	if err != nil {
		return err
	}
	b.unmount, b.done = unmount, done
	return nil
}

// Active is the backend in use: bazil, gofuse or degraded.
func (b *Bridge) Active() string { return b.active }

// Store is the bridge's store (for tests and the snapshot endpoints).
func (b *Bridge) Store() *store.Store { return b.st }

// State is the abstract state of a path (storeexec.Executor.State), read from
// the store, not through the mount: the proxy's read-back check after a
// mutation. arg is fsop.StateArg: with a range, the SHA-256 of that range
// of a regular file's content follows the whole content's in Value. A path
// that is not valid is errRefused.
func (b *Bridge) State(arg string) (fsop.Result, error) {
	path, off, n, err := fsop.ParseStateArg(arg)
	if err != nil {
		return fsop.Result{}, fmt.Errorf("%w: %w", errRefused, err)
	}
	op := fsop.Op{Kind: fsop.Lstat, Path: path}
	if err := op.Validate(); err != nil {
		return fsop.Result{}, fmt.Errorf("%w: %w", errRefused, err)
	}
	b.opsMu.RLock()
	defer b.opsMu.RUnlock()
	res, err := b.audit.State(op.Path)
	if err != nil {
		return res, fmt.Errorf("%w: %w", errRefused, err)
	}
	if n > 0 && len(res.Value) == sha256.Size && res.Stat != nil {
		res.Value = append(res.Value, b.rangeDigest(res.Stat, off, n)...)
	}
	return res, nil
}

// rangeDigest is the SHA-256 of n bytes of the file a's content from off
// (off < 0: its last n bytes), read from the store.
func (b *Bridge) rangeDigest(a *fsop.Attr, off, n int64) []byte {
	if off < 0 {
		off = max(a.Size-n, 0)
	}
	n = max(min(n, a.Size-off), 0)
	h := sha256.New()
	buf := make([]byte, min(n, 1<<20))
	for done := int64(0); done < n; {
		k, err := b.st.ReadAt(a.Ino, buf[:min(int64(len(buf)), n-done)], off+done)
		if k == 0 || err != nil {
			break
		}
		h.Write(buf[:k])
		done += int64(k)
	}
	return h.Sum(nil)
}

// Exec runs one validated op and returns its result. errRefused means a
// bad request, errFailed that the bridge could not run it.
func (b *Bridge) Exec(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
	start := time.Now()
	b.rlockExec()
	res, err := b.execLocked(ctx, op, false)
	b.opsMu.RUnlock()
	if err == nil {
		b.injection().apply(&res)
	}
	result := opResult(&res, err)
	b.count(op.Kind, result, time.Since(start))
	if result == metrics.ResultOK && (op.Kind == fsop.Open || op.Kind == fsop.Close) {
		b.trackHandle(op.Kind, op.Handle)
	}
	if errors.Is(err, errFailed) && !errors.Is(err, context.Canceled) {
		b.log.Error("op failed", "op", op.Kind, "path", op.Path, "err", err)
	}
	return res, err
}

// execLocked runs op; opsMu is held. Client ops (probe false) may not touch
// the probe's reserved name. A write_file is one atomic group in the store
// (store.BeginGroup): the kernel turns it into a create or truncate and
// writes, and after a crash in the middle the file must be as it was, not
// created empty; the op is answered once the group's end is durable.
func (b *Bridge) execLocked(ctx context.Context, op *fsop.Op, probe bool) (fsop.Result, error) {
	if op.Kind != fsop.WriteFile {
		return b.execOne(ctx, op, probe)
	}
	g := b.st.BeginGroup(op.Path)
	res, err := b.execOne(ctx, op, probe)
	if gerr := g.End(); gerr != nil && err == nil {
		err = fmt.Errorf("%w: %v", errFailed, gerr)
	}
	return res, err
}

// execOne runs op (execLocked).
func (b *Bridge) execOne(ctx context.Context, op *fsop.Op, probe bool) (fsop.Result, error) {
	if !probe && isReserved(op) {
		return fsop.Result{}, fmt.Errorf("%w: %s is reserved for the bridge's readiness probe", errRefused, probeName)
	}
	if b.direct != nil {
		res, err := b.direct.Exec(op)
		if err != nil {
			return res, fmt.Errorf("%w: %v", errRefused, err)
		}
		if !probe {
			hideProbe(op, &res)
		}
		return res, nil
	}
	ex := b.exec
	f := b.flights.begin()
	res, err := ex.exec(ctx, op)
	b.flights.end(f)
	if err != nil && ex.hung.Load() && ctx.Err() == nil {
		// The watchdog killed it: say why rather than "executor died".
		return res, fmt.Errorf("%w: executor hung (%s): replaced", errFailed, ex.hungWhy())
	}
	if err == nil && !probe {
		hideProbe(op, &res)
	}
	return res, err
}

// rlockExec takes opsMu shared, first replacing the executor if an earlier
// op found it hung: otherwise an op arriving before the replacement
// goroutine holds opsMu would be sent to the hung executor too, and fail
// after another full op timeout.
func (b *Bridge) rlockExec() {
	b.opsMu.RLock()
	if ex := b.exec; ex != nil && ex.hung.Load() {
		b.opsMu.RUnlock()
		b.replaceExecutor(ex) // returns at once if it was replaced already
		b.opsMu.RLock()
	}
}

// replaceExecutor kills a hung executor and starts another. The new one
// is started while the mount is served: safe because it inherits no file
// on the mount and starts in "/" (go-fuse fs/api.go, "Deadlocks").
func (b *Bridge) replaceExecutor(hung *executorProc) {
	hung.hung.Store(true)
	hung.kill() // first: ops waiting on it fail and give back opsMu
	b.opsMu.Lock()
	defer b.opsMu.Unlock()
	if b.exec != hung {
		return // already replaced
	}
	b.log.Error("executor hung: killed, replacing it; its open handles are lost", "why", hung.hungWhy())
	ex, err := b.startExecutor()
	if err != nil {
		b.log.Error("cannot start a new executor", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.OpTimeout)
	defer cancel()
	if err := ex.control(ctx, ctlAttach, b.cfg.MountDir); err != nil {
		b.log.Error("cannot attach the new executor", "err", err)
	}
	b.exec = ex
	b.metrics.Executors.Inc()
	b.hmu.Lock()
	clear(b.handles)
	b.metrics.Handles.Set(0)
	b.hmu.Unlock()
}

// count counts an op's outcome in the metrics (its duration if it ran).
func (b *Bridge) count(kind fsop.Kind, result string, d time.Duration) {
	b.metrics.Operations.WithLabelValues(b.active, string(kind), result).Inc()
	if result == metrics.ResultOK || result == metrics.ResultErrno {
		b.metrics.Duration.WithLabelValues(b.active, string(kind)).Observe(d.Seconds())
	}
}

// trackHandle notes a successful open or close of handle.
// startExecutor starts an executor process for this bridge.
func (b *Bridge) startExecutor() (*executorProc, error) {
	env := []string{envMaxFrame + "=" + strconv.FormatInt(b.cfg.MaxBody, 10)}
	if b.cfg.InjectDivergence > 0 {
		env = append(env, envInject+"="+b.injection().String())
	}
	return startExecutor(env, b.fromExecutor)
}

func (b *Bridge) trackHandle(kind fsop.Kind, handle uint64) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	if kind == fsop.Open {
		b.handles[handle] = true
	} else {
		delete(b.handles, handle)
	}
	b.metrics.Handles.Set(float64(len(b.handles)))
}

// injection is Config.InjectDivergence from InjectAfter on.
func (b *Bridge) injection() injection {
	return injection{rate: b.cfg.InjectDivergence, from: b.started.Add(b.cfg.InjectAfter)}
}

// RunCommand runs argv with LIGHTHOUSE_ACTIVE_FUSE_BACKEND in its
// environment, outside the mount (the bridge must never exec from it).
func (b *Bridge) RunCommand(ctx context.Context, argv []string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), EnvActiveBackend+"="+b.active)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// Close finishes running ops, closes handles, unmounts and flushes the
// store's log, within ctx.
func (b *Bridge) Close(ctx context.Context) error {
	// Frames connections first: their running ops hold opsMu shared, or
	// run in the executor.
	errs := []error{b.frames.shutdown(ctx), b.drainHanded(ctx)}
	b.closing.Do(func() { close(b.stopDog) })
	<-b.dogDone
	b.opsMu.Lock()
	defer b.opsMu.Unlock()
	if b.exec != nil {
		b.exec.control(ctx, ctlCloseAll, "")
		b.exec.stop(ctx)
		b.exec = nil
	}
	if b.direct != nil {
		errs = append(errs, b.direct.Close())
	}
	if b.unmount != nil {
		errs = append(errs, b.unmount())
		select {
		case <-b.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("serve loop did not end: %w", ctx.Err()))
		}
		b.unmount = nil
	}
	errs = append(errs, b.st.Close())
	b.metrics.Active.WithLabelValues(b.active, b.cfg.Role).Set(0)
	return errors.Join(errs...)
}
