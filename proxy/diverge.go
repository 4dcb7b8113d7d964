package proxy

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/order"
	"github.com/lighthouse-fs/lighthouse/rollout"
)

// The log types live with the comparator; these names keep the proxy's
// callers (replay, e2e) compiling while they move.
type (
	Outcome    = compare.Outcome
	Divergence = compare.Divergence
	Record     = compare.Record
)

// Stats summarise a proxy's run, for reports.
type Stats struct {
	mu        sync.Mutex
	Ops       int64
	Compared  int64
	Divergent int64            // divergences counted in the rate (allowed and shadow errors excluded)
	ByClass   map[string]int64 // every class, allowed and shadow_error included
	Skipped   map[string]int64 // by reason
	OrderOnly int64
	Resyncs   int64
	Fallbacks int64   // served ops the store of record answered in the serving bridge's place
	minShare  float64 // the lowest mirror share (0: never below 1)
	// ResyncBytes are the bytes resyncs copied; ResyncPauseMax the longest
	// the store of record held ops for a snapshot; AuditExpected and
	// AuditUncounted the differences audits did not count.
	ResyncBytes, AuditExpected, AuditUncounted int64
	ResyncPauseMax                             time.Duration
	Examples                                   map[string][]Divergence // the first few of each class
	served                                     [2]int64
	readbacks                                  atomic.Int64 // compared (or given up)
	rbAdmitted                                 atomic.Int64 // admitted: readbacks catches up when the mirror drains
	maxDepth                                   int
	maxLagSecs                                 float64
}

// Snapshot returns a copy of the counters (examples shared).
func (p *Proxy) Stats() StatsView {
	s := &p.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	v := StatsView{Ops: s.Ops, Compared: s.Compared, Divergent: s.Divergent, OrderOnly: s.OrderOnly, Pending: s.Ops - s.Compared,
		Resyncs: s.Resyncs, Fallbacks: s.Fallbacks, ByClass: map[string]int64{}, Skipped: map[string]int64{}, Examples: map[string][]Divergence{},
		ServedBy:  map[string]int64{p.sides[0].name: s.served[0], p.sides[1].name: s.served[1]},
		Readbacks: s.readbacks.Load(), ReadbacksAdmitted: s.rbAdmitted.Load(), MaxQueueDepth: s.maxDepth, MaxLagSeconds: s.maxLagSecs,
		ResyncBytes: s.ResyncBytes, ResyncPauseMax: s.ResyncPauseMax, AuditExpected: s.AuditExpected, AuditUncounted: s.AuditUncounted,
		MinMirrorShare: cmp.Or(s.minShare, 1)}
	for k, n := range s.ByClass {
		v.ByClass[k] = n
	}
	for k, n := range s.Skipped {
		v.Skipped[k] = n
		v.Pending -= n
	}
	for k, e := range s.Examples {
		v.Examples[k] = e
	}
	return v
}

// StatsView is a copy of a proxy's counters.
type StatsView struct {
	// Ops are the ops served. Each ends compared or skipped (by reason);
	// Pending are those whose outcome is not known yet (the mirror or a
	// read-back has not finished): Ops = Compared + sum(Skipped) + Pending.
	Ops, Compared, Pending        int64
	Divergent, OrderOnly, Resyncs int64
	// Fallbacks are the served ops the store of record answered in place
	// of a serving bridge that did not answer in time (Config.ServeFallback).
	Fallbacks int64
	// Readbacks counts the read-backs done, ReadbacksAdmitted those
	// admitted: equal when none is in flight.
	Readbacks, ReadbacksAdmitted int64
	ByClass, Skipped, ServedBy   map[string]int64
	Examples                     map[string][]Divergence
	MaxQueueDepth                int
	MaxLagSeconds                float64
	// What resyncs copied and their audits did not count (StatsView
	// ByClass["audit"] has what they counted).
	ResyncBytes, AuditExpected, AuditUncounted int64
	ResyncPauseMax                             time.Duration
	// MinMirrorShare is the lowest the mirror share went (1: never below
	// everything).
	MinMirrorShare float64
}

