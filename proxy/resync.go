package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/bridgeclient"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/order"
)

// Resync backoff after a failed attempt: it doubles from resyncBackoff up
// to resyncBackoffMax, so a dead source is retried, never in a hot loop.
const (
	resyncBackoff    = 500 * time.Millisecond
	resyncBackoffMax = 30 * time.Second
)

// errRecord refuses a resync whose target is the store of record.
var errRecord = errors.New("the store of record is never overwritten by the other bridge")

// reopenHandle is a handle to close and open again on a resynced bridge
// (closed only, if its path may name another file now).
type reopenHandle struct {
	id    uint64
	path  string
	flags int
	moved bool
}

// handlesUnder lists the handles on a file under root to close on tgt
// before its copy is replaced and open again after: those open there, or
// moved there (any name the file may have now), and those not open there
// whose name still names their file (opened while tgt was out of step
// there, or outside the mirror share): the copy installed has that file,
// so they are open on tgt from the barrier on, and ops through them are
// mirrored and compared again. A moved handle is gone on tgt from here
// on: an op through it admitted after the barrier would find it closed
// there. p.mu is held.
func (p *Proxy) handlesUnder(tgt *side, root string) []reopenHandle {
	var hs []reopenHandle
	for id, h := range p.handles {
		if (!h.gone[tgt.idx] || !h.moved) && p.under(h, root) {
			hs = append(hs, reopenHandle{id: id, path: h.path, flags: h.flags, moved: h.moved})
			h.gone[tgt.idx] = h.moved
		}
	}
	return hs
}

func (p *Proxy) under(h *handleInfo, root string) bool {
	names := []string{h.path}
	if h.moved {
		names = p.aliases.Expand(names)
	}
	for _, n := range names {
		if order.Within(n, root) {
			return true
		}
	}
	return false
}

// closeHandles closes hs on tgt before its subtree is replaced: the files
// they hold are about to go.
func closeHandles(ctx context.Context, tgt *side, hs []reopenHandle) {
	for _, h := range hs {
		op := fsop.Op{Kind: fsop.Close, Handle: h.id}
		tgt.b.Exec(ctx, &op) // EBADF if it was never open there: nothing to close
	}
}

// reopenHandles opens hs again on the restored bridge, without creating or
// truncating. A handle that cannot be reopened (its file was unlinked while
// open, or its path may name another file now) is gone there: ops through
// it are not mirrored, and a change through it puts its file out of step.
func (p *Proxy) reopenHandles(ctx context.Context, tgt *side, hs []reopenHandle) {
	for _, h := range hs {
		if !h.moved {
			op := fsop.Op{Kind: fsop.Open, Path: h.path, Handle: h.id, Flags: h.flags &^ (unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC)}
			res, err := tgt.b.Exec(ctx, &op)
			if err == nil && res.Errno == "" {
				continue
			}
		}
		p.mu.Lock()
		if hi := p.handles[h.id]; hi != nil {
			hi.gone[tgt.idx] = true
		}
		p.mu.Unlock()
	}
}

func contextTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// lagLoop keeps the lag gauges current, marks a bridge that is not the
// store of record stale when its oldest mirrored op is older than the bound
// even if no new op arrives (a hung bridge), and forgets resynced scopes
// that no op in flight straddles any more.
func (p *Proxy) lagLoop() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.closed:
			return
		case <-t.C:
		}
		oldest := p.open.oldest()
		p.mu.Lock()
		for _, s := range p.sides {
			lag := 0.0
			if f := s.pending.Front(); f != nil {
				lag = time.Since(f.Value.(*rec).admitted).Seconds()
				if lag > p.cfg.MirrorMaxLag.Seconds() && s.idx != p.record {
					p.markStale(s, fmt.Sprintf("oldest mirrored op waits %.1fs", lag), p.seqNo)
				}
			}
			s.settle(oldest)
			if s.idx != p.record {
				p.adaptShare(s, time.Now())
			}
			p.metrics.Lag.WithLabelValues(s.name).Set(lag)
			p.metrics.Stale.WithLabelValues(s.name).Set(float64(len(s.scopes)))
			depth := s.pending.Len()
			p.stats.add(func(st *Stats) {
				st.maxDepth = max(st.maxDepth, depth)
				st.maxLagSecs = max(st.maxLagSecs, lag)
			})
		}
		p.mu.Unlock()
	}
}

