// Package bench is Lighthouse's benchmark suite: the same filesystem ops,
// measured in one run on every layer of the harness, from a plain local
// directory to the front proxy mirroring to both bridges.
//
// # Targets
//
//   - tmpdir: a local temporary directory through sysexec (the floor).
//   - store: storeexec.Executor on a memory store, in this process (no kernel).
//   - bazil-mount, gofuse-mount: sysexec on a mount served by a
//     `lighthouse mount` child process (one kernel round trip to user space
//     per FUSE request).
//   - bazil-bridge, gofuse-bridge: bridgeclient (binary frames, as the proxy
//     uses) to a `lighthouse bridge` child; bazil-bridge-http is the same
//     bazil bridge through its JSON API (POST /v1/ops).
//   - proxy-mirror: proxy.New in this process over bridgeclients to both
//     bridges, the primary (bazil) serving, mirroring to the shadow
//     (go-fuse) with the proxy's defaults (read-back of every mutation).
//   - proxy-nomirror: the same proxy with mirroring off. The proxy has no
//     switch for that, and this package adds none: its shadow is a detached
//     bridge that answers every call "unavailable" at once, so the proxy
//     marks it stale on the first op and from then on runs exactly its
//     serving path (admission, conflict keys, the serving bridge's
//     sequencer, metrics) without mirroring, as it does while a real shadow
//     is stale.
//
// This process never makes a syscall on a mount it serves: every mount is
// served by a child process, and everything started is stopped and
// unmounted when Run returns, also on a cancelled context or an error.
//
// # Noise
//
// The machines are shared and noisy, so absolute times are only indicative;
// what the suite compares are ratios of medians measured in the same run
// (go-fuse/bazil, proxy/direct, mount/tmpdir, bridge/mount), with the
// targets interleaved in rounds (every target runs a slice of the
// iterations of an op, in a rotating order, before any runs the next
// slice) so that the targets of a ratio see the same background load. Compare checks a run's ratios against
// a baseline.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Target names.
const (
	TargetTmpdir          = "tmpdir"
	TargetStore           = "store"
	TargetBazilMount      = "bazil-mount"
	TargetGofuseMount     = "gofuse-mount"
	TargetBazilBridge     = "bazil-bridge"
	TargetGofuseBridge    = "gofuse-bridge"
	TargetBazilBridgeHTTP = "bazil-bridge-http"
	TargetProxyMirror     = "proxy-mirror"
	TargetProxyNoMirror   = "proxy-nomirror"
	TargetProxyHTTP       = "proxy-http"
)

// AllTargets lists every target, in the order tables show them.
var AllTargets = []string{TargetTmpdir, TargetStore, TargetBazilMount, TargetGofuseMount,
	TargetBazilBridge, TargetGofuseBridge, TargetBazilBridgeHTTP, TargetProxyMirror, TargetProxyNoMirror, TargetProxyHTTP}

// Config configures a run. Zero values get the documented defaults.
type Config struct {
	// Exe is the lighthouse binary, started as `lighthouse mount` and
	// `lighthouse bridge` children; needed by every target but tmpdir and
	// store.
	Exe string
	// Dir is the working directory (temporary directory, mount points,
	// children's logs). "" makes a temporary one, removed at the end unless
	// the run failed (the logs stay for a look).
	Dir string
	// Targets to measure (default AllTargets) and Ops to run on each
	// (default AllOps), in any order: they run in the canonical order.
	Targets, Ops []string
	// Iterations measured and Warmup unmeasured iterations per op type,
	// target and concurrency (defaults 1000 and 100); shared by the
	// concurrent clients.
	Iterations, Warmup int
	// Concurrency lists the numbers of concurrent clients (default 1, 4, 16).
	Concurrency []int
	// Rounds is how many slices the iterations of an op are measured in,
	// interleaved across targets (default 10; fewer when a client would get
	// fewer than 20 iterations of a slice).
	Rounds int
	// SeqSize and SeqBlock shape the large sequential write and read:
	// SeqSize bytes in SeqBlock writes, then read back (defaults 64 MiB and
	// 1 MiB), split across the concurrent clients.
	SeqSize, SeqBlock int64
	// Cached leaves the kernel's page cache on for the mounts (the
	// children's default). Off (the default) mounts with direct I/O, so
	// every read and write reaches the library, as in MEASURED.md's
	// "uncached" column; entry and attribute timeouts are 0 either way.
	Cached bool
	// ReadbackRate is proxy-mirror's read-back rate (0 means
	// proxy.DefaultReadbackRate, as for `lighthouse proxy`; negative: none).
	ReadbackRate float64
	// Lag, if positive, also runs the lagging-shadow scenario for that
	// long: proxy memory while the shadow falls behind (see LagResult).
	Lag time.Duration
	// LagDelay is what the lagging shadow sleeps per op, one op at a time
	// (default 5 ms); LagClients the clients writing through the proxy
	// meanwhile (default 16).
	LagDelay   time.Duration
	LagClients int
	// CPUs, if set, pins this process, and so the children it starts, to
	// these CPUs. One CPU takes cross-CPU wake-ups (an idle virtual CPU
	// woken by an interrupt) out of every round trip: the largest source of
	// run-to-run spread of the ratios on the shared 2-core machines, which
	// is what a regression check wants. Concurrency then only interleaves.
	CPUs []int
	// ProfileDir, if set, receives cpu.pprof (the whole measurement, samples
	// labelled target and op) and heap.pprof (at the end) of this process.
	ProfileDir string
	// Progress, if set, shows the progress (internal/progress: a bar on a
	// terminal, a line each tenth of the way otherwise).
	Progress io.Writer
	// Log receives status lines (what starts, what stops); nil discards.
	Log io.Writer
}