// Coverage is the share of the ops served whose outcome is known that
// were compared (1 when there are none), of those in the mirror share:
// the ops sampled out were never meant to be.
func (v StatsView) Coverage() float64 {
	done := v.Ops - v.Pending - v.Skipped[SkipSampled]
	if done <= 0 {
		return 1
	}
	return float64(v.Compared) / float64(done)
}

const examplesPerClass = 3

func (s *Stats) add(f func(s *Stats)) {
	s.mu.Lock()
	if s.ByClass == nil {
		s.ByClass, s.Skipped, s.Examples = map[string]int64{}, map[string]int64{}, map[string][]Divergence{}
	}
	f(s)
	s.mu.Unlock()
}

// asResult folds a refused op into a result, so that two refusals compare
// equal and a refusal against an answer differs by errno.
func asResult(res fsop.Result, err error) fsop.Result {
	if errors.Is(err, ErrRefused) {
		return fsop.Result{Errno: "REFUSED"}
	}
	return res
}

// failedOp puts the bridge that is not the store of record out of step
// where r, which failed on a bridge, may have left the two states
// different: all of it when it failed there (it may be down), r's subtree
// when the record failed it (the record's state is the truth, whatever r
// did to it). p.mu is held.
func (p *Proxy) failedOp(r *rec) {
	other := p.sides[p.record.other()]
	if err := r.err[other.idx]; failed(err) {
		p.markStale(other, other.role+" bridge failed an op: "+err.Error(), r.seq-1)
		return
	}
	p.resyncNow(other, p.addScope(other, r.paths, ScopeFailed, r.seq-1, false))
}

// failed reports whether err means the op may not have run.
func failed(err error) bool { return err != nil && !errors.Is(err, ErrRefused) }

// compare runs once both bridges answered r (or only the serving one, if r
// was not mirrored): it judges the pair and accounts for r, now or, when a
// read-back of the state r left is pending, once that arrives.
func (p *Proxy) compare(r *rec) {
	sv, mr := r.serving, r.serving.other()
	skip, class := r.skip, ""
	var j compare.Judgment
	var a, b fsop.Result
	if r.mirrored {
		p.mu.Lock()
		switch {
		case (failed(r.err[sv]) || failed(r.err[mr])) && p.stop.Err() != nil:
			skip = SkipShutdown // cut short by Close
		case failed(r.err[sv]) || failed(r.err[mr]):
			skip = SkipShadowError
			if failed(r.err[sv]) {
				skip = SkipServingError
			}
			p.failedOp(r)
		case p.waitReadback(r):
			// An earlier op on these paths still waits for its read-back,
			// which may find that the states differ: r is judged after it.
			p.mu.Unlock()
			return
		default:
			for _, s := range p.sides {
				if sc := s.incomparable(r); sc != nil {
					skip = sc.skipReason()
					if r.op.Kind.Mutates() {
						// It ran there on a state that differs (or answered
						// differently, unjudged: a renameat2 bazil refuses):
						// what it did is expected to differ, as if skipped.
						p.skipInto(s, sc, r)
					}
					break
				}
			}
		}
		p.mu.Unlock()
		switch skip {
		case "":
			a, b = asResult(r.res[sv], r.err[sv]), asResult(r.res[mr], r.err[mr])
			j = p.judge.Judge(compare.Input{Op: &r.op, Mtime: r.mtime, A: p.answer(sv, &a), B: p.answer(mr, &b)})
			class = j.Class
			if j.OrderOnly {
				p.metrics.Order.WithLabelValues(string(r.op.Kind)).Inc()
				p.stats.add(func(s *Stats) { s.OrderOnly++ })
			}
			if class != "" {
				p.diverge(r, j, nil, &a, &b, "")
			}
		case SkipShadowError:
			// Not compared, but kept as evidence: the log says what failed.
			p.diverge(r, compare.Judgment{Class: compare.ClassShadowError, Base: compare.ClassShadowError}, nil, &r.res[sv], &r.res[mr], "")
		}
	}
	if rb := r.readback; rb != nil {
		r.class, r.skip = class, skip
		r.judged.Store(true)
		rb.clean.Store(r.mirrored && skip == "" && class == "")
		rb.arrive(p)
		return
	}
	p.account(r, class, skip)
}

