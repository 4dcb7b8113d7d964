package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lighthouse-fs/lighthouse/bridgeclient"
	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/store"
	"github.com/lighthouse-fs/lighthouse/storeexec"
)

// storeBridge is a Bridge over a real store called directly (no FUSE, no
// process): fast enough to run hundreds of thousands of ops in a test. It
// can delay, block, fail, or corrupt results.
type storeBridge struct {
	mu sync.RWMutex // Exec shares, Restore excludes
	st *store.Store
	ex *storeexec.Executor

	jitter  time.Duration // random delay per op, up to this
	slow    time.Duration // a delay per op, one op at a time: a bridge that does 1/slow ops a second
	slowMu  sync.Mutex
	down    atomic.Bool   // answer ErrUnavailable
	gate    chan struct{} // if set, Exec waits for it to close
	inject  func(op *fsop.Op, res *fsop.Result) (skipExec bool)
	drop    func(op *fsop.Op) (res fsop.Result, lost bool) // before exec: answer res, do nothing
	rng     *rand.Rand
	rngMu   sync.Mutex
	execs   atomic.Int64
	corrupt atomic.Int64 // results corrupted by inject
}

func newStoreBridge() *storeBridge {
	st := store.OpenMemory(store.Options{})
	return &storeBridge{st: st, ex: storeexec.New(st), rng: rand.New(rand.NewPCG(1, 2))}
}

func (b *storeBridge) rand(n int) int {
	b.rngMu.Lock()
	defer b.rngMu.Unlock()
	return b.rng.IntN(n)
}

func (b *storeBridge) Exec(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
	if b.gate != nil {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return fsop.Result{}, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		}
	}
	if b.down.Load() {
		return fsop.Result{}, fmt.Errorf("%w: bridge down", ErrUnavailable)
	}
	if b.jitter > 0 {
		time.Sleep(time.Duration(b.rand(int(b.jitter))))
	}
	if b.slow > 0 {
		b.slowMu.Lock()
		time.Sleep(b.slow)
		b.slowMu.Unlock()
	}
	b.execs.Add(1)
	b.mu.RLock()
	defer b.mu.RUnlock()
	var res fsop.Result
	if b.drop != nil {
		if res, lost := b.drop(op); lost {
			return res, nil
		}
	}
	if b.inject != nil {
		if skip := b.inject(op, &res); skip {
			b.corrupt.Add(1)
			return res, nil
		}
	}
	c := *op
	res, err := b.ex.Exec(&c)
	if err != nil {
		return res, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if b.inject != nil {
		before := fmt.Sprint(res)
		b.inject(op, &res)
		if fmt.Sprint(res) != before {
			b.corrupt.Add(1)
		}
	}
	return res, nil
}

