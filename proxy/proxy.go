// Package proxy is Lighthouse's front proxy: it sends each filesystem op to
// the bridge that serves it and mirrors it to the other bridge, in the same
// conflict order, and compares the two results.
//
// # Serving path
//
// Exec admits an op (a sequence number and its conflict keys, enqueued on
// both bridges' sequencers under one lock), waits for earlier conflicting
// ops on the serving bridge only, runs the op there and returns its result.
// Nothing on the mirror side can delay it: mirrored ops run on worker
// goroutines of the other bridge.
//
// # Mirror path
//
// The mirror bridge runs the same ops in the same conflict order. When it
// falls behind (queue length, bytes or age past a bound), fails, or
// diverges, it is marked stale: ops stop being mirrored (and are counted as
// skipped), and a resync installs a snapshot of the serving bridge taken at
// a barrier (an op that conflicts with everything), after which mirroring
// resumes from the barrier on.
//
// # Comparison
//
// compare.Judge on every pair of results; a read-back (lstat, and the
// content of small files) of the touched paths after a mutation catches a
// mutation that answers the same but leaves different state. A divergence
// quarantines the touched paths until the next resync, so one bug is
// counted once.
package proxy

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lighthouse-fs/lighthouse/bridgeclient"
	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/metrics"
	"github.com/lighthouse-fs/lighthouse/order"
	"github.com/lighthouse-fs/lighthouse/rollout"
)

// Bridge is what the proxy needs of a bridge. bridgeclient.Client is one;
// errors wrap bridgeclient.ErrRefused (a bad request) or
// bridgeclient.ErrUnavailable (the op may or may not have run).
type Bridge interface {
	Exec(ctx context.Context, op *fsop.Op) (fsop.Result, error)
	// State is the abstract state of path for the read-back check
	// (storeexec.Executor.State, fsop.ControlState); with n > 0 its Value also
	// holds the digest of n bytes from off (fsop.StateRangeDigest).
	State(ctx context.Context, path string, off, n int64) (fsop.Result, error)
	// SnapshotSubtree and RestoreSubtree copy the directory at path and
	// everything below it ("." is the whole store): the resync's copy
	// mechanism (store.SnapshotSubtree). A hard link leaving the subtree
	// is bridgeclient.ErrCrossLink, a path that is not a directory there
	// ErrRefused.
	SnapshotSubtree(ctx context.Context, path string) ([]byte, error)
	RestoreSubtree(ctx context.Context, path string, snap []byte) error
}

// DefaultReadbackRate samples one mutation in ten for the read-back: a
// mutation that leaves a different state is caught within a few of its
// occurrences, at a tenth of the cost of reading back every one.
const DefaultReadbackRate = 0.1

// Errors of Exec.
var (
	ErrRefused     = bridgeclient.ErrRefused
	ErrUnavailable = bridgeclient.ErrUnavailable
)

// errClosed ends a resync the proxy's Close interrupted.
var errClosed = errors.New("proxy closed")

// CandidateRoute routes an op to the shadow bridge (the candidate) when
// serves says so for its path, or the path its handle was opened on.
func CandidateRoute(serves func(key string) bool) func(op *fsop.Op, handlePath string) Side {
	return func(op *fsop.Op, handlePath string) Side {
		key := op.Path
		if op.HandleBased() {
			key = handlePath
		}
		if serves(key) {
			return Shadow
		}
		return Primary
	}
}

// Side names the two bridges.
type Side int

const (
	Primary Side = 0
	Shadow  Side = 1
)

func (s Side) other() Side { return 1 - s }