func (c *Config) defaults() error {
	if len(c.Targets) == 0 {
		c.Targets = AllTargets
	}
	if len(c.Ops) == 0 {
		c.Ops = AllOps
	}
	if c.Iterations == 0 {
		c.Iterations = 1000
	}
	if c.Warmup == 0 {
		c.Warmup = 100
	}
	if len(c.Concurrency) == 0 {
		c.Concurrency = []int{1, 4, 16}
	}
	if c.Rounds == 0 {
		c.Rounds = 10
	}
	if c.SeqSize == 0 {
		c.SeqSize = 64 << 20
	}
	if c.SeqBlock == 0 {
		c.SeqBlock = 1 << 20
	}
	if c.LagDelay == 0 {
		c.LagDelay = 5 * time.Millisecond
	}
	if c.LagClients == 0 {
		c.LagClients = 16
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	c.Log = &syncWriter{w: c.Log} // children start in parallel
	var errs []error
	for _, t := range c.Targets {
		if !slices.Contains(AllTargets, t) {
			errs = append(errs, fmt.Errorf("unknown target %q (targets: %s)", t, strings.Join(AllTargets, ", ")))
		}
	}
	for _, o := range c.Ops {
		if specByName(o) == nil {
			errs = append(errs, fmt.Errorf("unknown op %q (ops: %s)", o, strings.Join(AllOps, ", ")))
		}
	}
	for _, n := range c.Concurrency {
		if n < 1 || n > 1024 {
			errs = append(errs, fmt.Errorf("concurrency %d outside 1..1024", n))
		}
	}
	switch {
	case c.Iterations < 1 || c.Warmup < 0:
		errs = append(errs, fmt.Errorf("iterations %d / warm-up %d: want at least 1 and 0", c.Iterations, c.Warmup))
	case c.Rounds < 1:
		errs = append(errs, fmt.Errorf("rounds %d: want at least 1", c.Rounds))
	case c.SeqBlock < 1 || c.SeqBlock > 16<<20 || c.SeqSize < c.SeqBlock:
		errs = append(errs, fmt.Errorf("sequential block %d and size %d: want 1 B..16 MiB blocks and a size of at least one block", c.SeqBlock, c.SeqSize))
	case c.Lag < 0 || c.LagClients < 1:
		errs = append(errs, errors.New("lag duration and clients must be positive"))
	}
	return errors.Join(errs...)
}

// rounds is the number of interleaved slices for conc clients.
func (c *Config) rounds(conc int) int {
	return max(1, min(c.Rounds, c.Iterations/(conc*20)))
}

// needs reports whether any selected target needs the named child.
func (c *Config) needs(targets ...string) bool {
	for _, t := range targets {
		if slices.Contains(c.Targets, t) {
			return true
		}
	}
	return false
}

// Machine describes where a run was made.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	Kernel     string `json:"kernel"`
	GoVersion  string `json:"go_version"`
	Hostname   string `json:"hostname,omitempty"`
}

func thisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Hostname, _ = os.Hostname()
	return m
}

// Run measures every selected op on every selected target at every
// concurrency and returns the report. Everything it starts is stopped
// before it returns; ctx cancels the run (the error is then ctx's).
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if len(cfg.CPUs) > 0 {
		if err := pin(cfg.CPUs); err != nil {
			return nil, err
		}
	}
	e, err := newEnv(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		// An interrupted run leaves nothing behind; a failed one keeps the
		// children's logs.
		err = errors.Join(err, e.close(err != nil && ctx.Err() == nil))
	}()
	r := &runner{cfg: cfg, env: e}
	if err = r.start(ctx); err == nil {
		rep, err = r.run(ctx)
	}
	if err != nil && ctx.Err() == nil {
		// An op that failed may have been a child's death: say so.
		for _, c := range e.children {
			err = errors.Join(err, c.alive())
		}
	}
	return rep, err
}

// pin sets the CPU affinity of every thread of this process (threads and
// processes started later inherit it) and GOMAXPROCS to match.
func pin(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c >= len(set)*64 {
			return fmt.Errorf("pin to CPU %d: no such CPU", c)
		}
		set.Set(c)
	}
	// A thread the runtime starts while the tasks are listed inherits the
	// mask of its creator, set or not yet: a few passes catch it.
	for pass := 0; pass < 3; pass++ {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("pin to CPUs %v: %w", cpus, err)
			}
		}
	}
	runtime.GOMAXPROCS(len(cpus))
	return nil
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