// State answers as a bridge does (bridge.State): the store's state, and
// the digest of the range asked for.
func (b *storeBridge) State(_ context.Context, path string, off, n int64) (fsop.Result, error) {
	if b.down.Load() {
		return fsop.Result{}, fmt.Errorf("%w: bridge down", ErrUnavailable)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	res, err := b.ex.State(path)
	if err != nil {
		return res, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if n > 0 && len(res.Value) == sha256.Size {
		content, err := b.ex.Exec(&fsop.Op{Kind: fsop.ReadFile, Path: path})
		if err != nil {
			return res, err
		}
		if off < 0 {
			off = max(int64(len(content.Data))-n, 0)
		}
		end := min(off+n, int64(len(content.Data)))
		d := sha256.Sum256(content.Data[min(off, end):end])
		res.Value = append(res.Value, d[:]...)
	}
	return res, nil
}

func (b *storeBridge) SnapshotSubtree(_ context.Context, path string) ([]byte, error) {
	if b.down.Load() {
		return nil, ErrUnavailable
	}
	snap, err := b.st.SnapshotSubtree(path)
	return snap, bridgeErr(err)
}

func (b *storeBridge) RestoreSubtree(_ context.Context, path string, snap []byte) error {
	if b.down.Load() {
		return ErrUnavailable
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return bridgeErr(b.st.RestoreSubtree(path, snap))
}

// bridgeErr maps a store's refusal as bridgeclient does a bridge's.
func bridgeErr(err error) error {
	var cl *store.CrossLinkError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &cl):
		return fmt.Errorf("%w: %w: %q inside, %q outside", ErrRefused, bridgeclient.ErrCrossLink, cl.Inside, cl.Outside)
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EINVAL):
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	return err
}

// dump renders a store's logical content (names, types, modes, sizes,
// data, xattrs) through its executor.
func dump(t testing.TB, b *storeBridge) string {
	t.Helper()
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out strings.Builder
	var walk func(dir string)
	walk = func(dir string) {
		res, _ := b.ex.Exec(&fsop.Op{Kind: fsop.Readdir, Path: dir})
		for _, e := range compare.Normalize(res, compare.Rules{}).Entries {
			if e.Name == "." || e.Name == ".." {
				continue
			}
			p := e.Name
			if dir != "." {
				p = dir + "/" + e.Name
			}
			st, _ := b.ex.Exec(&fsop.Op{Kind: fsop.Lstat, Path: p})
			fmt.Fprintf(&out, "%s %o %d %d", p, st.Stat.Mode, st.Stat.Size, st.Stat.Nlink)
			if e.Type == "file" {
				d, _ := b.ex.Exec(&fsop.Op{Kind: fsop.ReadFile, Path: p})
				fmt.Fprintf(&out, " %x", d.Data)
			}
			out.WriteByte('\n')
			if e.Type == "dir" {
				walk(p)
			}
		}
	}
	walk(".")
	return out.String()
}

func newTestProxy(t *testing.T, cfg Config) (*Proxy, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	cfg.PrimaryName, cfg.ShadowName = "bazil", "gofuse"
	if cfg.ReadbackRate == 0 {
		cfg.ReadbackRate = 1 // every state checked: the tests count exactly
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = 10 * time.Millisecond
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, reg
}

// workload sends n random ops per client from c concurrent clients over a
// small, overlapping namespace.
func workload(t *testing.T, p *Proxy, clients, n int, names []string, seed uint64) (errs int64) {
	t.Helper()
	var wg sync.WaitGroup
	var bad atomic.Int64
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(c)))
			for i := 0; i < n; i++ {
				op := randomOp(r, names)
				if err := op.Validate(); err != nil {
					t.Error(err)
					return
				}
				if _, err := p.Exec(context.Background(), &op); err != nil && !strings.Contains(err.Error(), "refused") {
					bad.Add(1)
				}
			}
		}(c)
	}
	wg.Wait()
	return bad.Load()
}

func randomOp(r *rand.Rand, names []string) fsop.Op {
	p := names[r.IntN(len(names))]
	q := names[r.IntN(len(names))]
	data := bytes.Repeat([]byte{byte('a' + r.IntN(26))}, r.IntN(3000))
	switch r.IntN(14) {
	case 0:
		return fsop.Op{Kind: fsop.Mkdir, Path: p, Mode: 0o755}
	case 1, 2:
		return fsop.Op{Kind: fsop.WriteFile, Path: p, Data: data}
	case 3:
		return fsop.Op{Kind: fsop.Append, Path: p, Data: data}
	case 4:
		return fsop.Op{Kind: fsop.Rename, Path: p, To: q}
	case 5:
		return fsop.Op{Kind: fsop.Unlink, Path: p}
	case 6:
		return fsop.Op{Kind: fsop.Rmdir, Path: p}
	case 7:
		if os.Getenv("NOLINK") != "" {
			return fsop.Op{Kind: fsop.Stat, Path: p}
		}
		return fsop.Op{Kind: fsop.Link, Path: p, To: q}
	case 8:
		return fsop.Op{Kind: fsop.Readdir, Path: strings.Split(p, "/")[0]}
	case 9:
		return fsop.Op{Kind: fsop.Truncate, Path: p, Size: int64(r.IntN(5000))}
	case 10:
		return fsop.Op{Kind: fsop.Chmod, Path: p, Mode: uint32(0o600 + r.IntN(0o200))}
	case 11:
		return fsop.Op{Kind: fsop.Setxattr, Path: p, Name: "user.k", Value: data[:min(len(data), 50)]}
	case 12:
		return fsop.Op{Kind: fsop.Stat, Path: p}
	}
	return fsop.Op{Kind: fsop.ReadFile, Path: p}
}

var overlapping = []string{"a", "b", "c", "d", "d/a", "d/b", "d/e", "d/e/f", "g"}