// observation describes r from the candidate's (the shadow's) side, and
// the serving side's latency.
func (p *Proxy) observation(r *rec, class, skip string) rollout.Observation {
	o := rollout.Observation{CandidateServed: r.serving == Shadow, ServingTime: r.dur[r.serving]}
	if r.err[r.serving] == nil && !r.niced {
		o.Op = string(r.op.Kind)
	}
	o.SampledOut = skip == SkipSampled
	ran := r.serving == Shadow || r.mirrored
	if !ran {
		return o
	}
	o.CandidateRan, o.CandidateTime = true, r.dur[Shadow]
	o.CandidateFailed = failed(r.err[Shadow])
	if r.mirrored && skip == "" && !o.CandidateFailed && !failed(r.err[Primary]) {
		o.Compared = true
		o.Divergent = class != "" && class != compare.ClassShadowError && class != compare.ClassAllowed
		if o.Divergent && r.fault == p.sides[Primary].name {
			// The evidence blames the primary: never held against the candidate.
			o.Divergent = false
		}
		// An errno only the candidate returned is an error, not just a divergence.
		if o.Divergent && r.res[Shadow].Errno != "" && r.res[Primary].Errno == "" {
			o.CandidateFailed = true
		}
	}
	return o
}

// diverge counts, logs and quarantines one divergence, judged j.
func (p *Proxy) diverge(r *rec, j compare.Judgment, readbackOp *fsop.Op, a, b *fsop.Result, fault string) {
	if r.hist != nil && j.Class != compare.ClassShadowError {
		// Before its read-back leaves the pending list, so an audit of
		// the subtree sees one or the other.
		r.hist.counted.Store(true)
	}
	sv, mr := p.sides[r.serving], p.sides[r.serving.other()]
	d := Divergence{Time: time.Now(), Seq: r.seq, Op: r.op, Class: j.Class, Readback: readbackOp,
		Serving: outcome(sv, a, r.err[sv.idx]), Mirror: outcome(mr, b, r.err[mr.idx]), Diff: j.Diff, Allowed: j.Allowed, Fault: fault}
	p.mu.Lock()
	d.Recent = p.history.before(r.seq, r.paths)
	// A read that answered differently leaves the states as they were; a
	// mutation that did, or a state that differs, needs a resync.
	// A mutation that answered differently leaves different states, even
	// when the difference is allowed (bazil refusing a renameat2 that
	// go-fuse performs); a state that differs does too, unless the
	// difference is allowed (a mode bit bazil does not report: the stores
	// agree).
	ownMutation := r.op.Kind.Mutates() && readbackOp == nil && !r.undone
	if d.Class != compare.ClassShadowError && (ownMutation || (readbackOp != nil && d.Class != compare.ClassAllowed)) {
		// The states differ under r's paths: that subtree of the bridge that
		// is not the record is out of step until its resync audits both.
		other := p.sides[p.record.other()]
		p.resyncNow(other, p.addScope(other, r.paths, ScopeDiverged, r.seq, true))
	}
	p.mu.Unlock()

	p.metrics.Divergence.WithLabelValues(string(r.op.Kind), d.Class).Inc()
	p.stats.add(func(s *Stats) {
		s.ByClass[d.Class]++
		if d.Class != compare.ClassAllowed && d.Class != compare.ClassShadowError {
			s.Divergent++
		}
		if len(s.Examples[d.Class]) < examplesPerClass {
			s.Examples[d.Class] = append(s.Examples[d.Class], d)
		}
	})
	p.logs.divergence(d)
	if p.cfg.OnDivergence != nil {
		p.cfg.OnDivergence(d)
	}
}

