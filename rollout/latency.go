package rollout

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The latency comparison: per op kind, the candidate's serving latencies
// against the primary's over the same recent ops of that kind, by a
// Mann-Whitney rank test (is the candidate stochastically slower?) and the
// ratio of the two medians (by how much?). Both must hold to fire: the
// rank test alone would flag a real but harmless 10% difference once the
// sample is large, the ratio alone would flag two medians of a bimodal op
// (cache hit or miss) that landed on different modes by chance.
//
// Only served ops count: while a bridge only mirrors it runs at nice 19
// (proxy/priority.go), so its mirror latencies say how busy the machine
// is, not how fast the library is.

// latencyBuckets is the number of latency buckets: log-linear, 8 per
// power of two (at most 12.5% wide) from 1.024 µs, the last one open
// (beyond about two hours).
const latencyBuckets = 256

// bucketOf maps d to its bucket, in constant time.
func bucketOf(d time.Duration) uint8 {
	if d < 0 {
		d = 0
	}
	v := uint64(d) >> 10 // units of 1.024 µs
	if v < 8 {
		return uint8(v)
	}
	e := bits.Len64(v) - 1 // 2^e <= v < 2^(e+1), e >= 3
	i := (e-2)*8 + int((v>>(e-3))&7)
	if i >= latencyBuckets {
		return latencyBuckets - 1
	}
	return uint8(i)
}

// bucketMid is the middle of bucket b.
func bucketMid(b uint8) time.Duration {
	if b < 8 {
		return time.Duration((2*uint64(b) + 1) << 9)
	}
	e := int(b)/8 + 2
	low := uint64(8+int(b)%8) << (e - 3)
	width := uint64(1) << (e - 3)
	return time.Duration((2*low + width) << 9)
}

// sideWindow is one side's latencies of one op kind: the samples taken
// during the last span ops of that kind (both sides counted), at most
// len(b) of them, in a FIFO ring, with the count per bucket. Adding and
// expiring are constant time (amortised: each sample leaves once).
type sideWindow struct {
	b     []uint8  // buckets, ring
	at    []uint32 // the kind's op number when each sample arrived
	head  int      // oldest sample
	n     int
	count [latencyBuckets]int32
}

func newSideWindow(capacity int) sideWindow {
	return sideWindow{b: make([]uint8, capacity), at: make([]uint32, capacity)}
}

// add appends a sample taken at the kind's op number now, dropping the
// oldest when full.
func (w *sideWindow) add(b uint8, now uint32) {
	if w.n == len(w.b) {
		w.drop()
	}
	i := (w.head + w.n) % len(w.b)
	w.b[i], w.at[i] = b, now
	w.n++
	w.count[b]++
}

func (w *sideWindow) drop() {
	w.count[w.b[w.head]]--
	w.head = (w.head + 1) % len(w.b)
	w.n--
}

// expire drops the samples older than span ops of the kind (uint32
// arithmetic: correct across wrap-around).
func (w *sideWindow) expire(now, span uint32) {
	for w.n > 0 && now-w.at[w.head] >= span {
		w.drop()
	}
}

func (w *sideWindow) reset() {
	w.head, w.n, w.count = 0, 0, [latencyBuckets]int32{}
}

// quantile is the q-quantile of the window, to the middle of its bucket
// (0 when empty).
func (w *sideWindow) quantile(q float64) time.Duration {
	if w.n == 0 {
		return 0
	}
	rank := int32(math.Ceil(q * float64(w.n)))
	rank = max(rank, 1)
	var cum int32
	for b, c := range w.count {
		if cum += c; cum >= rank {
			return bucketMid(uint8(b))
		}
	}
	return bucketMid(latencyBuckets - 1)
}

// rankTest is the one-sided Mann-Whitney U test of "the candidate's
// latencies are stochastically larger than the primary's" from the two
// bucket histograms (samples in one bucket are ties: mid-ranks, and the
// tie-corrected variance). z is the normal approximation of U's
// standardised score (positive: the candidate is slower); auc is
// U/(n1 n2), the probability that a random candidate op is slower than a
// random primary op (ties count half): 0.5 when they are alike. One pass
// over the buckets.
func rankTest(primary, candidate *[latencyBuckets]int32) (z, auc float64) {
	var n1, n2, u, ties float64 // n1 candidate, n2 primary
	var below float64           // primary samples in lower buckets
	for b := range primary {
		c, p := float64(candidate[b]), float64(primary[b])
		u += c * (below + p/2)
		below += p
		n1 += c
		n2 += p
		t := c + p
		ties += t*t*t - t
	}
	if n1 == 0 || n2 == 0 {
		return 0, 0.5
	}
	n := n1 + n2
	mean := n1 * n2 / 2
	variance := n1 * n2 / 12 * ((n + 1) - ties/(n*(n-1)))
	auc = u / (n1 * n2)
	if variance <= 0 {
		return 0, auc // every sample in one bucket: no evidence either way
	}
	return (u - mean) / math.Sqrt(variance), auc
}

