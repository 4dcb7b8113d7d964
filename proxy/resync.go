package proxy

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/order"
)

// reopenHandle is a handle to open again on a resynced bridge.
type reopenHandle struct {
	id    uint64
	path  string
	flags int
}

// reopenHandles opens the handles that were open at a resync barrier on
// the restored bridge, without creating or truncating. A handle that cannot
// be reopened (its file was unlinked while open) stays unmirrored, and its
// path is quarantined until the next resync.
func (p *Proxy) reopenHandles(ctx context.Context, tgt *side, hs []reopenHandle) {
	for _, h := range hs {
		op := fsop.Op{Kind: fsop.Open, Path: h.path, Handle: h.id, Flags: h.flags &^ (unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC)}
		res, err := tgt.b.Exec(ctx, &op)
		if err == nil && res.Errno == "" {
			continue
		}
		p.mu.Lock()
		if hi := p.handles[h.id]; hi != nil {
			hi.barriers[tgt.idx] = tgt.barriers - 1 // stale there: not mirrored
			tgt.quarantine = append(tgt.quarantine, hi.path)
		}
		p.mu.Unlock()
	}
}

func contextTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// lagLoop keeps the lag gauges current and marks a bridge stale when its
// oldest mirrored op is older than the bound even if no new op arrives
// (a hung bridge).
func (p *Proxy) lagLoop() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.closed:
			return
		case <-t.C:
		}
		p.mu.Lock()
		for _, s := range p.sides {
			lag := 0.0
			if f := s.pending.Front(); f != nil {
				lag = time.Since(f.Value.(*rec).admitted).Seconds()
				if lag > p.cfg.MirrorMaxLag.Seconds() {
					p.markStale(s, fmt.Sprintf("oldest mirrored op waits %.1fs", lag))
				}
			}
			p.metrics.Lag.WithLabelValues(s.name).Set(lag)
			depth := s.pending.Len()
			p.stats.add(func(st *Stats) {
				st.maxDepth = max(st.maxDepth, depth)
				st.maxLagSecs = max(st.maxLagSecs, lag)
			})
		}
		p.mu.Unlock()
	}
}

// resyncLoop resyncs bridges that are stale, or that diverged (rate
// limited), from the other bridge.
func (p *Proxy) resyncLoop() {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.closed:
			return
		case <-p.resyncKick:
		case <-t.C:
		}
		for _, s := range p.sides {
			if p.needsResync(s) {
				p.resync(s)
			}
		}
	}
}

func (p *Proxy) needsResync(s *side) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sides[s.idx.other()].stale {
		return false // no good source
	}
	if s.stale {
		return true
	}
	return len(s.quarantine) > 0 && time.Since(s.lastResync) >= p.cfg.ResyncInterval
}

// Resync brings tgt in step with the other bridge now (also used by tests
// and the admin API).
func (p *Proxy) Resync(tgt Side) error { return p.resync(p.sides[tgt]) }

// resync installs a snapshot of the other bridge on tgt. A barrier (an op
// that conflicts with every other) is admitted on both bridges: on the
// source it holds the serving path only while the snapshot is taken, on
// the target every later op waits until the snapshot is installed. Ops
// admitted from the barrier on are mirrored again.
func (p *Proxy) resync(tgt *side) error {
	src := p.sides[tgt.idx.other()]
	ctx, cancel := contextTimeout(time.Second)
	probe := fsop.Op{Kind: fsop.Stat, Path: "."}
	_, err := tgt.b.Exec(ctx, &probe)
	cancel()
	if failed(err) {
		return fmt.Errorf("resync %s: bridge not reachable: %w", tgt.name, err) // try again later
	}

	snapCh := make(chan []byte, 1)
	result := make(chan error, 1)
	barrier := []order.Key{{Name: order.Root, Mode: order.X}}
	var srcT, tgtT *order.Ticket
	srcT = order.NewTicket(func() {
		src.work.push(func() {
			start := time.Now()
			ctx, cancel := contextTimeout(p.cfg.OpTimeout)
			snap, err := src.b.Snapshot(ctx)
			cancel()
			src.seq.Done(srcT)
			p.metrics.ResyncPause.Observe(time.Since(start).Seconds())
			if err != nil {
				result <- fmt.Errorf("snapshot of %s: %w", src.name, err)
				snap = nil
			}
			snapCh <- snap
		})
	})
	var reopen []reopenHandle // the handles open at the barrier
	tgtT = order.NewTicket(func() {
		tgt.work.push(func() {
			var snap []byte
			select {
			case snap = <-snapCh:
			case <-p.closed: // the source's half may never run now
			}
			if snap != nil {
				ctx, cancel := contextTimeout(p.cfg.OpTimeout)
				if err := tgt.b.Restore(ctx, snap); err != nil {
					result <- fmt.Errorf("restore %s: %w", tgt.name, err)
				} else {
					p.reopenHandles(ctx, tgt, reopen)
					result <- nil
				}
				cancel()
			}
			tgt.seq.Done(tgtT)
		})
	})

	p.mu.Lock()
	wasStale, reason := tgt.stale, tgt.reason
	tgt.prevQuar = tgt.quarantine
	tgt.stale, tgt.quarantine, tgt.lastResync = false, nil, time.Now()
	tgt.barriers++
	// Handles open now are gone on the target after the restore; they are
	// reopened there before any later op runs (the barrier holds them).
	for id, h := range p.handles {
		reopen = append(reopen, reopenHandle{id: id, path: h.path, flags: h.flags})
		h.barriers[tgt.idx] = tgt.barriers
	}
	p.metrics.Stale.WithLabelValues(tgt.name).Set(0)
	src.seq.Enqueue(srcT, barrier)
	tgt.seq.Enqueue(tgtT, barrier)
	p.history.reset()
	p.mu.Unlock()

	select {
	case err = <-result:
	case <-p.closed:
		// The barrier may wait behind ops that will not finish before the
		// workers stop: leave it, the proxy is going away.
		return errClosed
	}
	if err != nil {
		p.mu.Lock()
		tgt.epoch++ // what ran on it after the barrier is not comparable
		p.markStale(tgt, "resync failed: "+err.Error())
		p.mu.Unlock()
		p.metrics.Resyncs.WithLabelValues(tgt.name, "failed").Inc()
		p.log.Error("resync failed", "bridge", tgt.name, "err", err)
		return err
	}
	p.metrics.Resyncs.WithLabelValues(tgt.name, "ok").Inc()
	p.stats.add(func(s *Stats) { s.Resyncs++ })
	if !wasStale {
		reason = "diverged"
	}
	p.log.Info("resynced", "bridge", tgt.name, "from", src.name, "reason", reason)
	return nil
}