// Config configures a Proxy. Zero values get the documented defaults.
type Config struct {
	// Primary and Shadow are the two bridges (roles keep their ports and
	// libraries for the whole migration); PrimaryName and ShadowName their
	// backend labels, e.g. "bazil" and "gofuse".
	Primary, Shadow         Bridge
	PrimaryName, ShadowName string
	// Route picks the bridge that serves op. nil: the primary serves
	// everything (the shadow phase). A bridge out of step on the op's
	// paths never serves it: the store of record does.
	Route func(op *fsop.Op, handlePath string) Side
	// Weight is the candidate's serving share (rollout.Controller.Weight);
	// at 1 (the full phase) the candidate is the store of record. nil: 0.
	Weight func() float64
	// Rules are the comparison rules (compare.Rules); the zero value
	// ignores statfs counts, directory sizes and unset mtimes.
	Rules compare.Rules
	// Allowlist holds the known differences; nil means compare.DefaultAllowlist().
	Allowlist compare.Allowlist
	// ReadbackRate is the fraction of mutations whose touched paths are
	// read back on both bridges (0 means DefaultReadbackRate; negative:
	// none). A read-back is one Bridge.State per touched path on each
	// bridge, answered from the bridge's store (docs/performance.md).
	ReadbackRate float64
	// Mirror bounds: past any of them the mirror bridge is marked stale.
	// Defaults 10000 ops, 256 MiB, 10 s.
	MirrorMaxOps   int
	MirrorMaxBytes int64
	MirrorMaxLag   time.Duration
	// MirrorShare is the share of the tree, by unit (share.go), mirrored to
	// the bridge that is not the store of record (the rest is served by the
	// record alone and counted as sampled out): 0 or 1 mirrors everything.
	// MirrorShareAuto starts at 1 and adapts it to what that bridge keeps
	// up with (share.go); ShareRaiseAfter is how long its queue must stay
	// short before the share doubles (default 10 s).
	// MirrorShareDepth is how many leading path components make a unit of
	// the share (default 2: "work/pkg" in a tree whose root holds one
	// project directory; 1: the root's own entries).
	MirrorShare      float64
	MirrorShareAuto  bool
	MirrorShareDepth int
	ShareRaiseAfter  time.Duration
	// MirrorWorkers run mirrored ops and read-backs per bridge (default 64).
	MirrorWorkers int
	// OpTimeout bounds one op on a bridge (default 30 s).
	OpTimeout time.Duration
	// ServeFallback is how long an op served by the bridge that is not the
	// store of record (a canary candidate's share) may go unanswered
	// before the client gets the record's answer to it instead (the record
	// runs every op as a mirror); the late bridge is then marked out of
	// step, so it serves nothing until a resync. Its answer, when it
	// comes, is still compared. Default 5 s; negative: never.
	ServeFallback time.Duration
	// CloseGrace bounds how long Close waits for the ops in flight to be
	// compared (a resync they wait behind included) before it gives up on
	// them and counts them as skipped, shutdown (default 5 s).
	CloseGrace time.Duration
	// ResyncInterval is the least time between two resyncs of a bridge
	// that diverged (default 2 s); lagging or dead bridges resync as soon
	// as they can.
	ResyncInterval time.Duration
	// OnDivergence, if set, sees every divergence after it is counted and
	// logged.
	OnDivergence func(Divergence)
	// OnAPIChange, if set, gets the names each mutation a client of the
	// HTTP API (Handler) made may have changed, once it is answered and
	// before the client hears it: a front mount that lets the kernel cache
	// drops them (front.Mounted.Forget). Exec's own callers are not told.
	OnAPIChange func(paths []string)
	// Observe, if set, sees every op's outcome from the candidate's (the
	// shadow bridge's) point of view: the rollout controller's input.
	Observe func(rollout.Observation)
	// DivergenceLog receives one JSON line per divergence; Record one JSON
	// line per op. Either may be nil.
	DivergenceLog, Record io.Writer
	// Registerer receives the proxy's metrics; nil means a private registry.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Allowlist == nil {
		c.Allowlist = compare.DefaultAllowlist()
	}
	if c.ReadbackRate == 0 {
		c.ReadbackRate = DefaultReadbackRate
	}
	if c.MirrorMaxOps == 0 {
		c.MirrorMaxOps = 10000
	}
	if c.MirrorMaxBytes == 0 {
		c.MirrorMaxBytes = 256 << 20
	}
	if c.MirrorMaxLag == 0 {
		c.MirrorMaxLag = 10 * time.Second
	}
	if c.MirrorShare <= 0 || c.MirrorShare > 1 || c.MirrorShareAuto {
		c.MirrorShare = 1
	}
	if c.MirrorShareDepth <= 0 {
		c.MirrorShareDepth = 2
	}
	if c.ShareRaiseAfter == 0 {
		c.ShareRaiseAfter = 10 * time.Second
	}
	if c.MirrorWorkers == 0 {
		c.MirrorWorkers = 64
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = 30 * time.Second
	}
	if c.ServeFallback == 0 {
		c.ServeFallback = 5 * time.Second
	}
	if c.ResyncInterval == 0 {
		c.ResyncInterval = 2 * time.Second
	}
	if c.CloseGrace == 0 {
		c.CloseGrace = 5 * time.Second
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.PrimaryName == "" {
		c.PrimaryName = "primary"
	}
	if c.ShadowName == "" {
		c.ShadowName = "shadow"
	}
}