// opLatency is the comparison for one op kind.
type opLatency struct {
	kind string
	seq  uint32        // ops of this kind seen (served by either side)
	side [2]sideWindow // 0 primary, 1 candidate
	// the last verdict with a sample large enough on both sides
	ratio, z float64
	judged   bool
	// lighthouse_rollout_latency_ratio and _rank_z of the kind: NaN
	// without a verdict ("no data", neither good nor bad)
	ratioG, zG prometheus.Gauge
}

// LatencyVerdict is one op kind's comparison, for status and decisions.
type LatencyVerdict struct {
	Op        string        `json:"op"`
	Candidate time.Duration `json:"candidate_median"`
	Primary   time.Duration `json:"primary_median"`
	Ratio     float64       `json:"ratio"`  // candidate median / primary median
	Z         float64       `json:"rank_z"` // Mann-Whitney, positive: the candidate is slower
	NCand     int           `json:"candidate_ops"`
	NPrim     int           `json:"primary_ops"`
}

func (v LatencyVerdict) String() string {
	return fmt.Sprintf("%s: candidate median %v vs primary %v (%.1fx), rank test z = %.1f over %d candidate and %d primary served ops",
		v.Op, v.Candidate, v.Primary, v.Ratio, v.Z, v.NCand, v.NPrim)
}

// observe records one served op's latency and, when both sides have
// minSample samples, judges the kind again: at each op the candidate
// serves (and at the first op with enough samples), so the cost per op is
// one pass over the buckets at most.
func (l *opLatency) observe(candidate bool, d time.Duration, span uint32, minSample int) (LatencyVerdict, bool) {
	l.seq++
	s := 0
	if candidate {
		s = 1
	}
	l.side[s].add(bucketOf(d), l.seq)
	l.side[0].expire(l.seq, span)
	l.side[1].expire(l.seq, span)
	if l.side[0].n < minSample || l.side[1].n < minSample {
		if l.judged { // the samples aged out: no verdict any more
			l.judged = false
			l.publish()
		}
		return LatencyVerdict{}, false
	}
	if !candidate && l.judged {
		return LatencyVerdict{}, false // judged again at the candidate's next op
	}
	v := l.verdict()
	l.ratio, l.z, l.judged = v.Ratio, v.Z, true
	l.publish()
	return v, true
}

func (l *opLatency) verdict() LatencyVerdict {
	v := LatencyVerdict{Op: l.kind, Candidate: l.side[1].quantile(0.5), Primary: l.side[0].quantile(0.5), NCand: l.side[1].n, NPrim: l.side[0].n}
	v.Z, _ = rankTest(&l.side[0].count, &l.side[1].count)
	v.Ratio = float64(v.Candidate) / float64(max(v.Primary, 1))
	return v
}

func (l *opLatency) reset() {
	l.side[0].reset()
	l.side[1].reset()
	l.ratio, l.z, l.judged = 0, 0, false
	l.publish()
}

// publish exports the last verdict.
func (l *opLatency) publish() {
	r, z := math.NaN(), math.NaN()
	if l.judged {
		r, z = l.ratio, l.z
	}
	l.ratioG.Set(r)
	l.zG.Set(z)
}

// Bounds of the latency comparison's memory: the kinds compared (fsop
// has about 30; an unknown kind beyond the bound is not compared) and the
// window (each kind holds two rings of up to LatencyWindow samples, 5
// bytes each: 20 KB per kind at the default 2000).
const (
	maxLatencyKinds  = 64
	maxLatencyWindow = 1 << 20
)

// latencyOf is kind's comparison, created at its first op (nil past
// maxLatencyKinds). c.mu is held.
func (c *Controller) latencyOf(kind string) *opLatency {
	l := c.lat[kind]
	if l == nil && len(c.lat) < maxLatencyKinds {
		l = &opLatency{kind: kind, side: [2]sideWindow{newSideWindow(c.th.LatencyWindow), newSideWindow(c.th.LatencyWindow)},
			ratioG: c.mLatRatio.WithLabelValues(kind), zG: c.mLatZ.WithLabelValues(kind)}
		l.publish()
		c.lat[kind] = l
	}
	return l
}

// judgeLatency feeds o's serving latency to its kind's comparison and
// returns why the candidate is too slow, or "". c.mu is held.
func (c *Controller) judgeLatency(o Observation) string {
	if o.Op == "" {
		return ""
	}
	l := c.latencyOf(o.Op)
	if l == nil {
		return ""
	}
	v, ok := l.observe(o.CandidateServed, o.ServingTime, uint32(c.th.LatencyWindow), c.th.LatencyMinSample)
	if !ok || v.Ratio < c.th.LatencyRatio || v.Z < c.th.LatencyZ || v.Candidate-v.Primary < c.th.LatencyMinDelta {
		return ""
	}
	return fmt.Sprintf("%v (thresholds %gx, z %g and %v)", v, c.th.LatencyRatio, c.th.LatencyZ, c.th.LatencyMinDelta)
}

// latencyVerdicts are the kinds with a verdict, slowest (largest ratio)
// first. c.mu is held.
func (c *Controller) latencyVerdicts() []LatencyVerdict {
	var out []LatencyVerdict
	for _, l := range c.lat {
		if l.judged {
			out = append(out, l.verdict())
		}
	}
	slices.SortFunc(out, func(a, b LatencyVerdict) int { return cmp.Compare(b.Ratio, a.Ratio) })
	return out
}