// resyncLoop resyncs the scopes that are out of step, each as soon as it
// can (after a failure, with backoff), from the store of record.
func (p *Proxy) resyncLoop() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.closed:
			return
		case <-p.resyncKick:
		case <-t.C:
		}
		for {
			tgt, sc := p.nextResync()
			if sc == nil {
				break
			}
			p.resyncScope(tgt, sc)
			select {
			case <-p.closed:
				return
			default:
			}
		}
	}
}

// nextResync picks a scope due for a resync, if any.
func (p *Proxy) nextResync() (*side, *scope) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.updateRecord()
	now := time.Now()
	for _, s := range p.sides {
		if s.idx == p.record {
			continue
		}
		for _, sc := range s.scopes {
			if sc.held == "" && sc.barrier == 0 && !now.Before(sc.next) {
				return s, sc
			}
		}
	}
	return nil, nil
}

// Resync brings the whole of tgt in step with the store of record now (the
// admin API and tests); the store of record itself is never a target.
func (p *Proxy) Resync(tgt Side) error {
	p.mu.Lock()
	if tgt == p.record {
		p.mu.Unlock()
		return fmt.Errorf("resync %s: %w", p.sides[tgt].name, errRecord)
	}
	sc := p.addScopeAt(p.sides[tgt], order.Root, ScopeLag, p.seqNo)
	sc.lastErr = "asked for"
	p.mu.Unlock()
	return p.resyncScope(p.sides[tgt], sc)
}

// ResyncSubtree resyncs the subtree at path of the named bridge from the
// store of record now (POST /admin/resync). With force it copies even a
// subtree whose audit found the record at fault (held): the operator has
// checked both copies and chosen the record's.
func (p *Proxy) ResyncSubtree(bridge, path string, force bool) error {
	path, err := fsop.CleanPath(path)
	if err != nil {
		return err
	}
	p.mu.Lock()
	var tgt *side
	for _, s := range p.sides {
		if s.name == bridge || s.role == bridge {
			tgt = s
		}
	}
	switch {
	case tgt == nil:
		p.mu.Unlock()
		return fmt.Errorf("no bridge %q behind this proxy (%s, %s)", bridge, p.sides[0].name, p.sides[1].name)
	case tgt.idx == p.record:
		p.mu.Unlock()
		return fmt.Errorf("resync %s: %w", tgt.name, errRecord)
	}
	sc := p.addScopeAt(tgt, path, "asked for", p.seqNo)
	if force {
		sc.held, sc.force = "", true
	}
	sc.next = time.Time{}
	p.mu.Unlock()
	return p.resyncScope(tgt, sc)
}

// resyncOutcome is what the target half of a resync did.
type resyncOutcome struct {
	err     error
	settled bool   // settleResync ran (the target half did)
	held    string // the audit refused to copy, and why
	bytes   int
	audit   auditResult
	paused  time.Duration
}

