package proxy

import (
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/order"
)

// The mirror share (docs/ARCHITECTURE.md, "The mirror share"). When the
// bridge that is not the store of record cannot keep up, the proxy mirrors
// a deterministic share of the tree to it rather than everything until it
// falls past a bound and goes out of step as a whole. The tree is cut into
// units, the subtrees at depth Config.MirrorShareDepth (work/pkg at 2); a
// unit is in the share when its name's hash, as a fraction of the hash
// space, is below the share, so lowering the share drops units and raising
// it takes them back in the same order. A unit in the share gets its whole
// history, so every op in it is compared; an op outside it is served by
// the store of record alone and counted as sampled out. The directories
// above the units (the root, work) are in the share while no unit below
// them changed outside it.

// SkipSampled: the op fell outside the mirror share: by design, not
// compared, and not part of the coverage that judges a run.
// verdict.SampledOut is the same name.
const SkipSampled = "sampled_out"

// ScopeSampled: names whose ops were sampled out, back in the share: out
// of step until their resync.
const ScopeSampled = "sampled"

// The adaptive share's controller (adaptShare) looks every shareEvery at
// how many ops entered the mirror's queue and how many it finished. When
// the queue is a quarter of the way to a bound and growing (or halfway,
// and not draining fast), it cuts the share to what the mirror finishes, less a
// margin that drains the queue within shareDrain; when the queue stayed
// under an eighth of its bounds for Config.ShareRaiseAfter, it doubles
// the share. It never goes below minShare.
const (
	minShare        = 1.0 / 64
	shareCutAt      = 0.25
	shareRaiseBelow = 1.0 / 8
	shareEvery      = 500 * time.Millisecond
	shareDrain      = 10 * time.Second
	// maxTouched bounds the names remembered as changed while sampled out;
	// past it, raising the share resyncs the whole store.
	maxTouched = 65536
)

// mirrorShare is the share's state. Guarded by Proxy.mu.
type mirrorShare struct {
	auto     bool
	pinned   float64 // the configured share (1 with auto)
	share    float64 // in (0, 1]
	changed  time.Time
	lowSince time.Time
	// The controller's last sample of the mirror's queue counters.
	at       time.Time
	in, done uint64
	// touched are the units (and paths above them) that ops changed while
	// outside the share: the mirror's copy of them is out of date; below
	// the paths above the units that hold one. all: too many to know.
	// own are paths above the units whose own attributes changed outside
	// the share (a chmod of work): out of date themselves, not below.
	touched, below, own map[string]struct{}
	all                 bool
}

// ParseShare reads --mirror-share: "auto" (or empty), or a fraction in
// (0, 1].
func ParseShare(s string) (share float64, auto bool, err error) {
	if s == "" || s == "auto" {
		return 1, true, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err == nil && strings.HasSuffix(s, "%") {
		v /= 100
	}
	if err != nil || !(v > 0 && v <= 1) {
		return 0, false, fmt.Errorf("--mirror-share %q: want auto, or a fraction of the tree in (0, 1] such as 0.25 or 25%%", s)
	}
	return v, false, nil
}

// shareOf is name's place in the hash space, in [0, 1): FNV-1a, whose
// high bits barely move between names that differ in their last byte
// ("dir01", "dir02"), then a 64-bit finalizer (MurmurHash3's fmix64) that
// spreads every input bit over all of them. The same name gets the same
// place in every process, so a restarted proxy keeps its share.
func shareOf(name string) float64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return float64(x>>11) / (1 << 53)
}

// unitOf is the unit of the share path belongs to: its first depth
// components; above is true for a path with fewer (the root, a directory
// that holds units), which belongs to no unit.
func unitOf(path string, depth int) (unit string, above bool) {
	if path == order.Root {
		return path, true
	}
	i := 0
	for n := 0; n < depth; n++ {
		j := strings.IndexByte(path[i:], '/')
		if j < 0 {
			return path, n+1 < depth
		}
		i += j + 1
	}
	return path[:i-1], false
}

// ancestorsAbove calls f with path's ancestors (and path itself) that lie
// above the units, from the root down.
func ancestorsAbove(path string, depth int, f func(a string) bool) bool {
	if f(order.Root) {
		return true
	}
	i := 0
	for n := 1; n < depth && path != order.Root; n++ {
		j := strings.IndexByte(path[i:], '/')
		if j < 0 {
			return f(path)
		}
		i += j + 1
		if f(path[:i-1]) {
			return true
		}
	}
	return false
}

