package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// The namespace of the workload: a few directories three levels deep, so
// that concurrent clients collide all the time (the proxy must order
// conflicting ops the same on both bridges) and most ops find something.
// Four parts:
//
//   - t: t0..t3/u0..u3/v0..v1, every path op, renames among them.
//   - l: symlinks inside t (t0/l0, t0/u0/l0, ...), only used by ops that do
//     not follow them (symlink, lstat, readlink, unlink, rename among l
//     names): the proxy orders ops by the names they use and does not
//     resolve symlinks (docs/ARCHITECTURE.md, a documented limitation), so
//     an op through a symlink could race an op on the name it points to.
//   - h: h0..h3 (made by setup, never renamed or removed) with files f0..f2:
//     every path op but rename, the handles (open, pread, pwrite, ftruncate,
//     fsync, close) and the hard links (among h files).
//   - r: one directory per client (r0, r1, ...) with files x and y, used
//     only by that client's renameat2 episodes (below).
//
// The split keeps the mix inside what the proxy can compare without false
// divergences; mix.full drops it, and proxybugs_test.go reproduces each of
// these on its own:
//
//   - handles on names no rename touches: the proxy moves a handle to a
//     rename's destination at admission, also when the rename fails, and
//     then orders the handle's ops by a name that is not its file's;
//   - hard links on names no rename touches: the proxy's alias table only
//     grows, and renames of directories that hold linked names fill it
//     (100,000 names) within seconds, after which new links are not
//     ordered;
//   - renameat2 flags only in episodes that repair the state they break:
//     bazil answers EINVAL (allowlisted) while go-fuse renames, and the
//     proxy neither quarantines nor resyncs after an allowlisted mutation,
//     so every later op on those names would diverge. An episode is
//     [unlink y,] rename x y RENAME_NOREPLACE (or x and y
//     RENAME_EXCHANGE), write_file x, write_file y, on the client's own r
//     directory: both libraries get the flagged rename, and both bridges
//     hold the same x and y again before anything else looks.
//
// Without those, every resync also leaves a drift of its own: a handle
// opened before a resync is not mirrored after it, so a pwrite or
// ftruncate through it changes the primary only. The split avoids it by
// avoiding resyncs: a clean run diverges nowhere, so nothing is resynced.
var (
	topNames, regularNames, linkNames []string
	handleDirs, handleFiles           []string
)

// renameDir is client c's own directory for renameat2 episodes.
func renameDir(c uint64) string { return fmt.Sprintf("r%d", c) }

func init() {
	for i := 0; i < 4; i++ {
		t := fmt.Sprintf("t%d", i)
		topNames = append(topNames, t)
		regularNames = append(regularNames, t)
		for j := 0; j < 4; j++ {
			u := fmt.Sprintf("%s/u%d", t, j)
			regularNames = append(regularNames, u)
			for k := 0; k < 2; k++ {
				regularNames = append(regularNames, fmt.Sprintf("%s/v%d", u, k))
			}
			if j < 2 {
				linkNames = append(linkNames, fmt.Sprintf("%s/u%d/l0", t, j))
			}
		}
		linkNames = append(linkNames, fmt.Sprintf("%s/l0", t), fmt.Sprintf("%s/l1", t))
		h := fmt.Sprintf("h%d", i)
		handleDirs = append(handleDirs, h)
		for j := 0; j < 3; j++ {
			handleFiles = append(handleFiles, fmt.Sprintf("%s/f%d", h, j))
		}
	}
}

// setupOps make the directories the workload never removes, for clients
// clients.
func setupOps(clients int) []fsop.Op {
	var ops []fsop.Op
	for c := 0; c < clients; c++ {
		r := renameDir(uint64(c))
		ops = append(ops, fsop.Op{Kind: fsop.Mkdir, Path: r, Mode: 0o755},
			fsop.Op{Kind: fsop.WriteFile, Path: r + "/x", Data: []byte("x")},
			fsop.Op{Kind: fsop.WriteFile, Path: r + "/y", Data: []byte("y")})
	}
	for _, h := range handleDirs {
		ops = append(ops, fsop.Op{Kind: fsop.Mkdir, Path: h, Mode: 0o755})
	}
	for _, f := range handleFiles {
		ops = append(ops, fsop.Op{Kind: fsop.WriteFile, Path: f, Data: []byte("start " + f)})
	}
	return ops
}

