package rollout

import "math"

// cusum is a one-sided Bernoulli CUSUM: a sequential test of "the bad
// fraction is at most p0" against "it is at least p1", run continuously.
// Each observation adds its log-likelihood ratio; the statistic never
// drops below zero, and it crosses h only when the recent record is far
// more likely under p1 than under p0. Its drift is negative below a rate
// between p0 and p1 (for p0 = t/2, p1 = 2t about 1.08 t) and positive
// above, so it acts as a threshold at t that weighs evidence instead of
// counting a window: one early bad op cannot fire it, a real rate a few
// times over the threshold fires it within a few thousand ops.
type cusum struct {
	up, down float64 // log-likelihood ratio of a bad and of a good observation
	h        float64
	s        float64
	n        int64 // observations since the last reset
}

func newCUSUM(p0, p1, h float64) cusum {
	return cusum{up: math.Log(p1 / p0), down: math.Log((1 - p1) / (1 - p0)), h: h}
}

// add records one observation and reports whether the statistic crossed h.
func (c *cusum) add(bad bool) bool {
	c.n++
	if bad {
		c.s += c.up
	} else {
		c.s += c.down
	}
	if c.s < 0 {
		c.s = 0
	}
	return c.s >= c.h
}

func (c *cusum) reset() { c.s, c.n = 0, 0 }

// window is a fixed-size ring of recent observations, for the rates shown
// to people (the CUSUM decides; the window explains).
type window struct {
	bits []bool
	next int
	full bool
	bad  int
}

func newWindow(n int) window { return window{bits: make([]bool, n)} }

func (w *window) add(bad bool) {
	if w.full && w.bits[w.next] {
		w.bad--
	}
	w.bits[w.next] = bad
	if bad {
		w.bad++
	}
	w.next++
	if w.next == len(w.bits) {
		w.next, w.full = 0, true
	}
}

func (w *window) size() int {
	if w.full {
		return len(w.bits)
	}
	return w.next
}

// rate is the bad fraction in the window (0 with no data: callers check size).
func (w *window) rate() float64 {
	if w.size() == 0 {
		return 0
	}
	return float64(w.bad) / float64(w.size())
}

func (w *window) reset() { *w = newWindow(len(w.bits)) }