// resyncScope audits sc on tgt against the store of record and, unless the
// audit finds the record at fault, replaces tgt's copy of the subtree with
// the record's. A barrier (X on the subtree's root) is admitted on both
// bridges: on the record it holds the ops under root only while the
// snapshot is taken; on tgt every later op under root waits until the copy
// is installed. Ops admitted from the barrier on are compared again.
func (p *Proxy) resyncScope(tgt *side, sc *scope) error {
	ctx, cancel := contextTimeout(time.Second)
	probe := fsop.Op{Kind: fsop.Stat, Path: order.Root}
	_, err := tgt.b.Exec(ctx, &probe)
	cancel()
	if failed(err) {
		// Down: probe again in a second (cheap), and say so once a minute.
		p.mu.Lock()
		sc.lastErr, sc.next = "bridge not reachable: "+err.Error(), time.Now().Add(time.Second)
		p.mu.Unlock()
		p.warnEvery("unreachable "+tgt.name, time.Minute, "resync waits: the bridge does not answer", "bridge", tgt.name, "err", err)
		return err
	}
	p.mu.Lock()
	if tgt.idx == p.record {
		p.mu.Unlock()
		return errRecord
	}
	run := p.beginResync(tgt, sc)
	begun := sc.run
	p.mu.Unlock()
	if run == nil {
		if begun != nil { // begun already (by the resync loop): wait for it, so the caller sees its result
			select {
			case <-begun.finished:
			case <-p.closed:
				return errClosed
			}
		}
		return nil
	}
	return p.finishResync(tgt, sc, run)
}

// resyncNow begins sc's resync at once (a divergence's small subtree: the
// barrier comes right after what was admitted, so no op after it is left
// unmirrored) and finishes it on its own goroutine. p.mu is held.
func (p *Proxy) resyncNow(tgt *side, sc *scope) {
	if tgt.idx == p.record || sc.held != "" || sc.reason == ScopeLag {
		return // a lagging bridge waits for the resync loop, which probes it first
	}
	if run := p.beginResync(tgt, sc); run != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.finishResync(tgt, sc, run)
		}()
	}
}

// resyncRun is one begun resync: its outcome comes on out (read once, by
// finishResync), and finished is closed once it is settled.
type resyncRun struct {
	out      chan resyncOutcome
	finished chan struct{}
}

// beginResync admits sc's barrier on both bridges and returns where its
// outcome will come, or nil if sc is not waiting for one. On the record
// the barrier holds the ops under root only while the snapshot is taken;
// on tgt every later op under root waits until the copy is installed. Ops
// admitted from the barrier on are mirrored and compared again. p.mu is
// held.
func (p *Proxy) beginResync(tgt *side, sc *scope) *resyncRun {
	if sc.barrier != 0 || sc.held != "" || !removeScope(&tgt.scopes, sc) {
		return nil
	}
	src := p.sides[tgt.idx.other()]
	snapCh := make(chan []byte, 1)
	run := &resyncRun{out: make(chan resyncOutcome, 1), finished: make(chan struct{})}
	sc.run = run
	done := run.out
	var srcT, tgtT *order.Ticket
	var pause time.Duration
	srcT = order.NewTicket(func() {
		src.work.push(func() {
			start := time.Now()
			ctx, cancel := context.WithTimeout(p.stop, p.cfg.OpTimeout)
			snap, err := src.b.SnapshotSubtree(ctx, sc.root)
			cancel()
			src.seq.Done(srcT)
			pause = time.Since(start)
			p.metrics.ResyncPause.Observe(pause.Seconds())
			if err != nil {
				done <- resyncOutcome{err: fmt.Errorf("snapshot of %s on %s: %w", sc.root, src.name, err)}
				snap = nil
			}
			snapCh <- snap
		})
	})
	hs := p.handlesUnder(tgt, sc.root)
	tgtT = order.NewTicket(func() {
		tgt.work.push(func() {
			defer tgt.seq.Done(tgtT)
			var snap []byte
			select {
			case snap = <-snapCh:
			case <-p.closed: // the source's half may never run now
			}
			if snap == nil {
				return
			}
			out := p.installScope(tgt, sc, snap, hs)
			out.paused = pause
			// Settled before the barrier is released: an op after it must
			// find sc held or back out of step, not compare against a copy
			// that was not installed.
			out.err, out.settled = p.settleResync(tgt, sc, out), true
			done <- out
		})
	})
	sc.pinned = p.pinnedUnder(sc.root) // as of the barrier, where the copies are taken
	p.seqNo++
	sc.barrier = p.seqNo
	tgt.settled = append(tgt.settled, sc)
	keys := order.BuildKeys(&fsop.Op{}, []string{sc.root}, order.X)
	src.seq.Enqueue(srcT, keys)
	tgt.seq.Enqueue(tgtT, keys)
	p.metrics.Stale.WithLabelValues(tgt.name).Set(float64(len(tgt.scopes)))
	return run
}