// side is one bridge and everything the proxy keeps about it.
type side struct {
	idx  Side
	name string // backend label
	role string
	b    Bridge
	seq  *order.Sequencer
	work *workQueue
	// yielding: the bridge was last told it only mirrors (nice 19), so
	// what it serves meanwhile is no latency sample (priority.go)
	yielding atomic.Bool

	// guarded by Proxy.mu
	scopes  []*scope  // subtrees out of step here, waiting for (or held from) a resync
	settled []*scope  // resynced scopes that ops admitted before their barrier may still touch
	pending list.List // mirrored recs not finished here, in admission order
	bytes   int64     // payload bytes of pending
	// in and done count the mirrored ops queued and finished here (the
	// adaptive mirror share's measure of what the bridge keeps up with).
	in, done uint64
}

// Proxy is a running front proxy. Exec is safe for concurrent use.
type Proxy struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics.Proxy
	judge   compare.Judge
	sides   [2]*side

	mu     sync.Mutex // admission order: seq, tickets on both sequencers, handles, scopes
	seqNo  uint64
	record Side // the store of record: never resynced from the other side
	pinned pins // paths whose mtime was set explicitly: compared
	// rbPending are the read-backs not arrived yet, by path: later ops on
	// those paths are judged after them.
	rbPending, rbPendingDir map[string][]*readback // by path, and by parent directory
	paused                  bool                   // the record lags as a mirror: the other bridge serves nothing
	handles                 map[uint64]*handleInfo
	history                 *history
	aliases                 *order.Aliases
	share                   mirrorShare

	resyncKick chan struct{}
	open       openRecs // admitted and not yet accounted
	logs       *logWriters
	stats      Stats
	closed     chan struct{}
	stop       context.Context // canceled by Close: mirrored work in flight ends
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	warned    sync.Map // warning key -> time.Time it was last logged
	unordered bool     // tests only: no conflict ordering, to prove the tests can see misordering
	noUndo    bool     // tests only: a refused rename is not undone on the mirror (undo.go)
}

type handleInfo struct {
	path  string
	flags int     // the open flags, to reopen it on a resynced bridge
	gone  [2]bool // not open on that bridge (its open was not mirrored there, or a resync closed it)
	// moved: path may no longer name the handle's file (a rename or an
	// unlink of it was admitted since the open): a resync cannot reopen
	// the handle by its path, which might open another file.
	moved bool
}

