package proxy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/order"
)

// Admission, under p.mu: where an op is served, whether it is mirrored,
// and its place in the conflict order of both bridges.

// admit gives op its place on both bridges and returns the record and a
// channel closed when the op may start on its serving bridge.
func (p *Proxy) admit(ctx context.Context, op *fsop.Op) (*rec, chan struct{}) {
	r := &rec{op: *op, admitted: time.Now(), size: int64(len(op.Data) + len(op.Value))}
	r.client, _ = ctx.Value(clientKey{}).(string)
	ready := make(chan struct{})

	p.mu.Lock()
	defer p.mu.Unlock()
	p.seqNo++
	r.seq = p.seqNo
	p.track(r)
	sv, mr := p.place(op, r)
	if r.serving != p.record && r.mirrored && p.cfg.ServeFallback > 0 {
		r.recDone = make(chan struct{}) // the record's answer can stand in for a late one
	}
	keys := p.conflictKeys(op, r.hpath)
	p.enqueue(r, sv, mr, keys, ready)
	if sc := r.resyncAfter; sc != nil {
		r.resyncAfter = nil
		p.resyncNow(mr, sc)
	}
	p.followHandles(op)
	p.pinMtimes(op, r)
	return r, ready
}

// place picks the bridge that serves r and decides whether r is mirrored
// to the other one, keeping the table of open handles. p.mu is held.
func (p *Proxy) place(op *fsop.Op, r *rec) (sv, mr *side) {
	var h *handleInfo
	if op.HandleBased() {
		if h = p.handles[op.Handle]; h != nil {
			r.hpath = h.path
		}
	}
	r.paths = order.Targets(op, r.hpath)
	p.updateRecord()
	r.serving = p.route(op, r, h)
	sv, mr = p.sides[r.serving], p.sides[r.serving.other()]
	if op.Kind == fsop.Open {
		h = &handleInfo{path: op.Path, flags: op.Flags}
		p.handles[op.Handle] = h
	}
	r.mirrored = p.mirrorable(mr, r, h)
	if op.Kind == fsop.Open && !r.mirrored {
		h.gone[mr.idx] = true
	}
	return sv, mr
}

// conflictKeys returns the keys that order op against the ops that
// conflict with it (none when the proxy runs unordered), and records in the
// alias table the names op links. p.mu is held.
func (p *Proxy) conflictKeys(op *fsop.Op, hpath string) []order.Key {
	paths, mode := order.LockPlan(op, hpath)
	keys := order.BuildKeys(op, p.aliases.Expand(paths), mode)
	if !p.aliases.Update(op) {
		p.warnEvery("alias table full", time.Minute, "alias table full: ops on new hard links and renamed names are ordered by name only", "max", order.MaxAliasNames)
	}
	if p.unordered {
		return nil
	}
	return keys
}

// enqueue puts r in the history and on the sequencers of sv and, when r
// is mirrored, of mr (and in mr's pending queue); ready is closed when r
// may start on sv. A mirrored mutation may get a read-back. p.mu is held.
func (p *Proxy) enqueue(r *rec, sv, mr *side, keys []order.Key, ready chan struct{}) {
	if r.mirrored {
		r.remaining.Store(2)
		r.elem = mr.pending.PushBack(r)
		mr.bytes += r.size
		mr.in++
		p.metrics.QueueDepth.WithLabelValues(mr.name).Set(float64(mr.pending.Len()))
		p.metrics.QueueBytes.WithLabelValues(mr.name).Set(float64(mr.bytes))
	} else {
		r.remaining.Store(1)
	}
	r.hist = p.history.add(r) // before a ticket can start the op anywhere
	r.tickets[sv.idx] = order.NewTicket(func() { close(ready) })
	sv.seq.Enqueue(r.tickets[sv.idx], keys)
	if r.mirrored {
		r.tickets[mr.idx] = order.NewTicket(func() { mr.work.push(func() { p.runMirror(r, mr) }) })
		mr.seq.Enqueue(r.tickets[mr.idx], keys)
		if r.op.Kind.Mutates() && r.op.Kind != fsop.Close && p.cfg.ReadbackRate > 0 && rand.Float64() < p.cfg.ReadbackRate {
			p.admitReadback(r)
		}
	}
}

// followHandles keeps the open handles in step with op: a close forgets
// its handle, and a handle whose name op removes or renames is marked
// moved. p.mu is held.
func (p *Proxy) followHandles(op *fsop.Op) {
	switch op.Kind {
	case fsop.Close:
		delete(p.handles, op.Handle)
	case fsop.Unlink:
		for _, hi := range p.handles {
			if hi.path == op.Path {
				hi.moved = true
			}
		}
	case fsop.Rename:
		// A handle keeps its file across a rename, which may yet fail: its
		// name and the file's possible new name become aliases (an exchange
		// moves files both ways).
		for _, hi := range p.handles {
			if order.Within(hi.path, op.Path) || order.Within(hi.path, op.To) {
				hi.moved = true
			}
			for _, mv := range [][2]string{{op.Path, op.To}, {op.To, op.Path}} {
				if mv[0] == op.To && op.Flags&fsop.RenameExchange == 0 {
					continue
				}
				if order.Within(hi.path, mv[0]) && !order.Within(mv[1], mv[0]) {
					p.aliases.Link(hi.path, mv[1]+hi.path[len(mv[0]):])
				}
			}
		}
	}
}