// mix selects the op mix.
type mix struct {
	// full drops the namespace split: handles and hard links on any name,
	// renameat2 flags on any rename. The proxy then reports divergences
	// that are its own (see the namespace comment above); for
	// investigating the proxy, not for a green run.
	full bool
}

// gen generates one client's ops: seeded, so a run can be repeated.
type gen struct {
	r         *rand.Rand
	m         mix
	client    uint64
	handles   []uint64  // open on the bridges (the open answered success)
	queue     []fsop.Op // the rest of an episode
	noHandles bool      // open nothing, use no handle (closing them is queued)
}

func newGen(seed, client uint64, m mix) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, client)), m: m, client: client}
}

func pick(r *rand.Rand, names []string) string { return names[r.IntN(len(names))] }

// path is a name for an ordinary path op.
func (g *gen) path() string {
	switch n := g.r.IntN(10); {
	case n < 2:
		return pick(g.r, topNames)
	case n < 4:
		return pick(g.r, handleFiles)
	default:
		return pick(g.r, regularNames)
	}
}

// renamePath is a name for a rename (or, in the full mix, a link).
func (g *gen) renamePath() string {
	if g.m.full {
		return g.path()
	}
	if g.r.IntN(5) == 0 {
		return pick(g.r, topNames)
	}
	return pick(g.r, regularNames)
}

// handlePath is a name to open.
func (g *gen) handlePath() string {
	if g.m.full {
		return g.path()
	}
	if g.r.IntN(10) == 0 {
		return pick(g.r, handleDirs) // pread on it: EISDIR
	}
	return pick(g.r, handleFiles)
}

func (g *gen) linkName() string { return pick(g.r, linkNames) }