// TestConcurrentClientsNoFalseDivergence: many clients hammering
// overlapping paths, with random delays on both bridges so that every
// interleaving the sequencers allow happens: zero divergences. The same
// run without conflict ordering diverges, so the test can fail.
func TestConcurrentClientsNoFalseDivergence(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		t.Run(fmt.Sprintf("ordered=%v", ordered), func(t *testing.T) {
			pb, sb := newStoreBridge(), newStoreBridge()
			pb.jitter, sb.jitter = 200*time.Microsecond, 200*time.Microsecond
			p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb})
			p.unordered = !ordered
			if errs := workload(t, p, 16, 400, overlapping, 7); errs != 0 {
				t.Fatalf("%d client errors", errs)
			}
			waitIdle(t, p)
			st := p.Stats()
			t.Logf("ops %d compared %d divergent %d by class %v skipped %v readbacks %d resyncs %d",
				st.Ops, st.Compared, st.Divergent, st.ByClass, st.Skipped, st.Readbacks, st.Resyncs)
			if ordered {
				if st.Divergent != 0 {
					t.Fatalf("%d false divergences under concurrency: %v", st.Divergent, firstExample(st))
				}
				if st.Compared < 16*400*9/10 {
					t.Fatalf("only %d of %d ops compared", st.Compared, 16*400)
				}
				if a, b := dump(t, pb), dump(t, sb); a != b {
					t.Fatalf("bridges ended in different states:\n%s\nvs\n%s", a, b)
				}
			} else if st.Divergent == 0 {
				t.Fatal("without conflict ordering the run did not diverge: this test cannot detect misordering")
			}
		})
	}
}

// waitIdle waits until every op served has its outcome (compared or
// skipped, read-backs included) and nothing waits on either bridge.
func waitIdle(t *testing.T, p *Proxy) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		busy := p.sides[0].pending.Len() + p.sides[1].pending.Len()
		idle := busy == 0 && p.sides[0].seq.Len() == 0 && p.sides[1].seq.Len() == 0
		p.mu.Unlock()
		if idle && p.Stats().Pending == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("proxy not idle after 60s: %+v", p.Status())
}

