package proxy

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/metrics"
	"github.com/lighthouse-fs/lighthouse/order"
)

// logBuffer is how many lines may wait for a slow log writer before new
// ones are dropped (and counted): logging never blocks the serving path.
const logBuffer = 8192

// logWriters write the record and divergence logs on their own goroutines.
type logWriters struct {
	rec, div chan any
	done     sync.WaitGroup
	errs     [2]error
	m        *metrics.Proxy
}

func newLogWriters(divergences, records io.Writer, m *metrics.Proxy) *logWriters {
	l := &logWriters{m: m}
	start := func(w io.Writer, i int) chan any {
		if w == nil {
			return nil
		}
		ch := make(chan any, logBuffer)
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			bw := bufio.NewWriterSize(w, 64<<10)
			enc := json.NewEncoder(bw)
			for v := range ch {
				if err := enc.Encode(v); err != nil && l.errs[i] == nil {
					l.errs[i] = err
				}
				if len(ch) == 0 {
					bw.Flush()
				}
			}
			if err := bw.Flush(); err != nil && l.errs[i] == nil {
				l.errs[i] = err
			}
		}()
		return ch
	}
	l.div, l.rec = start(divergences, 0), start(records, 1)
	return l
}

func (l *logWriters) send(ch chan any, v any, name string) {
	if ch == nil {
		return
	}
	select {
	case ch <- v:
	default:
		l.m.Dropped.WithLabelValues(name).Inc()
	}
}

func (l *logWriters) divergence(d Divergence) { l.send(l.div, d, "divergence") }

func (l *logWriters) record(p *Proxy, r *rec, class, skip string) {
	if l.rec == nil {
		return
	}
	sv, mr := p.sides[r.serving], p.sides[r.serving.other()]
	line := Record{Time: r.admitted, Seq: r.seq, Client: r.client, Op: r.op,
		Serving: outcome(sv, &r.res[sv.idx], r.err[sv.idx]), Class: class, Skipped: skip}
	if r.mirrored {
		o := outcome(mr, &r.res[mr.idx], r.err[mr.idx])
		line.Mirror = &o
	}
	l.send(l.rec, line, "record")
}

func (l *logWriters) close() error {
	for _, ch := range []chan any{l.div, l.rec} {
		if ch != nil {
			close(ch)
		}
	}
	l.done.Wait()
	return errors.Join(l.errs[0], l.errs[1])
}

// history keeps the recent ops per path, so a divergence record carries
// what led to it and an audit can tell which bridge did what an op asked.
// Bounded: a few ops per path, a limited number of paths, and payloads
// kept only as a short head plus a digest of the whole, within a byte
// budget; past a bound it starts afresh.
type history struct {
	byPath map[string][]*histOp
	// cut is, per path, the newest op its list dropped to stay bounded:
	// before that the path's history has holes.
	cut   map[string]uint64
	bytes int64 // payload heads kept
}

// histOp is one op as the history keeps it, shared by its paths.
type histOp struct {
	seq uint64
	op  fsop.Op // Data and Value cut to historyKeepBytes
	// sum is the xxhash of the op's whole Data (a write) or Value (an
	// xattr), n its length: enough to check what a bridge stored.
	sum uint64
	n   int
	// served is the bridge that served it; acked: it answered success
	// (set when the op is accounted).
	served Side
	acked  atomic.Bool
	// otherOK: the other bridge answered success too (set when it finished).
	otherOK atomic.Bool
	// counted: a divergence was counted for it (its answers or the state
	// its read-back found), so an audit does not count its effect again.
	counted atomic.Bool
}

const (
	historyPerPath   = 16
	historyPaths     = 8192
	historyKeepBytes = 4 << 10  // payload head kept per op
	historyBudget    = 32 << 20 // payload heads kept in all
	historyFollow    = 64       // names one divergence's history may visit
)

// earlierName is the name p had before op, when op is a rename or link
// that gave p (through its ancestor or itself, a) the name it has now.
func earlierName(op *fsop.Op, a, p string) (string, bool) {
	if op.Kind != fsop.Rename && op.Kind != fsop.Link {
		return "", false
	}
	switch {
	case op.To == a:
		return op.Path + p[len(a):], true
	case op.Kind == fsop.Rename && op.Flags&fsop.RenameExchange != 0 && op.Path == a:
		return op.To + p[len(a):], true
	}
	return "", false
}

func newHistory() *history { return &history{byPath: map[string][]*histOp{}, cut: map[string]uint64{}} }

func (h *history) reset() { h.byPath, h.cut, h.bytes = map[string][]*histOp{}, map[string]uint64{}, 0 }