// answer names a result by its bridge's backend, for the comparator.
func (p *Proxy) answer(s Side, res *fsop.Result) compare.Answer {
	return compare.Answer{Backend: p.sides[s].name, Result: res}
}

func outcome(s *side, res *fsop.Result, err error) Outcome {
	o := Outcome{Backend: s.name, Role: s.role}
	if err != nil { // failed, or refused as a bad request
		o.Error = err.Error()
		return o
	}
	if res != nil {
		c := *res
		o.Result = &c
	}
	return o
}

// readback reads the state of the paths a mutation touched on both
// bridges, right after it in each bridge's order, to compare the state it
// left. The state (Bridge.State) comes from each bridge's store, so a
// read-back costs a round trip and no FUSE request: it does not hold the
// serving bridge's next op on those paths for long.
type readback struct {
	r      *rec
	ops    []fsop.Op // lstat per path: the op a state divergence is reported as
	mtime  []bool    // per path: its mtime was set explicitly, and is compared
	off, n []int64   // per path: the range the op wrote there (n 0: none)
	// waiters are later ops on the same paths, judged once rb arrives
	// (guarded by Proxy.mu).
	waiters []*rec
	res     [2][]fsop.Result
	t       [2]*order.Ticket
	clean   atomic.Bool  // the op itself compared equal: worth comparing state
	failed  atomic.Bool  // a read-back failed on a bridge: nothing to compare
	parts   atomic.Int32 // two sides and the op's own comparison
}

// admitReadback enqueues r's read-back on both bridges, right after r.
// p.mu is held.
func (p *Proxy) admitReadback(r *rec) {
	rb := &readback{r: r}
	var keys []order.Key
	for _, path := range r.paths {
		op := fsop.Op{Kind: fsop.Lstat, Path: path}
		rb.ops = append(rb.ops, op)
		off, n := writtenRange(&r.op, path, r.paths)
		rb.off, rb.n = append(rb.off, off), append(rb.n, n)
		keys = append(keys, order.KeysOf(&op, "")...)
	}
	if len(rb.ops) == 0 {
		return
	}
	rb.parts.Store(3)
	r.readback = rb
	p.stats.rbAdmitted.Add(1)
	if p.rbPending == nil {
		p.rbPending, p.rbPendingDir = map[string][]*readback{}, map[string][]*readback{}
	}
	for _, path := range r.paths {
		p.rbPending[path] = append(p.rbPending[path], rb)
		dir := parentDir(path)
		p.rbPendingDir[dir] = append(p.rbPendingDir[dir], rb)
	}
	for _, s := range p.sides {
		s := s
		rb.t[s.idx] = order.NewTicket(func() { s.work.push(func() { p.runReadback(rb, s) }) })
		s.seq.Enqueue(rb.t[s.idx], keys)
	}
}

// waitReadback reports whether r must wait to be judged: an earlier op on
// a path r touches has a read-back that has not arrived. r is then judged
// when it does. p.mu is held.
func (p *Proxy) waitReadback(r *rec) bool {
	wait := func(l []*readback) bool {
		for _, rb := range l {
			if rb.r.seq < r.seq {
				rb.waiters = append(rb.waiters, r)
				return true
			}
		}
		return false
	}
	for _, path := range r.paths {
		// A read-back of the path, of a directory above it (a rename of
		// it), or, for a directory, of a name in it (a create).
		if path == "" {
			continue
		}
		if wait(p.rbPending[path]) || wait(p.rbPendingDir[path]) {
			return true
		}
		for _, a := range order.Ancestors(path) {
			if wait(p.rbPending[a]) {
				return true
			}
		}
	}
	return false
}

