package proxy

import (
	"context"
	"time"
)

// prioritizer is a Bridge that can yield the CPU while it only mirrors
// (bridgeclient.Client: fsop.ControlPriority).
type prioritizer interface {
	SetPriority(ctx context.Context, mirrorOnly bool) error
}

// Priority loop timing: how often the proxy looks at who served, and how
// often it repeats what it told a bridge (a restarted bridge starts at
// full priority).
const (
	priorityTick   = 500 * time.Millisecond
	priorityResend = 10 * time.Second
)

// priorityLoop tells each bridge whether it serves clients or only
// mirrors, from what it served in the last tick: a bridge that served
// nothing while the other served something only mirrors and lowers its
// CPU priority, so that on a busy machine the serving path runs first and
// the mirror catches up in the gaps. A bridge that serves again (canary,
// a stale primary) is told at once. An idle proxy changes nothing.
//
// Yielding must not make the mirror go stale: a mirror-only bridge whose
// queue reaches an eighth of a bound (ops, bytes or lag) gets full
// priority back until it is down to a thirty-second.
func (p *Proxy) priorityLoop() {
	t := time.NewTicker(priorityTick)
	defer t.Stop()
	const (
		unknown = iota
		serving
		mirrorOnly
	)
	var last [2]int64
	var told [2]int
	var toldAt [2]time.Time
	var catchingUp [2]bool
	for {
		select {
		case <-p.closed:
			return
		case <-t.C:
		}
		p.stats.mu.Lock()
		now := p.stats.served
		p.stats.mu.Unlock()
		behind := p.mirrorBacklog()
		for i, s := range p.sides {
			pr, ok := s.b.(prioritizer)
			if !ok {
				continue
			}
			mine, other := now[i]-last[i], now[1-i]-last[1-i]
			want := told[i]
			switch {
			case mine > 0:
				want = serving
			case other > 0:
				want = mirrorOnly
			}
			switch b := behind[i]; {
			case b >= 1.0/8:
				catchingUp[i] = true
			case b < 1.0/32:
				catchingUp[i] = false
			}
			if want == mirrorOnly && catchingUp[i] {
				want = serving
			}
			if want == unknown || (want == told[i] && time.Since(toldAt[i]) < priorityResend) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := pr.SetPriority(ctx, want == mirrorOnly)
			cancel()
			if err != nil {
				if want != told[i] {
					p.log.Debug("bridge priority not set", "bridge", s.name, "mirror_only", want == mirrorOnly, "err", err)
				}
				continue
			}
			told[i], toldAt[i] = want, time.Now()
			s.yielding.Store(want == mirrorOnly)
		}
		last = now
	}
}

// mirrorBacklog is how far each bridge's mirror queue is towards its
// nearest bound, from 0 (empty) to 1 (stale).
func (p *Proxy) mirrorBacklog() [2]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return [2]float64{p.backlogLocked(p.sides[0]), p.backlogLocked(p.sides[1])}
}

// backlogLocked is how far s's mirror queue is towards its nearest bound.
// p.mu is held.
func (p *Proxy) backlogLocked(s *side) float64 {
	b := max(float64(s.pending.Len())/float64(p.cfg.MirrorMaxOps), float64(s.bytes)/float64(p.cfg.MirrorMaxBytes))
	if f := s.pending.Front(); f != nil {
		b = max(b, float64(time.Since(f.Value.(*rec).admitted))/float64(p.cfg.MirrorMaxLag))
	}
	return b
}