// New starts a proxy over two bridges.
func New(cfg Config) (*Proxy, error) {
	if cfg.Primary == nil || cfg.Shadow == nil {
		return nil, errors.New("proxy needs a primary and a shadow bridge")
	}
	cfg.defaults()
	p := &Proxy{cfg: cfg, log: cfg.Logger, metrics: metrics.NewProxy(cfg.Registerer), judge: compare.Judge{Rules: cfg.Rules, Allowlist: cfg.Allowlist},
		handles: map[uint64]*handleInfo{}, history: newHistory(), aliases: order.NewAliases(), resyncKick: make(chan struct{}, 1),
		closed: make(chan struct{}), share: mirrorShare{auto: cfg.MirrorShareAuto, pinned: cfg.MirrorShare, share: cfg.MirrorShare}}
	p.stop, p.cancel = context.WithCancel(context.Background())
	p.sides[Primary] = &side{idx: Primary, name: cfg.PrimaryName, role: "primary", b: cfg.Primary, seq: order.NewSequencer(), work: newWorkQueue()}
	p.sides[Shadow] = &side{idx: Shadow, name: cfg.ShadowName, role: "shadow", b: cfg.Shadow, seq: order.NewSequencer(), work: newWorkQueue()}
	// Counters exist at 0 from the start, so the first divergence of an op
	// and class is an increase that rates and alerts can see.
	p.metrics.Init([]string{cfg.PrimaryName, cfg.ShadowName}, fsop.KindNames())
	for _, k := range fsop.Kinds() {
		p.metrics.Compared.WithLabelValues(string(k))
		for _, class := range compare.Classes {
			p.metrics.Divergence.WithLabelValues(string(k), class)
		}
	}
	for _, s := range p.sides {
		p.metrics.Active.WithLabelValues(s.name, s.role).Set(1)
		p.metrics.Stale.WithLabelValues(s.name).Set(0)
		p.metrics.MirrorShare.WithLabelValues(s.name).Set(1)
		for _, reason := range SkipReasons {
			p.metrics.Skipped.WithLabelValues(s.name, reason)
		}
		// Every series the dashboard reads exists from the first scrape.
		p.metrics.ResyncHeld.WithLabelValues(s.name).Set(0)
		p.metrics.ResyncBytes.WithLabelValues(s.name)
		for _, result := range []string{"ok", "failed"} {
			p.metrics.Resyncs.WithLabelValues(s.name, result)
		}
		for _, result := range []string{"counted", "expected", "uncounted"} {
			p.metrics.AuditDifferences.WithLabelValues(s.name, result)
		}
		for i := 0; i < cfg.MirrorWorkers; i++ {
			p.wg.Add(1)
			go func(w *workQueue) { defer p.wg.Done(); w.run() }(s.work)
		}
	}
	p.metrics.MirrorShare.WithLabelValues(p.sides[Shadow].name).Set(cfg.MirrorShare)
	p.noteShare(cfg.MirrorShare)
	p.logs = newLogWriters(cfg.DivergenceLog, cfg.Record, p.metrics)
	p.wg.Add(3)
	go func() { defer p.wg.Done(); p.resyncLoop() }()
	go func() { defer p.wg.Done(); p.lagLoop() }()
	go func() { defer p.wg.Done(); p.priorityLoop() }()
	return p, nil
}

