// Package workload is Lighthouse's built-in traffic: a deterministic,
// seeded imitation of people working on a source tree, sent as fsop ops
// through an Exec (usually HTTPExec against the front proxy's API).
//
// # Shape
//
// A setup phase builds the tree under Config.Root: a README, an immutable
// release directory with a `latest` symlink to it, a shared directory (a
// shared README and changelog), a log and scratch directory, and packages of
// source files in nested directories (20 packages of 15 files of a few KiB
// at the default size). Then every client loops over a weighted mix of
// actions: reads and stats (the most common), directory listings, edits (a
// write at an offset, a truncate, a whole rewrite, an editor's save: write a
// swap file, rename it over the original), appends to its own log and to
// the shared changelog, new files, renames, hard links, unlinks, scratch
// directories, symlinks, chmod/chown/utimens, extended attributes, handle
// sessions (open, pwrite, pread, ftruncate, fsync, close), a lock file
// taken with an exclusive create, statfs and fsync. Every op kind of
// package fsop occurs.
//
// Each client works mostly in its own packages and sometimes reads other
// clients' packages and the shared files, so conflicting ops from
// different clients meet and the proxy's conflict ordering is exercised.
// An errno (ENOENT, EEXIST, ENOTEMPTY from a race between clients, or from
// a file that another client removed) is a normal result and is counted;
// only transport errors (the op did not get a result) are errors.
//
// # Oracle
//
// Each client keeps a model of what it wrote (oracle.go) to the paths only
// it writes: its packages (unless it shares one with a client that has
// none), its log, and the release, which nobody changes after the setup.
// Every read of those paths (read_file, read, pread, stat, lstat,
// readlink) is checked against the model: content, size, existence. An op
// that failed or got no result makes what it touched unknown, so races
// and errors never count as mismatches; a mismatch is an answer no correct
// filesystem could give that client (Result.Mismatches).
//
// # Determinism
//
// Which ops each client sends depends only on Config (seed, clients, ops,
// root), never on results or timing: the op counts by kind are the same on
// every run with the same Config; the errnos, which depend on how clients
// interleave, may vary.
//
// # What is never generated
//
// Symlinks point only at the release directory, which nobody changes after
// setup: the proxy orders ops by the names they use, without resolving
// symlinks (docs/ARCHITECTURE.md), so a read through a symlink of a file
// that is being written could be ordered differently on the two bridges
// and show up as a false divergence. Renames never carry
// RENAME_NOREPLACE/RENAME_EXCHANGE and modes never carry the sticky bit:
// both are known bazil differences (compare/allowlist.yaml) that would
// only add allowed divergences.
package workload

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/internal/contract"
)

// Config sizes a workload. Zero values get the defaults.
type Config struct {
	// Clients run concurrently, each sending one op at a time (default 8).
	Clients int
	// Ops is the total number of ops, the setup phase included
	// (default 30000).
	Ops int
	// Seed selects the op sequence.
	Seed uint64
	// Root is the directory everything lives in, relative to the mount
	// root (default "work").
	Root string
}

// Defaults of Config.
const (
	DefaultRoot = "work"
)

func (c *Config) defaults() error {
	if c.Clients == 0 {
		c.Clients = contract.Clients
	}
	if c.Ops == 0 {
		c.Ops = contract.Ops
	}
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	if c.Clients < 0 || c.Clients > 1024 {
		return fmt.Errorf("workload: %d clients: want 1..1024", c.Clients)
	}
	if c.Ops < 0 {
		return fmt.Errorf("workload: %d ops: want a positive number", c.Ops)
	}
	root, err := fsop.CleanPath(c.Root)
	if err != nil || root == "." {
		return fmt.Errorf("workload: root %q: want a directory below the mount root", c.Root)
	}
	c.Root = root
	return nil
}

// Exec runs one op and returns its result; an error means the op got no
// result (transport failure, refused request, unavailable bridge). It must
// be safe for concurrent use.
type Exec func(ctx context.Context, op *fsop.Op) (fsop.Result, error)

// Percentiles are client-side latencies of one kind of op (or of all).
type Percentiles struct {
	N             int
	P50, P95, P99 time.Duration
	Max           time.Duration
}