// pinMtimes notes whether the mtimes r compares were set explicitly (a
// stat's, a read-back's), and pins the mtimes op sets, through any name of
// the file. p.mu is held.
func (p *Proxy) pinMtimes(op *fsop.Op, r *rec) {
	if op.Kind == fsop.Stat || op.Kind == fsop.Lstat {
		r.mtime = p.mtimeSet(op.Path)
	}
	p.pin(op, p.aliases.Expand(r.paths)) // a write through any name of a file moves its mtime
	if rb := r.readback; rb != nil {
		rb.mtime = make([]bool, len(rb.ops))
		for i := range rb.ops {
			rb.mtime[i] = p.mtimeSet(rb.ops[i].Path)
		}
	}
}

// route picks the bridge that serves r: the rollout's choice, unless that
// bridge is out of step on r's paths (it missed ops there: serving would
// split the tree's history) or the store of record lags as a mirror (it
// must get every op the other bridge serves: the other serves nothing
// until the record catches up), or r goes through a handle h that is not
// open there. The record always serves what the other cannot. p.mu is
// held.
func (p *Proxy) route(op *fsop.Op, r *rec, h *handleInfo) Side {
	want := Primary
	if p.cfg.Route != nil {
		want = p.cfg.Route(op, r.hpath)
	}
	if want == p.record {
		return want
	}
	if !p.allInShare(r.paths) {
		return p.record // outside the mirror share: the other bridge does not have it
	}
	if p.recordPaused() || !p.sides[want].inStep(r.paths, structural(op)) {
		return p.record
	}
	if h != nil && h.gone[want] {
		// The handle is not open there (opened while that bridge was out
		// of step, or not reopened by its resync): it would answer EBADF.
		return p.record
	}
	return want
}

// recordPaused reports whether the store of record lags so far as a mirror
// that the other bridge must stop serving, with hysteresis: from half of a
// bound until an eighth. p.mu is held.
func (p *Proxy) recordPaused() bool {
	b := p.backlogLocked(p.sides[p.record])
	switch {
	case !p.paused && b >= 0.5:
		p.paused = true
		p.log.Warn("the store of record lags as a mirror: it serves every op until it catches up", "bridge", p.sides[p.record].name, "backlog", b)
	case p.paused && b < 1.0/8:
		p.paused = false
		p.log.Info("the store of record caught up: serving follows the rollout again", "bridge", p.sides[p.record].name)
	}
	return p.paused
}

// updateRecord makes the candidate the store of record in the full phase
// (it serves everything) and the primary otherwise; a bridge becomes the
// record only once it is in step everywhere. p.mu is held.
func (p *Proxy) updateRecord() {
	want := Primary
	if p.cfg.Weight != nil && p.cfg.Weight() >= 1 {
		want = Shadow
	}
	if want == p.record {
		return
	}
	if p.share.share < 1 {
		p.setShare(p.sides[want], 1, "it becomes the store of record")
	}
	if len(p.sides[want].scopes) > 0 || p.share.share < 1 {
		p.kickResync() // resynced from the current record first
		return
	}
	p.log.Info("store of record changed", "from", p.sides[p.record].name, "to", p.sides[want].name)
	p.resetShare(p.sides[p.record])
	p.record = want
}

// mirrorable decides whether r is mirrored to mr. The store of record gets
// every op; the other bridge skips ops in a subtree out of step there, and
// goes out of step as a whole when it falls past a bound. p.mu is held.
func (p *Proxy) mirrorable(mr *side, r *rec, h *handleInfo) bool {
	if mr.idx == p.record {
		return true
	}
	if p.sampleOut(mr, r) {
		return false
	}
	if sc := mr.covering(r.paths, structural(&r.op)); sc != nil {
		r.skip = sc.skipReason()
		p.skipInto(mr, sc, r)
		return false
	}
	if h != nil && h.gone[mr.idx] && r.op.Kind != fsop.Open {
		// The handle is not open there: a change through it reaches only
		// the serving bridge, whose file is then out of step.
		if r.op.Kind.Mutates() {
			p.addScope(mr, []string{h.path}, ScopeHandle, r.seq-1, false)
		}
		r.skip = SkipHandle
		return false
	}
	if r.op.HandleBased() && h == nil {
		// A handle the proxy never saw opened: the bridges answer EBADF,
		// which is fine to compare.
		return true
	}
	why := ""
	switch {
	case mr.pending.Len() >= p.cfg.MirrorMaxOps:
		why = fmt.Sprintf("mirror queue at %d ops", mr.pending.Len())
	case mr.bytes+r.size > p.cfg.MirrorMaxBytes:
		why = fmt.Sprintf("mirror queue at %d bytes", mr.bytes)
	case mr.pending.Len() > 0 && time.Since(mr.pending.Front().Value.(*rec).admitted) > p.cfg.MirrorMaxLag:
		why = "mirror lag past " + p.cfg.MirrorMaxLag.String()
	default:
		return true
	}
	p.markStale(mr, why, r.seq-1)
	p.skipInto(mr, mr.scopes[len(mr.scopes)-1], r)
	r.skip = SkipStale
	return false
}

// markStale puts the whole of s out of step (it fell behind): nothing new
// is mirrored to it until a resync. p.mu is held.
func (p *Proxy) markStale(s *side, reason string, from uint64) {
	if s.stale() {
		return
	}
	p.log.Warn("bridge out of step: mirroring paused until a resync", "bridge", s.name, "role", s.role, "reason", reason)
	p.addScopeAt(s, order.Root, ScopeLag, from).lastErr = reason
}