// inShare reports whether path lies in the mirror share: its unit's hash
// is below the share, and nothing above it changed outside the share. A
// path above the units (the root, a directory holding units) is in it
// while no unit below it changed outside the share: its entries and link
// count would differ. p.mu is held.
func (p *Proxy) inShare(path string) bool {
	s := &p.share
	if s.share >= 1 || path == "" {
		return true
	}
	if s.all {
		return false
	}
	if ancestorsAbove(path, p.cfg.MirrorShareDepth, func(a string) bool { _, ok := s.touched[a]; return ok }) {
		return false
	}
	unit, above := unitOf(path, p.cfg.MirrorShareDepth)
	if above {
		_, below := s.below[path]
		_, own := s.own[path]
		return !below && !own
	}
	return shareOf(unit) < s.share
}

// allInShare reports whether every one of paths lies in the share. p.mu is
// held.
func (p *Proxy) allInShare(paths []string) bool {
	if p.share.share >= 1 {
		return true
	}
	for _, path := range paths {
		if !p.inShare(path) {
			return false
		}
	}
	return true
}

// sampleOut decides whether r, bound for mr, falls outside the share: then
// it is not mirrored, the names it changes are remembered as out of date
// there, and a name it reaches inside the share (a rename or link across,
// another name of a file it changes) is put out of step. p.mu is held.
func (p *Proxy) sampleOut(mr *side, r *rec) bool {
	if p.allInShare(r.paths) {
		return false
	}
	r.skip = SkipSampled
	if !r.op.Kind.Mutates() || r.op.Kind == fsop.Close || r.op.Kind == fsop.Fsync {
		return true
	}
	var in []string
	for _, path := range p.aliases.Expand(r.paths) {
		switch {
		case path == "":
		case p.inShare(path):
			in = append(in, path)
		default:
			unit, above := unitOf(path, p.cfg.MirrorShareDepth)
			if above && !structural(&r.op) {
				// Its own attributes or entries changed, not what is below it.
				if p.share.own == nil {
					p.share.own = map[string]struct{}{}
				}
				p.share.own[path] = struct{}{}
				continue
			}
			p.share.touch(unit, p.cfg.MirrorShareDepth)
		}
	}
	if len(in) > 0 {
		// Resynced once r is enqueued (admit): its barrier comes right after
		// r, so no later op on those names is skipped, only held on mr until
		// the copy, which holds what r did on the record, is in.
		r.resyncAfter = p.addScope(mr, in, ScopeSkipped, r.seq-1, false)
	}
	return true
}

// touch remembers unit (or a path above the units) as changed while
// outside the share, and the directories above it as holding such a one.
func (s *mirrorShare) touch(unit string, depth int) {
	if s.all {
		return
	}
	if len(s.touched) >= maxTouched {
		s.touched, s.below, s.all = nil, nil, true
		return
	}
	if s.touched == nil {
		s.touched, s.below = map[string]struct{}{}, map[string]struct{}{}
	}
	s.touched[unit] = struct{}{}
	ancestorsAbove(unit, depth, func(a string) bool {
		if a != unit {
			s.below[a] = struct{}{}
		}
		return false
	})
}