// Result summarises a run.
type Result struct {
	// Ops is how many ops were sent, SetupOps of them in the setup phase.
	Ops, SetupOps int
	// Errors counts ops that got no result (Exec returned an error);
	// FirstError is the first of them.
	Errors     int
	FirstError string
	// Errnos counts results by errno ("" is not counted: success);
	// ErrnosByKind the same by op kind.
	Errnos       map[string]int
	ErrnosByKind map[fsop.Kind]map[string]int
	// ByKind counts the ops sent by kind (deterministic for a Config).
	ByKind map[fsop.Kind]int
	// Verified counts the reads whose answer the workload's model of what
	// it wrote determines (oracle.go); Mismatches those whose answer was
	// not that, by class (MismatchContent, ...), with a few examples.
	// Every mismatch is an error a client saw.
	Verified         int
	Mismatches       map[string]int
	MismatchExamples []string
	// Latency is the client-side latency (Exec's round trip) of the ops
	// that got a result, by kind; All of every kind together.
	Latency map[fsop.Kind]Percentiles
	All     Percentiles
	Elapsed time.Duration
}

// maxConsecutiveErrors ends a client that gets no result this many times
// in a row: whatever it talks to is gone.
const maxConsecutiveErrors = 50

// Run runs the workload through exec. progress, if not nil, is called from
// one goroutine (never concurrently) with the number of ops done so far,
// about ten times a second and once at the end. Run returns when every
// client has sent its ops, ctx ends, or a client got no result
// maxConsecutiveErrors times in a row; the Result covers what was sent.
func Run(ctx context.Context, exec Exec, cfg Config, progress func(done int)) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	p := newPlan(cfg)
	setupOps := len(p.rootSetup)
	for _, ops := range p.clientSetup {
		setupOps += len(ops)
	}
	if cfg.Ops < setupOps+cfg.Clients {
		return Result{}, fmt.Errorf("workload: %d ops is too few: the setup of %d packages for %d clients takes %d (want at least %d)",
			cfg.Ops, len(p.pkgs), cfg.Clients, setupOps, setupOps+cfg.Clients)
	}
	mix := cfg.Ops - setupOps

	recs := make([]*recorder, cfg.Clients)
	for i := range recs {
		recs[i] = newRecorder(p.modelOf(i))
	}
	recs[0].model.own(p.at(releaseDir))
	recs[0].model.exact[p.at("latest")] = true
	var done atomic.Int64
	start := time.Now()
	stopProgress := startProgress(progress, &done)

	err := func() error {
		// The top of the tree first, by client 0, then each client's
		// packages, then the mix: every client starts on a complete tree.
		if err := recs[0].run(ctx, exec, p.rootSetup, &done); err != nil {
			return err
		}
		// The release never changes after the setup: every client's
		// reads of it are determined.
		for _, r := range recs[1:] {
			r.model.adopt(recs[0].model, p.at(releaseDir), p.at("latest"))
		}
		g, gctx := errgroup.WithContext(ctx)
		for c := range cfg.Clients {
			g.Go(func() error { return recs[c].run(gctx, exec, p.clientSetup[c], &done) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
		g, gctx = errgroup.WithContext(ctx)
		for c := range cfg.Clients {
			n := mix / cfg.Clients
			if c < mix%cfg.Clients {
				n++
			}
			cl := p.newClient(c)
			g.Go(func() error {
				for n > 0 {
					ops := cl.next(n)
					n -= len(ops)
					if err := recs[c].run(gctx, exec, ops, &done); err != nil {
						return err
					}
				}
				return nil
			})
		}
		return g.Wait()
	}()
	stopProgress()

	res := merge(recs)
	res.SetupOps = setupOps
	res.Elapsed = time.Since(start)
	return res, err
}

// startProgress calls progress with done's value every 100 ms until the
// returned stop is called, which reports a last time.
func startProgress(progress func(int), done *atomic.Int64) (stop func()) {
	if progress == nil {
		return func() {}
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				progress(int(done.Load()))
				return
			case <-t.C:
				progress(int(done.Load()))
			}
		}
	}()
	return func() { close(quit); <-finished }
}

// recorder is one client's counters; only its client writes them.
type recorder struct {
	ops, errors, consecutive int
	firstError               string
	errnos                   map[fsop.Kind]map[string]int
	byKind                   map[fsop.Kind]int
	lat                      map[fsop.Kind][]time.Duration
	model                    *model
	mismatches               map[string]int
	examples                 []string
}

func newRecorder(m *model) *recorder {
	return &recorder{errnos: map[fsop.Kind]map[string]int{}, byKind: map[fsop.Kind]int{}, lat: map[fsop.Kind][]time.Duration{},
		model: m, mismatches: map[string]int{}}
}