// Drain waits until every op admitted so far is accounted, compared or
// skipped, or ctx ends.
func (p *Proxy) Drain(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for p.Stats().Pending > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Close waits up to CloseGrace for the ops in flight to be compared, then
// cancels the mirrored work left, stops the proxy's workers, accounts for
// every op not compared by then (SkipShutdown) and flushes the logs. Ops
// still being served (Exec) finish on their own.
func (p *Proxy) Close() error {
	select {
	case <-p.closed:
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.CloseGrace)
	p.Drain(ctx)
	cancel()
	close(p.closed)
	p.cancel()
	for _, s := range p.sides {
		s.work.close()
	}
	p.wg.Wait()
	p.accountShutdown()
	return p.logs.close()
}

// rec is one admitted op and its results on both bridges.
type rec struct {
	seq      uint64
	op       fsop.Op
	client   string
	hpath    string
	paths    []string
	serving  Side
	mirrored bool
	// resyncAfter is a scope to resync right after r is enqueued (r
	// reached it from outside the mirror share). Admission only.
	resyncAfter *scope
	// undone: r (a rename the serving bridge refused) was undone on the
	// mirror that performed it (undo.go): the states are equal again.
	undone   bool
	admitted time.Time
	size     int64
	niced    bool // the serving bridge was told it only mirrors (nice 19) while r ran there

	// answered is who answered the client: 0 nobody yet, 1 the serving
	// bridge, 2 the store of record in its place (ServeFallback). recDone,
	// set when a fallback is possible, is closed when the record's result
	// is in.
	answered atomic.Int32
	recDone  chan struct{}

	tickets   [2]*order.Ticket
	dur       [2]time.Duration
	res       [2]fsop.Result
	err       [2]error
	remaining atomic.Int32
	elem      *list.Element // in the mirror side's pending list

	readback *readback
	hist     *histOp // r in the history
	mtime    bool    // a stat of a path whose mtime was set explicitly: compared
	fault    string  // the backend the read-back's evidence blames for a divergence

	// The op's outcome: compared (skip "") with class "" (equal) or a
	// divergence class, or not compared, and why. Accounted once.
	class, skip string
	judged      atomic.Bool // class and skip are set: only a read-back is missing
	accounted   atomic.Bool
}

// Exec runs op (validated) through the serving bridge and mirrors it. The
// error wraps ErrRefused or ErrUnavailable.
func (p *Proxy) Exec(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
	_, res, err := p.exec(ctx, op)
	return res, err
}

// exec is Exec, and returns the op's record too.
func (p *Proxy) exec(ctx context.Context, op *fsop.Op) (*rec, fsop.Result, error) {
	start := time.Now()
	r, ready := p.admit(ctx, op)
	reply := func(s Side) (*rec, fsop.Result, error) {
		res, err := p.reply(r, s, start)
		return r, res, err
	}
	if r.recDone == nil {
		p.serve(ctx, r, ready)
		return reply(r.serving)
	}
	served := make(chan struct{})
	go func() {
		p.serve(ctx, r, ready)
		close(served)
	}()
	timer := time.NewTimer(p.cfg.ServeFallback)
	defer timer.Stop()
	select {
	case <-served:
	case <-timer.C:
		select {
		case <-served:
		case <-r.recDone:
			if p.fallBack(r) {
				return reply(r.serving.other())
			}
			<-served // the serving bridge answered meanwhile
		}
	}
	return reply(r.serving)
}

// serve runs r on its serving bridge once its turn comes there, counts it
// as served unless the record already answered in its place, and records
// the result.
func (p *Proxy) serve(ctx context.Context, r *rec, ready chan struct{}) {
	sv := p.sides[r.serving]
	<-ready
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.OpTimeout)
	t0, niced := time.Now(), sv.yielding.Load()
	res, err := sv.b.Exec(octx, &r.op)
	r.dur[r.serving], r.niced = time.Since(t0), niced || sv.yielding.Load()
	cancel()
	if r.answered.CompareAndSwap(0, 1) {
		p.stats.add(func(s *Stats) { s.Ops++; s.served[r.serving]++ })
	}
	p.finish(r, r.serving, res, err)
}

// fallBack gives the client the store of record's answer to r, whose
// serving bridge has not answered within ServeFallback, and marks that
// bridge out of step from r on. False if the serving bridge answered first.
func (p *Proxy) fallBack(r *rec) bool {
	if !r.answered.CompareAndSwap(0, 2) {
		return false
	}
	rs := r.serving.other()
	if r.err[rs] == nil && r.res[rs].Errno == "" {
		r.hist.acked.Store(true) // the client is told the record's answer
	}
	p.stats.add(func(s *Stats) { s.Ops++; s.served[rs]++; s.Fallbacks++ })
	p.metrics.Fallbacks.WithLabelValues(p.sides[r.serving].name).Inc()
	p.mu.Lock()
	p.markStale(p.sides[r.serving], fmt.Sprintf("did not answer a served %s within %v: the store of record answered", r.op.Kind, p.cfg.ServeFallback), r.seq-1)
	p.mu.Unlock()
	return true
}