// setShare moves the share of mr (the bridge that is not the record) to
// v: names that come back in and were changed while out are put out of
// step, for a resync from the record before they are compared again.
// p.mu is held.
func (p *Proxy) setShare(mr *side, v float64, why string) {
	v = math.Min(1, math.Max(v, minShare))
	old := p.share.share
	if v == old {
		return
	}
	p.share.share, p.share.changed = v, time.Now()
	p.metrics.MirrorShare.WithLabelValues(mr.name).Set(v)
	p.noteShare(v)
	if v < old {
		p.log.Warn("mirror share lowered: ops outside it are served by the store of record alone, not compared",
			"bridge", mr.name, "share", v, "was", old, "why", why)
		return
	}
	p.log.Info("mirror share raised", "bridge", mr.name, "share", v, "was", old, "why", why)
	if p.share.all {
		// Which names changed is no longer known: resync the whole store.
		p.share.touched, p.share.below, p.share.own, p.share.all = nil, nil, nil, false
		p.addScopeAt(mr, order.Root, ScopeSampled, p.seqNo)
		return
	}
	// A unit comes back in once its hash is below v and nothing above it
	// is out of date; a path above the units, at 1.
	depth := p.cfg.MirrorShareDepth
	var back []string
	for name := range p.share.touched {
		unit, above := unitOf(name, depth)
		if v >= 1 || (!above && shareOf(unit) < v && !ancestorsAbove(name, depth, func(a string) bool {
			_, ok := p.share.touched[a]
			return ok && a != name
		})) {
			back = append(back, name)
		}
	}
	for _, name := range back {
		delete(p.share.touched, name)
	}
	if v >= 1 {
		for name := range p.share.own {
			back = append(back, name)
		}
		p.share.own = nil
	}
	clear(p.share.below)
	for name := range p.share.touched {
		p.share.touch(name, depth)
	}
	if len(back) > 0 {
		p.addScope(mr, back, ScopeSampled, p.seqNo, false)
	}
}

// adaptShare is the auto share's controller, run by lagLoop for the bridge
// that is not the record. p.mu is held.
func (p *Proxy) adaptShare(mr *side, now time.Time) {
	s := &p.share
	if !s.auto || mr.stale() {
		s.lowSince, s.at = time.Time{}, time.Time{}
		return
	}
	dt := now.Sub(s.at)
	if s.at.IsZero() || dt < shareEvery {
		if s.at.IsZero() {
			s.at, s.in, s.done = now, mr.in, mr.done
		}
		return
	}
	inflow, rate := float64(mr.in-s.in)/dt.Seconds(), float64(mr.done-s.done)/dt.Seconds()
	s.at, s.in, s.done = now, mr.in, mr.done
	b := p.backlogLocked(mr)
	switch {
	case (b >= shareCutAt && inflow > rate) || (b >= 2*shareCutAt && inflow > 0.8*rate):
		s.lowSince = time.Time{}
		want := 0.8*rate - float64(mr.pending.Len())/shareDrain.Seconds()
		f := 1.0 / 8
		if inflow > 0 {
			f = math.Min(1, math.Max(want/inflow, f))
		}
		p.setShare(mr, s.share*f, fmt.Sprintf("the mirror finishes %.0f ops/s of the %.0f it gets, %d queued", rate, inflow, mr.pending.Len()))
	case b < shareRaiseBelow:
		if s.lowSince.IsZero() {
			s.lowSince = now
		}
		after := p.cfg.ShareRaiseAfter
		if s.share < 1 && now.Sub(s.lowSince) >= after && now.Sub(s.changed) >= after {
			p.setShare(mr, s.share*2, "the mirror kept up")
			s.lowSince = now
		}
	default:
		s.lowSince = time.Time{}
	}
}

// outOfDate reports whether path's copy on the bridge that is not the
// record may be out of date because ops there were sampled out: a resync's
// audit expects it to differ. p.mu is held.
func (p *Proxy) outOfDate(path string) bool {
	if p.share.all {
		return true
	}
	unit, _ := unitOf(path, p.cfg.MirrorShareDepth)
	if _, ok := p.share.touched[unit]; ok {
		return true
	}
	if _, ok := p.share.own[path]; ok {
		return true
	}
	return ancestorsAbove(path, p.cfg.MirrorShareDepth, func(a string) bool { _, ok := p.share.touched[a]; return ok })
}

// noteShare keeps the lowest share for Stats.
func (p *Proxy) noteShare(v float64) {
	p.stats.add(func(s *Stats) {
		if v < 1 && (s.minShare == 0 || v < s.minShare) {
			s.minShare = v
		}
	})
}

// resetShare starts the share afresh for a new store of record: the bridge
// that now mirrors was the record, complete. p.mu is held.
func (p *Proxy) resetShare(mr *side) {
	p.share.share, p.share.touched, p.share.below, p.share.own, p.share.all, p.share.lowSince = p.share.pinned, nil, nil, nil, false, time.Time{}
	p.metrics.MirrorShare.WithLabelValues(p.sides[mr.idx.other()].name).Set(1)
	p.metrics.MirrorShare.WithLabelValues(mr.name).Set(p.share.share)
}
