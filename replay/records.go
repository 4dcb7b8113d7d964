package replay

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/internal/progress"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

// reorderWindow is how many record lines are held to put them back in
// admission order: the proxy writes a line when both bridges answered, so
// lines come out of seq order by at most the ops in flight (bounded by the
// mirror queue, 10,000 by default).
const reorderWindow = 1 << 16

// recordHeap orders record lines by seq.
type recordHeap []*proxy.Record

func (h recordHeap) Len() int           { return len(h) }
func (h recordHeap) Less(i, j int) bool { return h[i].Seq < h[j].Seq }
func (h recordHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *recordHeap) Push(x any)        { *h = append(*h, x.(*proxy.Record)) }
func (h *recordHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// replayRecords replays the file's record lines in admission order (their
// seq), one op at a time, as one stream through one proxy.
func (rp *replayer) replayRecords(ctx context.Context, path string, prog *progress.Bar) error {
	var mu sync.Mutex
	var divs []proxy.Divergence
	p, err := rp.newProxy(rp.collect(&mu, &divs), nil, 0)
	if err != nil {
		return err
	}
	initial := p.Stats().Resyncs
	cctx := proxy.WithClient(context.WithoutCancel(ctx), "replay")
	var start, first time.Time
	var lastSeq uint64
	run := func(r *proxy.Record) {
		if r.Seq < lastSeq {
			rp.stats.outOfOrder++
		}
		lastSeq = max(lastSeq, r.Seq)
		if rp.cfg.Pace == "recorded" && !r.Time.IsZero() {
			if first.IsZero() {
				start, first = time.Now(), r.Time
			} else if wait := time.Until(start.Add(r.Time.Sub(first))); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
			}
		}
		res, err := rp.exec(cctx, p, r.Op)
		// The recorded answer of the library that serves the replay.
		var want *proxy.Outcome
		switch {
		case r.Serving.Backend == rp.names[0]:
			want = &r.Serving
		case r.Mirror != nil && r.Mirror.Backend == rp.names[0]:
			want = r.Mirror
		}
		if want != nil && want.Result != nil && want.Error == "" {
			rp.stats.recordedCompared++
			if err == nil && compare.Classify(want.Result, &res, compare.Rules{}) == "" {
				rp.stats.sameAsRecorded++
			}
		}
		prog.Add(1)
	}
	h := &recordHeap{}
	err = scanReplayFile(path, func(l replayLine) error {
		if l.rec == nil {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		heap.Push(h, l.rec)
		if h.Len() > reorderWindow {
			run(heap.Pop(h).(*proxy.Record))
		}
		return nil
	})
	for err == nil && h.Len() > 0 && ctx.Err() == nil {
		run(heap.Pop(h).(*proxy.Record))
	}
	closeReplayProxy(p)
	rp.stats.add(p.Stats(), initial)
	for _, d := range divs {
		if notAllowed(d) {
			rp.stats.notAllowed = append(rp.stats.notAllowed, d)
		}
	}
	if err != nil {
		return err
	}
	return ctx.Err()
}