// TestInjectedDivergence: a shadow that corrupts a fraction of its results
// in one class is caught in that class, at the rate injected.
func TestInjectedDivergence(t *testing.T) {
	names := make([]string, 0, 400)
	for i := 0; i < 400; i++ {
		names = append(names, fmt.Sprintf("f%03d", i))
	}
	const rate = 0.02
	tests := []struct {
		name   string
		class  string
		inject func(b *storeBridge, op *fsop.Op, res *fsop.Result) bool
	}{
		{"wrong data", compare.ClassData, func(b *storeBridge, op *fsop.Op, res *fsop.Result) bool {
			if op.Kind == fsop.ReadFile && res.Errno == "" && len(res.Data) > 0 && b.rand(1000) < rate*1000 {
				res.Data = append([]byte{res.Data[0] ^ 1}, res.Data[1:]...)
			}
			return false
		}},
		{"wrong errno", compare.ClassErrno, func(b *storeBridge, op *fsop.Op, res *fsop.Result) bool {
			if op.Kind == fsop.Stat && res.Errno == "" && res.Stat != nil && b.rand(1000) < rate*1000 {
				*res = fsop.Result{Errno: "EIO"}
			}
			return false
		}},
		{"wrong attr", compare.ClassAttr, func(b *storeBridge, op *fsop.Op, res *fsop.Result) bool {
			if op.Kind == fsop.Stat && res.Stat != nil && b.rand(1000) < rate*1000 {
				a := *res.Stat
				a.Mode ^= 0o004
				res.Stat = &a
			}
			return false
		}},
		{"missing entry", compare.ClassEntries, func(b *storeBridge, op *fsop.Op, res *fsop.Result) bool {
			if op.Kind == fsop.Readdir && len(res.Entries) > 2 && b.rand(1000) < rate*1000 {
				res.Entries = res.Entries[:len(res.Entries)-1]
			}
			return false
		}},
		{"mutation that does nothing", compare.ClassState, func(b *storeBridge, op *fsop.Op, res *fsop.Result) bool {
			if op.Kind == fsop.Chmod && res.Errno == "" && res.Stat == nil && b.rand(1000) < rate*1000 {
				return true // before exec: answer success, do nothing
			}
			return false
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pb, sb := newStoreBridge(), newStoreBridge()
			p, reg := newTestProxy(t, Config{Primary: pb, Shadow: sb})
			ctx := context.Background()
			for _, n := range names {
				p.Exec(ctx, &fsop.Op{Kind: fsop.WriteFile, Path: n, Data: []byte("content of " + n)})
			}
			p.Exec(ctx, &fsop.Op{Kind: fsop.Mkdir, Path: "dir", Mode: 0o755})
			for i := 0; i < 30; i++ {
				p.Exec(ctx, &fsop.Op{Kind: fsop.Create, Path: fmt.Sprintf("dir/e%02d", i), Mode: 0o644})
			}
			waitIdle(t, p)
			sb.inject = func(op *fsop.Op, res *fsop.Result) bool { return tt.inject(sb, op, res) }
			r := rand.New(rand.NewPCG(3, 4))
			const n = 20000
			for i := 0; i < n; i++ {
				name := names[r.IntN(len(names))]
				var op fsop.Op
				switch tt.class {
				case compare.ClassData:
					op = fsop.Op{Kind: fsop.ReadFile, Path: name}
				case compare.ClassEntries:
					op = fsop.Op{Kind: fsop.Readdir, Path: "dir"}
				case compare.ClassState:
					op = fsop.Op{Kind: fsop.Chmod, Path: name, Mode: uint32(0o600 + r.IntN(0o100))}
				default:
					op = fsop.Op{Kind: fsop.Stat, Path: name}
				}
				if _, err := p.Exec(ctx, &op); err != nil {
					t.Fatal(err)
				}

			}
			waitIdle(t, p)
			st := p.Stats()
			injected := sb.corrupt.Load()
			got := int64(testutil.ToFloat64(p.metrics.Divergence.WithLabelValues(string(map[string]fsop.Kind{
				compare.ClassData: fsop.ReadFile, compare.ClassErrno: fsop.Stat, compare.ClassAttr: fsop.Stat,
				compare.ClassEntries: fsop.Readdir, compare.ClassState: fsop.Chmod}[tt.class]), tt.class)))
			if tt.class == compare.ClassState {
				// A lost chmod the read-back did not judge (it raced a resync)
				// is found by the resync's audit instead: the same fault.
				got += st.ByClass[compare.ClassAudit]
			}
			measured := float64(got) / float64(st.Compared)
			t.Logf("injected %d (%.3f%%), detected %d of class %s (%.3f%% of %d compared); all classes %v, skipped %v",
				injected, 100*float64(injected)/n, got, tt.class, 100*measured, st.Compared, st.ByClass, st.Skipped)
			if got == 0 || injected == 0 {
				t.Fatalf("nothing detected (%d) or injected (%d)", got, injected)
			}
			// Every injection is seen once; a quarantined path may hide a
			// second one until its resync, never invent one.
			if got > injected || float64(got) < 0.8*float64(injected) {
				t.Fatalf("detected %d divergences of class %s for %d injected", got, tt.class, injected)
			}
			for class, n := range st.ByClass {
				if class != tt.class && class != compare.ClassAllowed && !(tt.class == compare.ClassState && class == compare.ClassAudit) {
					t.Fatalf("%d divergences of class %s, only %s was injected: %s", n, class, tt.class, notAllowed(st))
				}
			}
			_ = reg
		})
	}
}

// TestShadowKilledAndBack: a dead shadow causes no client error; its ops
// are skipped and counted; when it is back it is resynced and comparison
// resumes with both bridges in the same state.
func TestShadowKilledAndBack(t *testing.T) {
	pb, sb := newStoreBridge(), newStoreBridge()
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb})
	names := []string{"a", "b", "c", "d", "d/x", "d/y"}
	if errs := workload(t, p, 8, 300, names, 1); errs != 0 {
		t.Fatalf("%d client errors before the kill", errs)
	}
	sb.down.Store(true)
	if errs := workload(t, p, 8, 300, names, 2); errs != 0 {
		t.Fatalf("%d client errors while the shadow was down", errs)
	}
	st := p.Stats()
	if st.Skipped["stale"] == 0 && testutil.ToFloat64(p.metrics.Skipped.WithLabelValues("gofuse", "stale")) == 0 {
		t.Fatalf("no skipped ops counted while the shadow was down: %+v", st.Skipped)
	}
	sb.down.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for p.Status().Bridges[1].Stale && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p.Status().Bridges[1].Stale {
		t.Fatal("shadow not resynced within 10s of coming back")
	}
	before := p.Stats().Compared
	if errs := workload(t, p, 8, 300, names, 3); errs != 0 {
		t.Fatalf("%d client errors after the restart", errs)
	}
	waitIdle(t, p)
	st = p.Stats()
	t.Logf("resyncs %d, skipped %v, divergences %v", st.Resyncs, st.Skipped, st.ByClass)
	if st.Resyncs == 0 || st.Compared <= before {
		t.Fatalf("no resync (%d) or no comparisons after it (%d -> %d)", st.Resyncs, before, st.Compared)
	}
	if st.Divergent != 0 {
		t.Fatalf("divergences after the resync: %v %s", st.ByClass, firstExample(st))
	}
	if a, b := dump(t, pb), dump(t, sb); a != b {
		t.Fatalf("bridges differ after resync:\n%s\nvs\n%s", a, b)
	}
}