// verify checks a result against the client's model, then updates the
// model with the op (err: the op got no result).
func (r *recorder) verify(op *fsop.Op, res fsop.Result, err error) {
	if err == nil {
		if class, what := r.model.check(op, res); class != "" {
			r.mismatches[class]++
			if len(r.examples) < maxMismatchExamples {
				r.examples = append(r.examples, fmt.Sprintf("%s %s: %s: %s", op.Kind, opTarget(op), class, what))
			}
		}
	}
	r.model.apply(op, res, err)
}

// errTooManyErrors ends a client whose ops keep getting no result.
var errTooManyErrors = errors.New("no result for many ops in a row")

// run sends ops one after the other.
func (r *recorder) run(ctx context.Context, exec Exec, ops []fsop.Op, done *atomic.Int64) error {
	for i := range ops {
		if err := ctx.Err(); err != nil {
			return err
		}
		op := ops[i]
		t0 := time.Now()
		res, err := exec(ctx, &op)
		d := time.Since(t0)
		r.ops++
		r.byKind[op.Kind]++
		done.Add(1)
		r.verify(&op, res, err)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				return ctxErr // cut short by the run's end, not an answer missing
			}
			r.errors++
			r.consecutive++
			if r.firstError == "" {
				r.firstError = fmt.Sprintf("%s %s: %v", op.Kind, opTarget(&op), err)
			}
			if err := ctx.Err(); err != nil {
				return err // another client ended the run
			}
			if r.consecutive >= maxConsecutiveErrors {
				return fmt.Errorf("workload: %w (%d), the last: %s %s: %v", errTooManyErrors, r.consecutive, op.Kind, opTarget(&op), err)
			}
			continue
		}
		r.consecutive = 0
		r.lat[op.Kind] = append(r.lat[op.Kind], d)
		if res.Errno != "" {
			m := r.errnos[op.Kind]
			if m == nil {
				m = map[string]int{}
				r.errnos[op.Kind] = m
			}
			m[res.Errno]++
		}
	}
	return nil
}

// MismatchCount is the number of reads that did not match the model.
func (res *Result) MismatchCount() int {
	n := 0
	for _, m := range res.Mismatches {
		n += m
	}
	return n
}

func opTarget(op *fsop.Op) string {
	if op.HandleBased() {
		return fmt.Sprintf("handle %d", op.Handle)
	}
	return op.Path
}

// merge adds up the clients' counters.
func merge(recs []*recorder) Result {
	res := Result{Errnos: map[string]int{}, ErrnosByKind: map[fsop.Kind]map[string]int{},
		ByKind: map[fsop.Kind]int{}, Latency: map[fsop.Kind]Percentiles{}, Mismatches: map[string]int{}}
	lat := map[fsop.Kind][]time.Duration{}
	var all []time.Duration
	for _, r := range recs {
		res.Ops += r.ops
		res.Errors += r.errors
		res.Verified += r.model.checked
		for k, n := range r.mismatches {
			res.Mismatches[k] += n
		}
		for _, e := range r.examples {
			if len(res.MismatchExamples) < maxMismatchExamples {
				res.MismatchExamples = append(res.MismatchExamples, e)
			}
		}
		if res.FirstError == "" {
			res.FirstError = r.firstError
		}
		for k, n := range r.byKind {
			res.ByKind[k] += n
		}
		for k, m := range r.errnos {
			if res.ErrnosByKind[k] == nil {
				res.ErrnosByKind[k] = map[string]int{}
			}
			for e, n := range m {
				res.Errnos[e] += n
				res.ErrnosByKind[k][e] += n
			}
		}
		for k, l := range r.lat {
			lat[k] = append(lat[k], l...)
			all = append(all, l...)
		}
	}
	for k, l := range lat {
		res.Latency[k] = percentiles(l)
	}
	res.All = percentiles(all)
	return res
}

// percentiles sorts l (nearest-rank percentiles).
func percentiles(l []time.Duration) Percentiles {
	if len(l) == 0 {
		return Percentiles{}
	}
	slices.Sort(l)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(l))+0.999999) - 1
		return l[min(max(i, 0), len(l)-1)]
	}
	return Percentiles{N: len(l), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: l[len(l)-1]}
}

// Kinds returns the kinds of res.ByKind, most frequent first (ties by
// name), for reports.
func (res *Result) Kinds() []fsop.Kind {
	kinds := make([]fsop.Kind, 0, len(res.ByKind))
	for k := range res.ByKind {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b fsop.Kind) int {
		if d := res.ByKind[b] - res.ByKind[a]; d != 0 {
			return d
		}
		if a < b {
			return -1
		}
		if a > b {
			return 1
		}
		return 0
	})
	return kinds
}