// finishResync waits for sc's resync (settled by its target half).
func (p *Proxy) finishResync(tgt *side, sc *scope, run *resyncRun) error {
	var out resyncOutcome
	select {
	case out = <-run.out:
	case <-p.closed:
		// The barrier may wait behind ops that will not finish before the
		// workers stop: leave it, the proxy is going away.
		return errClosed
	}
	defer close(run.finished)
	if out.settled {
		return out.err
	}
	return p.settleResync(tgt, sc, out) // the snapshot of the record failed
}

// settleResync accounts for what a resync did: counted and copied, held,
// or failed (widened or retried).
func (p *Proxy) settleResync(tgt *side, sc *scope, out resyncOutcome) error {
	p.countAudit(tgt, sc, out.audit)
	switch {
	case out.err != nil:
		return p.resyncFailed(tgt, sc, out.err)
	case out.held != "":
		p.holdScope(tgt, sc, out.held)
		return nil
	}
	p.metrics.Resyncs.WithLabelValues(tgt.name, "ok").Inc()
	p.metrics.ResyncBytes.WithLabelValues(tgt.name).Add(float64(out.bytes))
	p.stats.add(func(s *Stats) {
		s.Resyncs++
		s.ResyncBytes += int64(out.bytes)
		s.ResyncPauseMax = max(s.ResyncPauseMax, out.paused)
	})
	p.log.Info("resynced", "bridge", tgt.name, "from", p.sides[tgt.idx.other()].name, "subtree", sc.root, "reason", sc.reason,
		"bytes", out.bytes, "pause", out.paused, "audit_counted", out.audit.counted, "audit_expected", out.audit.expected)
	return nil
}

// infoer is a bridge that says what it runs (bridgeclient.Client does).
type infoer interface {
	Info(ctx context.Context) (fsop.BridgeInfo, error)
}

// recordLoss says why src must not be copied from: its store reports a
// repaired data loss (acknowledged records moved aside at start), so its
// copy may lack what the other bridge still has. "" when it reports none
// or cannot say (a bridge without /v1/info).
func recordLoss(ctx context.Context, src *side) (string, error) {
	b, ok := src.b.(infoer)
	if !ok {
		return "", nil
	}
	info, err := b.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("info of %s: %w", src.name, err)
	}
	if l := info.DataLoss; l != nil {
		return fmt.Sprintf("%s's store reports data loss (%d bytes of acknowledged log after lsn %d moved to %s): restore it, or clear the loss with `lighthouse store repair --clear-loss`, then force the resync",
			src.name, l.Bytes, l.AfterLSN, l.Quarantine), nil
	}
	return "", nil
}

// installScope runs on tgt at the barrier: it audits tgt's copy of sc
// against the record's (snap) and installs snap unless the audit refuses
// or the record's store reports a data loss.
func (p *Proxy) installScope(tgt *side, sc *scope, snap []byte, hs []reopenHandle) resyncOutcome {
	ctx, cancel := context.WithTimeout(p.stop, p.cfg.OpTimeout)
	defer cancel()
	if !sc.force {
		why, err := recordLoss(ctx, p.sides[tgt.idx.other()])
		if err != nil {
			return resyncOutcome{err: err}
		}
		if why != "" {
			return resyncOutcome{held: why}
		}
	}
	mine, err := tgt.b.SnapshotSubtree(ctx, sc.root)
	if err != nil && !errors.Is(err, ErrRefused) {
		return resyncOutcome{err: fmt.Errorf("snapshot of %s on %s: %w", sc.root, tgt.name, err)}
	}
	if err != nil {
		return resyncOutcome{err: err} // not a directory there: widened by resyncFailed
	}
	out := resyncOutcome{bytes: len(snap)}
	out.audit, err = p.audit(sc, p.sides[tgt.idx.other()], snap, tgt, mine)
	if err != nil {
		return resyncOutcome{err: fmt.Errorf("audit of %s: %w", sc.root, err)}
	}
	if out.audit.recordAtFault != "" && !sc.force {
		out.held = out.audit.recordAtFault
		return out
	}
	closeHandles(ctx, tgt, hs)
	if err := tgt.b.RestoreSubtree(ctx, sc.root, snap); err != nil {
		p.reopenHandles(ctx, tgt, hs)
		out.err = fmt.Errorf("restore %s on %s: %w", sc.root, tgt.name, err)
		return out
	}
	p.reopenHandles(ctx, tgt, hs)
	return out
}