// readbackDone forgets rb's pending read-back and returns the ops that
// waited for it.
func (p *Proxy) readbackDone(rb *readback) []*rec {
	p.mu.Lock()
	defer p.mu.Unlock()
	forget := func(m map[string][]*readback, key string) {
		l := m[key]
		for i, o := range l {
			if o == rb {
				l = append(l[:i], l[i+1:]...)
				break
			}
		}
		if len(l) == 0 {
			delete(m, key)
		} else {
			m[key] = l
		}
	}
	for _, path := range rb.r.paths {
		forget(p.rbPending, path)
		forget(p.rbPendingDir, parentDir(path))
	}
	w := rb.waiters
	rb.waiters = nil
	return w
}

// writtenRange is the range of path's content op wrote (n 0 when none):
// what a read-back asks a digest of, as evidence of the write.
func writtenRange(op *fsop.Op, path string, paths []string) (off, n int64) {
	if len(op.Data) == 0 || len(paths) == 0 || path != paths[0] {
		return 0, 0
	}
	switch op.Kind {
	case fsop.WriteFile:
		return 0, int64(len(op.Data))
	case fsop.Write, fsop.Pwrite:
		return op.Offset, int64(len(op.Data))
	case fsop.Append:
		return -1, int64(len(op.Data))
	}
	return 0, 0
}

func (p *Proxy) runReadback(rb *readback, s *side) {
	ctx, cancel := context.WithTimeout(p.stop, p.cfg.OpTimeout)
	defer cancel()
	res := make([]fsop.Result, len(rb.ops))
	for i := range rb.ops {
		var err error
		if res[i], err = s.b.State(ctx, rb.ops[i].Path, rb.off[i], rb.n[i]); err != nil {
			// A read-back that could not run says nothing about the state:
			// the op's own comparison or the stale mark covers the failure.
			rb.failed.Store(true)
			break
		}
	}
	rb.res[s.idx] = res
	s.seq.Done(rb.t[s.idx])
	rb.arrive(p)
}

// arrive counts one of the three parts; the last compares the states and
// accounts for the op.
func (rb *readback) arrive(p *Proxy) {
	if rb.parts.Add(-1) != 0 {
		return
	}
	p.stats.readbacks.Add(1)
	r := rb.r
	class, skip := r.class, r.skip // written before the op's own part arrived
	defer func() {
		p.account(r, class, skip)
		for _, w := range p.readbackDone(rb) {
			p.compare(w) // judged now that rb's outcome is known
		}
	}()
	if rb.failed.Load() || class != "" {
		return // no states to compare, or the op's answers already differed
	}
	sv, mr := r.serving, r.serving.other()
	p.mu.Lock()
	comparable := rb.clean.Load() && p.sides[0].incomparable(r) == nil && p.sides[1].incomparable(r) == nil
	rec := p.record
	p.mu.Unlock()
	// Evidence counts only what both bridges said they did.
	acked := !failed(r.err[0]) && !failed(r.err[1]) && r.err[0] == nil && r.err[1] == nil &&
		r.res[0].Errno == "" && r.res[1].Errno == ""
	for i := range rb.ops {
		a, b := &rb.res[sv][i], &rb.res[mr][i]
		j := p.judge.Judge(compare.Input{Op: &rb.ops[i], ReadBack: true, Mtime: rb.mtime[i], A: p.answer(sv, a), B: p.answer(mr, b)})
		if j.Class == "" {
			continue
		}
		fault := ""
		if acked {
			views := [2]view{stateView{&rb.res[0][i]}, stateView{&rb.res[1][i]}}
			switch blame(r.hist, r.op.Data, rb.ops[i].Path, views[rec], views[rec.other()]) {
			case "record":
				fault = p.sides[rec].name
			case "other":
				fault = p.sides[rec.other()].name
			}
		}
		switch {
		case comparable:
		case fault != "" && j.Class != compare.ClassAllowed:
			// The states differed already (an earlier divergence), but the
			// evidence stands alone: a bridge said it did what the op asked
			// and does not hold it. The op is compared by that evidence.
			skip = ""
		default:
			continue
		}
		r.fault = fault
		p.diverge(r, j, &rb.ops[i], a, b, fault)
		class = j.Class // the op answered the same; the state it left did not
		return
	}
}
