package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

// The mirror bounds the lagging-shadow scenario runs with: the proxy's
// documented defaults, set explicitly so the report can name them.
const (
	lagMaxOps   = 10000
	lagMaxBytes = 256 << 20
	lagMaxLag   = 10 * time.Second
)

// LagResult is the lagging-shadow scenario: clients write 4 KiB blocks
// through a proxy whose shadow (the go-fuse bridge) sleeps Delay per op,
// one op at a time, so it falls behind from the first second. The proxy
// must keep serving at the primary's pace and its memory must stay bounded
// by the mirror bound: past MirrorMaxOps queued ops (or bytes, or age) it
// marks the shadow stale, stops mirroring, and resyncs it from a snapshot.
type LagResult struct {
	Seconds        float64 `json:"seconds"`
	DelayMs        float64 `json:"delay_ms"`
	Clients        int     `json:"clients"`
	MirrorMaxOps   int     `json:"mirror_max_ops"`
	MirrorMaxBytes int64   `json:"mirror_max_bytes"`
	// Ops served, and the serving path's rate and latency meanwhile.
	Ops       int64   `json:"ops"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50       float64 `json:"p50_us"`
	P99       float64 `json:"p99_us"`
	// Heap in use (runtime.MemStats.HeapInuse: what the process holds,
	// garbage not yet swept included) before the clients start, at its
	// highest, and at the end of the clients' run; and the live heap (what
	// the last GC marked live) at its highest.
	HeapBeforeMiB float64 `json:"heap_before_mib"`
	HeapMaxMiB    float64 `json:"heap_max_mib"`
	HeapEndMiB    float64 `json:"heap_end_mib"`
	LiveBeforeMiB float64 `json:"live_before_mib"`
	LiveMaxMiB    float64 `json:"live_max_mib"`
	// LivePerQueued is, after a GC at the end of the clients' run, the
	// live heap above the start's divided by the mirror queue's length.
	LivePerQueued float64 `json:"live_kib_per_queued_op"`
	EndDepth      int     `json:"end_queue_depth"`
	FirstStaleAt  float64 `json:"first_stale_at_s,omitempty"`
	FirstStaleWhy string  `json:"first_stale_reason,omitempty"`
	// The shadow's mirror queue at its longest, and what happened to it.
	MaxQueueDepth int              `json:"max_queue_depth"`
	MaxQueueMiB   float64          `json:"max_queue_mib"`
	StaleMarks    int              `json:"stale_marks"`
	Resyncs       int64            `json:"resyncs"`
	Skipped       map[string]int64 `json:"skipped,omitempty"`
	// Divergences the proxy counted (the two bridges should never differ
	// here), by class, with the first one described.
	Divergent int64            `json:"divergent"`
	ByClass   map[string]int64 `json:"by_class,omitempty"`
	FirstDiff string           `json:"first_divergence,omitempty"`
	Timeline  []LagSample      `json:"timeline"`
}

// LagSample is the proxy's state at one moment of the scenario.
type LagSample struct {
	Second   float64 `json:"t"`
	HeapMiB  float64 `json:"heap_mib"`
	LiveMiB  float64 `json:"live_mib"`
	Depth    int     `json:"queue_depth"`
	QueueMiB float64 `json:"queue_mib"`
	Stale    bool    `json:"stale"`
	Ops      int64   `json:"ops"`
}

// laggingBridge delays every op on the bridge it wraps by delay, one op at
// a time (at most 1/delay ops per second), until delay is set to 0.
type laggingBridge struct {
	proxy.Bridge
	delay atomic.Int64 // nanoseconds
	mu    sync.Mutex
}

func (b *laggingBridge) Exec(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
	if d := time.Duration(b.delay.Load()); d > 0 {
		b.mu.Lock()
		time.Sleep(d)
		b.mu.Unlock()
	}
	return b.Bridge.Exec(ctx, op)
}

func mib(n uint64) float64 { return math.Round(float64(n)/(1<<20)*10) / 10 }

// runLag runs the lagging-shadow scenario for Config.Lag.
func (r *runner) runLag(ctx context.Context) (*LagResult, error) {
	cfg := r.cfg
	fmt.Fprintf(cfg.Log, "lagging-shadow scenario: %d clients writing 4 KiB through the proxy for %s, the shadow sleeping %s per op, one at a time\n",
		cfg.LagClients, cfg.Lag, cfg.LagDelay)
	r.phase.Store("lagging shadow")
	t, lag, lv, err := r.startLag(ctx)
	if err != nil {
		return nil, err
	}

	res := &LagResult{Seconds: cfg.Lag.Seconds(), DelayMs: float64(cfg.LagDelay) / float64(time.Millisecond),
		Clients: cfg.LagClients, MirrorMaxOps: lagMaxOps, MirrorMaxBytes: lagMaxBytes}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapBeforeMiB = mib(ms.HeapInuse)
	res.LiveBeforeMiB = liveMiB()

	var ops atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(sampled)
		res.sample(t.proxy, start, &ops, stop)
	}()
	durs, loadErr := lagLoad(ctx, t, lv, start.Add(cfg.Lag), &ops)
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	res.measureEnd(t.proxy)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if loadErr != nil {
		return nil, loadErr
	}
	res.Ops = int64(len(durs))
	res.OpsPerSec = math.Round(float64(len(durs)) / elapsed.Seconds())
	res.P50, res.P99 = micros(quantile(durs, 0.5)), micros(quantile(durs, 0.99))

	if err := r.endLag(ctx, t, lv, lag, res); err != nil {
		return nil, err
	}
	return res, nil
}

// startLag starts the scenario's proxy, whose shadow lags by
// Config.LagDelay per op, and opens the files its clients write.
func (r *runner) startLag(ctx context.Context) (*target, *laggingBridge, *level, error) {
	cfg := r.cfg
	t := &target{name: "proxy-lagging", idx: len(AllTargets), levels: map[int]*level{}}
	sc, err := r.client(r.children["gofuse-bridge"])
	if err != nil {
		return nil, nil, nil, err
	}
	lag := &laggingBridge{Bridge: sc}
	lag.delay.Store(int64(cfg.LagDelay))
	p, err := r.newProxy(t, lag, func(c *proxy.Config) {
		c.MirrorMaxOps, c.MirrorMaxBytes, c.MirrorMaxLag = lagMaxOps, lagMaxBytes, lagMaxLag
	})
	if err != nil {
		return nil, nil, nil, err
	}
	t.proxy, t.mirrored, t.exec = p, true, p.Exec
	lv := newLevel("lag", t.idx, cfg.LagClients, cfg.SeqBlock)
	if err := r.runOps(ctx, t, lv.setupOps()); err != nil {
		return nil, nil, nil, err
	}
	lv.opened = true
	return t, lag, lv, nil
}

// liveMiB is the live heap (what the last GC marked live), 0 if the
// runtime does not say.
func liveMiB() float64 {
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	if live[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return mib(live[0].Value.Uint64())
}

// sample records the heap and p's shadow queue every 100 ms until stop:
// their highest values, the stale marks, and a timeline row per second.
func (res *LagResult) sample(p *proxy.Proxy, start time.Time, ops *atomic.Int64, stop <-chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var ms runtime.MemStats
	wasStale := false
	nextRow := 0.0
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		runtime.ReadMemStats(&ms)
		shadow := p.Status().Bridges[proxy.Shadow]
		s := LagSample{Second: math.Round(time.Since(start).Seconds()*10) / 10, HeapMiB: mib(ms.HeapInuse), LiveMiB: liveMiB(),
			Depth: shadow.QueueDepth, QueueMiB: mib(uint64(shadow.QueueBytes)), Stale: shadow.Stale, Ops: ops.Load()}
		res.HeapMaxMiB = max(res.HeapMaxMiB, s.HeapMiB)
		res.LiveMaxMiB = max(res.LiveMaxMiB, s.LiveMiB)
		res.MaxQueueDepth = max(res.MaxQueueDepth, s.Depth)
		res.MaxQueueMiB = max(res.MaxQueueMiB, s.QueueMiB)
		if s.Stale && !wasStale {
			res.StaleMarks++
			if res.FirstStaleWhy == "" {
				res.FirstStaleAt, res.FirstStaleWhy = s.Second, shadow.StaleReason
			}
		}
		wasStale = s.Stale
		if s.Second >= nextRow {
			res.Timeline = append(res.Timeline, s)
			nextRow += 1
		}
	}
}

// lagLoad runs lv's clients, each writing 4 KiB blocks through t until
// deadline, and returns the latencies of their ops, sorted, or the first
// client's error.
func lagLoad(ctx context.Context, t *target, lv *level, deadline time.Time, ops *atomic.Int64) ([]time.Duration, error) {
	write := specByName(OpWrite)
	durs := make([][]time.Duration, lv.conc)
	errs := make([]error, lv.conc)
	var wg sync.WaitGroup
	for w := 0; w < lv.conc; w++ {
		wg.Go(func() {
			for i := w; time.Now().Before(deadline) && ctx.Err() == nil; i += lv.conc {
				op := write.op(lv, w, i)
				t0 := time.Now()
				if err := expect(ctx, t, &op); err != nil {
					errs[w] = err
					return
				}
				durs[w] = append(durs[w], time.Since(t0))
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	var all []time.Duration
	for _, d := range durs {
		all = append(all, d...)
	}
	slices.Sort(all)
	return all, nil
}

// measureEnd records the heap at the end of the clients' run, and after a
// GC the live heap per op left in p's shadow queue.
func (res *LagResult) measureEnd(p *proxy.Proxy) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapEndMiB = mib(ms.HeapInuse)
	runtime.GC()
	res.EndDepth = p.Status().Bridges[proxy.Shadow].QueueDepth
	if end := liveMiB(); res.EndDepth > 0 {
		res.LiveMaxMiB = max(res.LiveMaxMiB, end)
		res.LivePerQueued = math.Round((end - res.LiveBeforeMiB) * 1024 / float64(res.EndDepth))
	}
}

// endLag lets the shadow catch up at full speed (it resyncs), records the
// proxy's counts and first divergence in res, and cleans up.
func (r *runner) endLag(ctx context.Context, t *target, lv *level, lag *laggingBridge, res *LagResult) error {
	lag.delay.Store(0)
	if _, err := t.drain(ctx); err != nil {
		fmt.Fprintf(r.cfg.Log, "after the lagging-shadow scenario: %v\n", err)
	}
	v := t.proxy.Stats()
	res.Resyncs, res.Skipped, res.ByClass, res.Divergent = v.Resyncs, v.Skipped, v.ByClass, t.divergences.Load()
	for _, class := range slices.Sorted(maps.Keys(v.Examples)) {
		if ex := v.Examples[class]; len(ex) > 0 && res.FirstDiff == "" {
			d := ex[0]
			res.FirstDiff = fmt.Sprintf("%s on %s %s (seq %d): %s", d.Class, d.Op.Kind, describe(&d.Op), d.Seq, d.Diff)
		}
	}
	return r.cleanup(ctx, t, lv)
}

func (l *LagResult) writeText(w io.Writer) {
	fmt.Fprintf(w, "\n== lagging shadow: %d clients writing 4 KiB through the proxy for %.0f s; the shadow sleeps %.0f ms per op, one at a time\n",
		l.Clients, l.Seconds, l.DelayMs)
	fmt.Fprintf(w, "served %d ops (%.0f ops/s), p50 %s us, p99 %s us\n", l.Ops, l.OpsPerSec, fmtUs(l.P50), fmtUs(l.P99))
	fmt.Fprintf(w, "heap in use: %.1f MiB before, %.1f MiB at most, %.1f MiB at the end; live heap: %.1f MiB before, %.1f MiB at most; at the end %.0f KiB live per queued op (%d queued)\n",
		l.HeapBeforeMiB, l.HeapMaxMiB, l.HeapEndMiB, l.LiveBeforeMiB, l.LiveMaxMiB, l.LivePerQueued, l.EndDepth)
	fmt.Fprintf(w, "mirror queue: at most %d ops, %.1f MiB of payload (bound: %d ops, %d MiB, 10 s); marked stale %d time(s)",
		l.MaxQueueDepth, l.MaxQueueMiB, l.MirrorMaxOps, l.MirrorMaxBytes>>20, l.StaleMarks)
	if l.FirstStaleWhy != "" {
		fmt.Fprintf(w, ", first at %.0f s: %s", l.FirstStaleAt, l.FirstStaleWhy)
	}
	fmt.Fprintf(w, "; %d resync(s) after the run; skipped %v\n", l.Resyncs, l.Skipped)
	if len(l.ByClass) > 0 {
		fmt.Fprintf(w, "divergences: %d counted, by class %v; first: %s\n", l.Divergent, l.ByClass, l.FirstDiff)
	}
	fmt.Fprintln(w, "t(s)  heap MiB  live MiB  queue ops  queue MiB  stale  served")
	for _, s := range l.Timeline {
		fmt.Fprintf(w, "%4.0f  %8.1f  %8.1f  %9d  %9.1f  %5v  %6d\n", s.Second, s.HeapMiB, s.LiveMiB, s.Depth, s.QueueMiB, s.Stale, s.Ops)
	}
}