// removeScope takes sc out of list, reporting whether it was there.
func removeScope(list *[]*scope, sc *scope) bool {
	for i, o := range *list {
		if o == sc {
			*list = append((*list)[:i], (*list)[i+1:]...)
			return true
		}
	}
	return false
}

// resyncFailed puts sc back, widened when the subtree could not be copied
// alone (a hard link out of it, or its root is not a directory on a
// bridge), otherwise with backoff. Ops that ran on tgt after the barrier
// ran on the old copy: the next audit cannot account for them.
func (p *Proxy) resyncFailed(tgt *side, sc *scope, err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	removeScope(&tgt.settled, sc)
	if sc.barrier != 0 {
		sc.uncertain = true
	}
	sc.barrier = 0
	sc.lastErr = err.Error()
	var cl *bridgeclient.CrossLinkError
	switch {
	case errors.As(err, &cl) && sc.root != order.Root:
		p.widen(tgt, sc, commonAncestor(sc.root, parentDir(cl.Outside)))
		return err
	case (errors.Is(err, bridgeclient.ErrCrossLink) || errors.Is(err, ErrRefused)) && sc.root != order.Root:
		p.widen(tgt, sc, parentDir(sc.root))
		return err
	}
	sc.attempts++
	sc.next = time.Now().Add(min(resyncBackoff<<min(sc.attempts-1, 10), resyncBackoffMax))
	tgt.scopes = append(tgt.scopes, sc)
	p.metrics.Resyncs.WithLabelValues(tgt.name, "failed").Inc()
	p.log.Error("resync failed: retrying", "bridge", tgt.name, "subtree", sc.root, "attempt", sc.attempts, "next_in", time.Until(sc.next).Round(time.Millisecond), "err", err)
	return err
}

// widen puts sc back as a scope rooted at root, merged with the scopes it
// now holds. p.mu is held.
func (p *Proxy) widen(tgt *side, sc *scope, root string) {
	p.log.Info("resync widened: the subtree cannot be copied alone", "bridge", tgt.name, "from", sc.root, "to", root, "why", sc.lastErr)
	p.addScopeAt(tgt, root, sc.reason, sc.from).absorb(sc)
}

// holdScope keeps sc out of step without copying: the audit found that the
// store of record lost what the other bridge has. Only an operator can
// tell which copy to keep (docs/ARCHITECTURE.md, "Subtree resync").
func (p *Proxy) holdScope(tgt *side, sc *scope, why string) {
	p.mu.Lock()
	removeScope(&tgt.settled, sc)
	sc.barrier, sc.held, sc.uncertain = 0, why, true
	tgt.scopes = append(tgt.scopes, sc)
	held := 0
	for _, o := range tgt.scopes {
		if o.held != "" {
			held++
		}
	}
	p.metrics.ResyncHeld.WithLabelValues(tgt.name).Set(float64(held))
	p.mu.Unlock()
	p.kickResync()
	p.log.Error("RESYNC HELD: the store of record may lack what the other bridge has; the subtree is not copied, compared or served by the other bridge until an operator resolves it",
		"record", p.sides[tgt.idx.other()].name, "bridge", tgt.name, "subtree", sc.root, "why", why)
}