// TestServingNeverWaitsForMirror: with the shadow blocked outright, every
// client op still completes; the shadow goes stale at the bound and the
// held ops stay bounded.
func TestServingNeverWaitsForMirror(t *testing.T) {
	pb, sb := newStoreBridge(), newStoreBridge()
	sb.gate = make(chan struct{})
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb, MirrorMaxOps: 100, OpTimeout: 2 * time.Second})
	names := make([]string, 64)
	for i := range names {
		names[i] = fmt.Sprintf("f%d", i)
	}
	done := make(chan int64)
	go func() { done <- workload(t, p, 8, 500, names, 5) }()
	select {
	case errs := <-done:
		if errs != 0 {
			t.Fatalf("%d client errors with a blocked shadow", errs)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("clients stalled behind a blocked shadow")
	}
	stt := p.Status()
	if !stt.Bridges[1].Stale || stt.Bridges[1].QueueDepth > 100 {
		t.Fatalf("shadow stale=%v depth=%d, want stale with depth <= 100", stt.Bridges[1].Stale, stt.Bridges[1].QueueDepth)
	}
	close(sb.gate)
}

// TestDivergenceLog: each divergence is one JSON line with the op, both
// results, the diff, and the earlier ops on the same paths.
func TestDivergenceLog(t *testing.T) {
	pb, sb := newStoreBridge(), newStoreBridge()
	var log bytes.Buffer
	var mu sync.Mutex
	p, _ := newTestProxy(t, Config{Primary: pb, Shadow: sb, DivergenceLog: lockedWriter{&log, &mu}})
	ctx := context.Background()
	p.Exec(ctx, &fsop.Op{Kind: fsop.Mkdir, Path: "d", Mode: 0o755})
	p.Exec(ctx, &fsop.Op{Kind: fsop.WriteFile, Path: "d/f", Data: []byte("hello")})
	waitIdle(t, p)
	sb.inject = func(op *fsop.Op, res *fsop.Result) bool {
		if op.Kind == fsop.ReadFile {
			res.Data = []byte("HELLO")
		}
		return false
	}
	p.Exec(ctx, &fsop.Op{Kind: fsop.ReadFile, Path: "d/f"})
	waitIdle(t, p)
	p.Close()
	mu.Lock()
	defer mu.Unlock()
	var d Divergence
	if err := json.Unmarshal(bytes.TrimSpace(log.Bytes()), &d); err != nil {
		t.Fatalf("divergence log is not one JSON line: %v\n%s", err, log.String())
	}
	if d.Class != compare.ClassData || d.Op.Path != "d/f" || string(d.Serving.Result.Data) != "hello" ||
		string(d.Mirror.Result.Data) != "HELLO" || d.Diff == "" {
		t.Fatalf("record %+v", d)
	}
	if len(d.Recent) != 2 || d.Recent[0].Kind != fsop.Mkdir || d.Recent[1].Kind != fsop.WriteFile {
		t.Fatalf("recent ops %+v, want the mkdir and the write", d.Recent)
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// firstExample renders one divergence example briefly.
func firstExample(st StatsView) string {
	for class, ex := range st.Examples {
		d := ex[0]
		rb := ""
		if d.Readback != nil {
			rb = fmt.Sprintf(" (read-back %s %s)", d.Readback.Kind, d.Readback.Path)
		}
		return fmt.Sprintf("class %s: seq %d %s %s -> %s%s\n%s", class, d.Seq, d.Op.Kind, d.Op.Path, d.Op.To, rb, d.Diff)
	}
	return "none"
}