// reply is what the client gets for r: side's result, counted in the
// metrics.
func (p *Proxy) reply(r *rec, side Side, start time.Time) (fsop.Result, error) {
	res, err := r.res[side], r.err[side]
	name := p.sides[side].name
	result := metrics.ResultOK
	switch {
	case errors.Is(err, ErrRefused):
		result = metrics.ResultRefused
	case err != nil:
		result = metrics.ResultFailed
	case res.Errno != "":
		result = metrics.ResultErrno
	}
	p.metrics.Ops.WithLabelValues(string(r.op.Kind), name, result).Inc()
	if err == nil {
		p.metrics.Duration.WithLabelValues(string(r.op.Kind), name).Observe(time.Since(start).Seconds())
	}
	return res, err
}

// clientKey carries a client's name (its address) for the record log.
type clientKey struct{}

// WithClient names the client of the ops run with ctx.
func WithClient(ctx context.Context, client string) context.Context {
	return context.WithValue(ctx, clientKey{}, client)
}

// warnEvery logs a warning at most once per interval for key (how many
// were left out is not counted: the metrics count the events).
func (p *Proxy) warnEvery(key string, interval time.Duration, msg string, args ...any) {
	now := time.Now()
	if last, ok := p.warned.Load(key); ok && now.Sub(last.(time.Time)) < interval {
		return
	}
	p.warned.Store(key, now)
	p.log.Warn(msg, args...)
}

// kickResync wakes the resync loop.
func (p *Proxy) kickResync() {
	select {
	case p.resyncKick <- struct{}{}:
	default:
	}
}

// runMirror runs r on the mirror bridge (a worker goroutine).
func (p *Proxy) runMirror(r *rec, mr *side) {
	ctx, cancel := context.WithTimeout(p.stop, p.cfg.OpTimeout)
	t0 := time.Now()
	res, err := mr.b.Exec(ctx, &r.op)
	r.dur[mr.idx] = time.Since(t0)
	cancel()
	p.finish(r, mr.idx, res, err)
}

// finish records one side's result; the second one triggers the
// comparison. The last side releases r's locks only after the comparison,
// so no later op that conflicts with r can be compared before r's outcome
// (a divergence puts its subtree out of step) is known; a rename the
// mirror may have to undo keeps the mirror's locks until then too.
func (p *Proxy) finish(r *rec, s Side, res fsop.Result, err error) {
	r.res[s], r.err[s] = res, err
	if err == nil && res.Errno == "" {
		// Set before the op's ticket is released, so an audit at a later
		// barrier sees it. acked: what the client is told was done.
		if s != r.serving {
			r.hist.otherOK.Store(true)
		} else if r.answered.Load() == 1 {
			r.hist.acked.Store(true)
		}
	}
	if s != r.serving {
		if r.recDone != nil {
			close(r.recDone)
		}
		p.mu.Lock()
		mr := p.sides[s]
		mr.pending.Remove(r.elem)
		mr.bytes -= r.size
		mr.done++
		p.metrics.QueueDepth.WithLabelValues(mr.name).Set(float64(mr.pending.Len()))
		p.metrics.QueueBytes.WithLabelValues(mr.name).Set(float64(mr.bytes))
		p.mu.Unlock()
	}
	// A rename the mirror may have to undo keeps its locks there until
	// both answers are in (undo.go).
	held := r.mirrored && mayUndo(&r.op)
	if r.remaining.Add(-1) != 0 {
		if !(held && s != r.serving) && r.tickets[s] != nil {
			p.sides[s].seq.Done(r.tickets[s])
		}
		return
	}
	mr := r.serving.other()
	last := func() {
		if p.undoable(r, mr) {
			r.undone = p.undoRename(r, mr)
		}
		p.compare(r)
		if held && s != mr && r.tickets[mr] != nil { // the mirror answered first
			p.sides[mr].seq.Done(r.tickets[mr])
		}
		if r.tickets[s] != nil {
			p.sides[s].seq.Done(r.tickets[s])
		}
	}
	if held && s == r.serving {
		// On the client's path, and an undo is an op on the mirror: it
		// runs beside, not before, the answer. Not in p.wg: a serving op
		// may end after Close (whose Drain waits for r to be compared).
		go last()
		return
	}
	last()
}