func (g *gen) data(max int) []byte {
	n := g.r.IntN(max + 1)
	if g.r.IntN(5) == 0 {
		n = g.r.IntN(64 << 10)
	}
	b := make([]byte, n)
	seed := byte(g.r.IntN(256))
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

var (
	chmodModes = []uint32{0o644, 0o600, 0o755, 0o700, 0o1777, 0o444, 0o666, 0o1777}
	mkdirModes = []uint32{0o755, 0o700, 0o1777}
	xattrNames = []string{"user.a", "user.b", "user.c"}
	ids        = []int64{-1, 0, 1000}
)

// weighted op table: each entry's weight out of the total.
var opWeights = []struct {
	w    int
	kind fsop.Kind
}{
	{5, fsop.Mkdir}, {3, fsop.Rmdir}, {4, fsop.Create}, {7, fsop.WriteFile}, {3, fsop.Append},
	{3, fsop.Write}, {8, fsop.ReadFile}, {3, fsop.Read}, {3, fsop.Truncate}, {7, fsop.Stat},
	{3, fsop.Lstat}, {5, fsop.Readdir}, {3, fsop.Unlink}, {6, fsop.Rename}, {2, fsop.Link},
	{2, fsop.Symlink}, {2, fsop.Readlink}, {4, fsop.Chmod}, {1, fsop.Chown}, {1, fsop.Utimens},
	{3, fsop.Setxattr}, {3, fsop.Getxattr}, {2, fsop.Listxattr}, {1, fsop.Removexattr},
	{1, fsop.Statfs}, {1, fsop.Fsync}, {4, fsop.Open}, {8, fsop.Pread}, // Pread: any handle op
}

var opTotal = func() int {
	n := 0
	for _, w := range opWeights {
		n += w.w
	}
	return n
}()

const maxHandles = 6

// next returns the next op. Handle ops use handles this client opened.
func (g *gen) next() fsop.Op {
	if len(g.queue) > 0 {
		op := g.queue[0]
		g.queue = g.queue[1:]
		return op
	}
	n := g.r.IntN(opTotal)
	var kind fsop.Kind
	for _, w := range opWeights {
		if n < w.w {
			kind = w.kind
			break
		}
		n -= w.w
	}
	if kind == fsop.Open && len(g.handles) >= maxHandles {
		kind = fsop.Close
	}
	if g.noHandles && (kind == fsop.Open || kind == fsop.Pread || kind == fsop.Close) {
		kind = fsop.Stat
	}
	r := g.r
	p := g.path()
	switch kind {
	case fsop.Mkdir:
		return fsop.Op{Kind: kind, Path: p, Mode: mkdirModes[r.IntN(len(mkdirModes))]}
	case fsop.Create:
		return fsop.Op{Kind: kind, Path: p, Mode: 0o644, Exclusive: r.IntN(3) == 0}
	case fsop.WriteFile:
		return fsop.Op{Kind: kind, Path: p, Data: g.data(4096)}
	case fsop.Append:
		return fsop.Op{Kind: kind, Path: p, Data: g.data(4096)}
	case fsop.Write:
		return fsop.Op{Kind: kind, Path: p, Offset: int64(r.IntN(16384)), Data: g.data(4096)}
	case fsop.Read:
		return fsop.Op{Kind: kind, Path: p, Offset: int64(r.IntN(16384)), Length: int64(1 + r.IntN(8192))}
	case fsop.Truncate:
		return fsop.Op{Kind: kind, Path: p, Size: int64(r.IntN(20000))}
	case fsop.Lstat, fsop.Unlink:
		if r.IntN(4) == 0 {
			p = g.linkName()
		}
		return fsop.Op{Kind: kind, Path: p}
	case fsop.Readdir:
		if r.IntN(8) == 0 {
			p = "."
		}
		return fsop.Op{Kind: kind, Path: p}
	case fsop.Rename:
		if r.IntN(6) == 0 { // renameat2 with a flag
			flags := []int{fsop.RenameNoReplace, fsop.RenameExchange}[r.IntN(2)]
			if g.m.full {
				return fsop.Op{Kind: kind, Path: g.renamePath(), To: g.renamePath(), Flags: flags}
			}
			return g.renameEpisode(flags)
		}
		if r.IntN(5) == 0 {
			return fsop.Op{Kind: kind, Path: g.linkName(), To: g.linkName()}
		}
		return fsop.Op{Kind: kind, Path: g.renamePath(), To: g.renamePath()}
	case fsop.Link:
		if g.m.full {
			return fsop.Op{Kind: kind, Path: g.renamePath(), To: g.renamePath()}
		}
		return fsop.Op{Kind: kind, Path: pick(r, handleFiles), To: pick(r, handleFiles)}
	case fsop.Symlink:
		targets := []string{"u0", "../t1", "/etc/passwd", "v1", "l1", "../../x/y", "nowhere"}
		return fsop.Op{Kind: kind, Path: g.linkName(), Target: targets[r.IntN(len(targets))]}
	case fsop.Readlink:
		if r.IntN(5) == 0 {
			return fsop.Op{Kind: kind, Path: p} // EINVAL: not a symlink
		}
		return fsop.Op{Kind: kind, Path: g.linkName()}
	case fsop.Chmod:
		return fsop.Op{Kind: kind, Path: p, Mode: chmodModes[r.IntN(len(chmodModes))]}
	case fsop.Chown:
		return fsop.Op{Kind: kind, Path: p, UID: ids[r.IntN(3)], GID: ids[r.IntN(3)]}
	case fsop.Utimens:
		return fsop.Op{Kind: kind, Path: p, AtimeNs: 1e18 + r.Int64N(7e17), MtimeNs: 1e18 + r.Int64N(7e17)}
	case fsop.Setxattr:
		name := xattrNames[r.IntN(len(xattrNames))]
		if r.IntN(30) == 0 {
			name = "bogus.x" // ENOTSUP: no such namespace
		}
		flags := []int{0, 0, fsop.XattrCreate, fsop.XattrReplace}[r.IntN(4)]
		return fsop.Op{Kind: kind, Path: p, Name: name, Value: g.data(100), Flags: flags}
	case fsop.Getxattr:
		return fsop.Op{Kind: kind, Path: p, Name: xattrNames[r.IntN(len(xattrNames))], Length: []int64{0, 0, 0, 4, 200}[r.IntN(5)]}
	case fsop.Listxattr:
		return fsop.Op{Kind: kind, Path: p, Length: []int64{0, 0, 8}[r.IntN(3)]}
	case fsop.Removexattr:
		return fsop.Op{Kind: kind, Path: p, Name: xattrNames[r.IntN(len(xattrNames))]}
	case fsop.Statfs:
		if r.IntN(2) == 0 {
			p = "."
		}
		return fsop.Op{Kind: kind, Path: p}
	case fsop.Open:
		flags := []int{unix.O_RDONLY, unix.O_WRONLY, unix.O_RDWR}[r.IntN(3)]
		op := fsop.Op{Kind: kind, Path: g.handlePath(), Handle: r.Uint64()>>1 | 1}
		if r.IntN(5) < 2 {
			flags |= unix.O_CREAT
			op.Mode = 0o644
			if r.IntN(8) == 0 {
				flags |= unix.O_EXCL
			}
		}
		if r.IntN(7) == 0 {
			flags |= unix.O_TRUNC
		}
		if r.IntN(7) == 0 {
			flags |= unix.O_APPEND
		}
		op.Flags = flags
		return op
	case fsop.Pread, fsop.Close:
		return g.handleOp(kind)
	}
	return fsop.Op{Kind: kind, Path: p} // rmdir, read_file, stat, fsync
}

// renameEpisode returns the first op of a renameat2 episode on the
// client's r directory and queues the rest (see the namespace comment).
func (g *gen) renameEpisode(flags int) fsop.Op {
	d := renameDir(g.client)
	x, y := d+"/x", d+"/y"
	ops := []fsop.Op{{Kind: fsop.Rename, Path: x, To: y, Flags: flags}}
	if flags == fsop.RenameNoReplace { // a free target, or the kernel answers EEXIST itself
		ops = append([]fsop.Op{{Kind: fsop.Unlink, Path: y}}, ops...)
	}
	ops = append(ops, fsop.Op{Kind: fsop.WriteFile, Path: x, Data: g.data(512)},
		fsop.Op{Kind: fsop.WriteFile, Path: y, Data: g.data(512)})
	g.queue = append(g.queue, ops[1:]...)
	return ops[0]
}

// handleOp is an op on one of the client's handles (now and then one it
// never opened: EBADF on both bridges).
func (g *gen) handleOp(kind fsop.Kind) fsop.Op {
	r := g.r
	h := r.Uint64()>>1 | 1
	i := -1
	if len(g.handles) > 0 && r.IntN(20) > 0 {
		i = r.IntN(len(g.handles))
		h = g.handles[i]
	}
	if kind != fsop.Close {
		kind = []fsop.Kind{fsop.Pread, fsop.Pread, fsop.Pwrite, fsop.Pwrite, fsop.Ftruncate, fsop.Fsync, fsop.Close}[r.IntN(7)]
	}
	switch kind {
	case fsop.Pread:
		return fsop.Op{Kind: kind, Handle: h, Offset: int64(r.IntN(8192)), Length: int64(1 + r.IntN(4096))}
	case fsop.Pwrite:
		return fsop.Op{Kind: kind, Handle: h, Offset: int64(r.IntN(8192)), Data: g.data(4096)}
	case fsop.Ftruncate:
		return fsop.Op{Kind: kind, Handle: h, Size: int64(r.IntN(10000))}
	case fsop.Fsync:
		return fsop.Op{Kind: kind, Handle: h}
	}
	if i >= 0 { // close: forget it whatever the answer
		g.handles = append(g.handles[:i], g.handles[i+1:]...)
	}
	return fsop.Op{Kind: fsop.Close, Handle: h}
}

// observe learns from an op's result (which handles are open).
func (g *gen) observe(op *fsop.Op, res *fsop.Result) {
	if op.Kind == fsop.Open && res.Errno == "" {
		g.handles = append(g.handles, op.Handle)
	}
}

// pauseHandles stops using handles: the handles still open are closed
// next, and none is opened until resumeHandles.
func (g *gen) pauseHandles() {
	if !g.noHandles {
		g.noHandles = true
		g.queue = append(g.queue, g.closeAll()...)
	}
}

func (g *gen) resumeHandles() { g.noHandles = false }

// closeAll returns close ops for every handle still open.
func (g *gen) closeAll() []fsop.Op {
	var ops []fsop.Op
	for _, h := range g.handles {
		ops = append(ops, fsop.Op{Kind: fsop.Close, Handle: h})
	}
	g.handles = nil
	return ops
}

// execFunc runs one op for a client; an error is a client-visible failure
// (anything but HTTP 200).
type execFunc func(ctx context.Context, op fsop.Op) (fsop.Result, error)

// workload runs clients concurrent clients, each sending ops (0: until ctx
// ends) generated from seed, then closing its handles.
type workload struct {
	clients int
	ops     int
	seed    uint64
	mix     mix
	exec    execFunc
	// batch > 1 sends that many ops per request through execBatch (the
	// proxy runs a batch's ops in order); latencies are then per batch.
	batch     int
	execBatch func(ctx context.Context, ops []fsop.Op) ([]fsop.Result, error)
	// observe, if set, sees every op's latency and error.
	observe func(client int, op *fsop.Op, d time.Duration, err error)
	// noHandles, if set, is asked before each op whether clients must
	// not hold handles now (they close theirs, and open none).
	noHandles func() bool
}

type workloadResult struct {
	ops, errors atomic.Int64
	mu          sync.Mutex
	errs        []error // the first few
	elapsed     time.Duration
}

func (r *workloadResult) fail(err error) {
	r.errors.Add(1)
	r.mu.Lock()
	if len(r.errs) < 5 {
		r.errs = append(r.errs, err)
	}
	r.mu.Unlock()
}

func (w workload) run(ctx context.Context) *workloadResult {
	res := &workloadResult{}
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < w.clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			g := newGen(w.seed, uint64(c), w.mix)
			one := func(op fsop.Op) {
				t0 := time.Now()
				r, err := w.exec(context.WithoutCancel(ctx), op)
				if w.observe != nil {
					w.observe(c, &op, time.Since(t0), err)
				}
				res.ops.Add(1)
				if err != nil {
					res.fail(err)
					return
				}
				g.observe(&op, &r)
			}
			for i := 0; (w.ops == 0 || i < w.ops) && ctx.Err() == nil; {
				if w.noHandles != nil {
					if w.noHandles() {
						g.pauseHandles()
					} else {
						g.resumeHandles()
					}
				}
				if w.batch <= 1 {
					one(g.next())
					i++
					continue
				}
				ops := make([]fsop.Op, 0, w.batch)
				for ; len(ops) < w.batch && (w.ops == 0 || i < w.ops); i++ {
					ops = append(ops, g.next())
				}
				t0 := time.Now()
				rs, err := w.execBatch(context.WithoutCancel(ctx), ops)
				if w.observe != nil {
					w.observe(c, &ops[0], time.Since(t0), err)
				}
				res.ops.Add(int64(len(ops)))
				if err != nil {
					res.fail(err)
					continue
				}
				for j := range ops {
					g.observe(&ops[j], &rs[j])
				}
			}
			for _, op := range g.closeAll() {
				one(op)
			}
		}(c)
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

func (r *workloadResult) String() string {
	return fmt.Sprintf("%d ops in %v (%.0f ops/s), %d errors %v", r.ops.Load(), r.elapsed.Round(time.Millisecond),
		float64(r.ops.Load())/r.elapsed.Seconds(), r.errors.Load(), r.errs)
}

// latencies collects client-side latencies and reports percentiles.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) percentiles() (n int, p50, p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0, 0, 0
	}
	s := append([]time.Duration(nil), l.d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return len(s), s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}