// add records r (admitted) on each of its paths and returns its entry.
func (h *history) add(r *rec) *histOp {
	if len(h.byPath) > historyPaths || h.bytes > historyBudget {
		h.reset()
	}
	e := &histOp{seq: r.seq, op: r.op, served: r.serving}
	payload := r.op.Data
	if len(r.op.Value) > 0 {
		payload = r.op.Value
	}
	e.sum, e.n = xxhash.Sum64(payload), len(payload)
	e.op.Data = cutCopy(e.op.Data)
	e.op.Value = cutCopy(e.op.Value)
	h.bytes += int64(len(e.op.Data) + len(e.op.Value))
	for _, p := range r.paths {
		l := h.byPath[p]
		if len(l) == historyPerPath {
			h.cut[p] = l[0].seq
			l = append(l[:0], l[1:]...)
		}
		h.byPath[p] = append(l, e)
	}
	return e
}

// cutCopy copies at most historyKeepBytes of b: the history must not pin
// the client's buffer.
func cutCopy(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b[:min(len(b), historyKeepBytes)]...)
}

// ancestorChanged reports whether a mutation admitted before seq changed
// an ancestor of path (a rename gave it its name, a mkdir created it): the
// path's own ops may be in the history under its earlier name.
func (h *history) ancestorChanged(path string, seq uint64) bool {
	for a := parentDir(path); a != order.Root; a = parentDir(a) {
		if len(h.mutations(a, seq)) > 0 {
			return true
		}
	}
	return false
}

// ancestorMovedAfter reports whether an op admitted between after and seq
// moved or removed an ancestor of path (a rename or rmdir naming it): what
// an op on path did before that now lives elsewhere, or nowhere. An
// ancestor whose history dropped ops after "after" may have moved: true.
// (A busy directory's few kept ops are all newer than its rename.)
func (h *history) ancestorMovedAfter(path string, after, seq uint64) bool {
	for a := parentDir(path); a != order.Root; a = parentDir(a) {
		if h.cut[a] > after {
			return true
		}
		for _, e := range h.mutations(a, seq) {
			if e.seq > after && (e.op.Kind == fsop.Rename || e.op.Kind == fsop.Rmdir) {
				return true
			}
		}
	}
	return false
}

// histAt is an op of a path's lineage and the name the path had then.
type histAt struct {
	h    *histOp
	path string
}

// lineage returns the mutations admitted before seq that changed path,
// newest first, followed back through a rename that gave path its name
// to the ops on the earlier name (at most historyFollow names).
func (h *history) lineage(path string, seq uint64) []histAt {
	var out []histAt
	for range historyFollow {
		var next string
		for _, e := range h.mutations(path, seq) {
			out = append(out, histAt{e, path})
			if e.op.Kind == fsop.Rename && e.op.To == path && e.op.Flags&fsop.RenameExchange == 0 && e.acked.Load() {
				next, seq = e.op.Path, e.seq
				break
			}
		}
		if next == "" {
			break
		}
		path = next
	}
	return out
}

// mutations returns the mutations admitted before seq that changed path
// itself, newest first.
func (h *history) mutations(path string, seq uint64) []*histOp {
	l := h.byPath[path]
	var out []*histOp
	for i := len(l) - 1; i >= 0; i-- {
		if e := l[i]; e.seq < seq && e.op.Kind.Mutates() && e.op.Kind != fsop.Close && e.op.Kind != fsop.Fsync {
			out = append(out, e)
		}
	}
	return out
}

// before returns the ops on paths (and the mutations of their ancestors)
// admitted before seq, oldest first. Names are followed back through
// renames and links: the history of b/f after "rename a b" includes what
// happened to a/f before it, since that is the same file.
func (h *history) before(seq uint64, paths []string) []fsop.Op {
	type name struct {
		path string
		seq  uint64 // ops on path count if admitted before this
	}
	seen := map[uint64]fsop.Op{}
	visited := map[string]uint64{}
	work := make([]name, 0, len(paths))
	for _, p := range paths {
		work = append(work, name{p, seq})
	}
	for len(work) > 0 && len(visited) < historyFollow {
		n := work[len(work)-1]
		work = work[:len(work)-1]
		if s, ok := visited[n.path]; ok && s >= n.seq {
			continue
		}
		visited[n.path] = n.seq
		for _, a := range append(order.Ancestors(n.path), n.path) {
			for _, e := range h.byPath[a] {
				if e.seq >= n.seq || (a != n.path && !e.op.Kind.Mutates()) {
					continue
				}
				seen[e.seq] = e.op
				if from, ok := earlierName(&e.op, a, n.path); ok {
					work = append(work, name{from, e.seq})
				}
			}
		}
	}
	seqs := make([]uint64, 0, len(seen))
	for s := range seen {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	ops := make([]fsop.Op, len(seqs))
	for i, s := range seqs {
		ops[i] = seen[s]
	}
	return ops
}
