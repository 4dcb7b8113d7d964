package proxy

import "sync"

// Why an op was not compared: the reason label of
// lighthouse_proxy_mirror_skipped_total and the keys of StatsView.Skipped.
// Every op the proxy serves ends in exactly one outcome: compared (equal,
// divergent or allowed), or not compared for one of these reasons, so
// Compared plus every Skipped count equals Ops once nothing is pending.
const (
	// SkipStale: the mirror bridge was out of step (behind its bound, or
	// failed) when the op came, so it was not mirrored.
	SkipStale = "stale"
	// SkipQuarantined: the op touched paths whose states already differed
	// (an earlier divergence), waiting for their resync.
	SkipQuarantined = "quarantined"
	// SkipHandle: through a handle opened before the mirror bridge's last
	// resync, which the resync closed there.
	SkipHandle = "handle"
	// SkipShadowError: the mirror bridge could not run the op (transport
	// failure, timeout); the divergence log keeps the error.
	SkipShadowError = "shadow_error"
	// SkipServingError: the serving bridge failed the op, which may have
	// half-run there.
	SkipServingError = "serving_error"
	// SkipResync: a resync replaced the state the op ran on before it
	// could be compared.
	SkipResync = "resync"
	// SkipShutdown: the proxy closed while the op was still in flight on
	// the mirror bridge.
	SkipShutdown = "shutdown"
)

// SkipReasons lists every reason, for metrics and reports.
var SkipReasons = []string{SkipStale, SkipQuarantined, SkipHandle, SkipShadowError, SkipServingError, SkipResync, SkipShutdown, SkipSampled}

// openRecs are the ops admitted and not yet accounted for: at Close, those
// still in flight are accounted as SkipShutdown (or by their own
// comparison, when only their read-back is missing).
type openRecs struct {
	mu   sync.Mutex
	recs map[uint64]*rec
}

// track registers r as open. p.mu is held.
func (p *Proxy) track(r *rec) {
	p.open.mu.Lock()
	if p.open.recs == nil {
		p.open.recs = map[uint64]*rec{}
	}
	p.open.recs[r.seq] = r
	p.open.mu.Unlock()
}

// oldest is the sequence number of the oldest op not accounted for
// (the largest possible when there is none).
func (o *openRecs) oldest() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	min := ^uint64(0)
	for seq := range o.recs {
		if seq < min {
			min = seq
		}
	}
	return min
}

// account counts r's outcome once: compared (skip "") with class "" or a
// divergence class, or not compared for reason skip. It feeds the
// coverage counters, the record log and the rollout's observation.
func (p *Proxy) account(r *rec, class, skip string) {
	if !r.accounted.CompareAndSwap(false, true) {
		return
	}
	p.open.mu.Lock()
	delete(p.open.recs, r.seq)
	p.open.mu.Unlock()
	mr := p.sides[r.serving.other()]
	if skip != "" {
		p.metrics.Skipped.WithLabelValues(mr.name, skip).Inc()
	} else {
		p.metrics.Compared.WithLabelValues(string(r.op.Kind)).Inc()
	}
	p.stats.add(func(s *Stats) {
		if skip != "" {
			s.Skipped[skip]++
		} else {
			s.Compared++
		}
	})
	p.logs.record(p, r, class, skip)
	if p.cfg.Observe != nil {
		p.cfg.Observe(p.observation(r, class, skip))
	}
}

// accountShutdown accounts for every op still open when the proxy closed:
// its workers are gone, nothing else will. An op whose own comparison ran
// keeps it (only its read-back is missing).
func (p *Proxy) accountShutdown() {
	p.open.mu.Lock()
	left := make([]*rec, 0, len(p.open.recs))
	for _, r := range p.open.recs {
		left = append(left, r)
	}
	p.open.mu.Unlock()
	for _, r := range left {
		if r.judged.Load() { // set after r.class and r.skip
			p.account(r, r.class, r.skip)
		} else {
			p.account(r, "", SkipShutdown)
		}
	}
}
