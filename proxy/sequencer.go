package proxy

import (
	"container/list"
	"sync"
)

// sequencer orders the ops of one bridge: an op starts only when every
// earlier op it conflicts with has finished there. Ops are enqueued in
// sequence order (the proxy enqueues each op on every bridge under one
// lock), so both bridges run conflicting ops in the same order, while ops
// that do not conflict run concurrently.
//
// Each lock name has a FIFO queue of requests. A request is granted when
// it is compatible with every earlier request in its queue, granted or
// not, so a later op never overtakes an earlier conflicting one.
type sequencer struct {
	mu    sync.Mutex
	nodes map[string]*lockQueue
}

type lockQueue struct {
	reqs    list.List // of *request, in sequence order
	waiting int       // requests not yet granted
	counts  [4]int    // requests per mode (granted or not)
}

type request struct {
	t       *ticket
	q       *lockQueue
	name    string
	mode    lockMode
	granted bool
	elem    *list.Element
}

// ticket is one op's place in a sequencer.
type ticket struct {
	reqs    []*request
	pending int    // requests not granted yet
	ready   func() // called once, without the sequencer's lock, when runnable
}

func newSequencer() *sequencer { return &sequencer{nodes: map[string]*lockQueue{}} }

// compatibleWithAll reports whether m is compatible with every mode that
// has a count in c.
func compatibleWithAll(m lockMode, c *[4]int) bool {
	for other, n := range c {
		if n > 0 && !compatible[m][other] {
			return false
		}
	}
	return true
}

// newTicket makes a ticket whose ready runs once the op may start.
func newTicket(ready func()) *ticket { return &ticket{ready: ready} }

// enqueue places t's op with keys in the sequence; t.ready runs as soon as
// the op may start (possibly before enqueue returns, so store t first).
func (s *sequencer) enqueue(t *ticket, keys []key) *ticket {
	s.mu.Lock()
	for _, k := range keys {
		q := s.nodes[k.name]
		if q == nil {
			q = &lockQueue{}
			s.nodes[k.name] = q
		}
		r := &request{t: t, q: q, name: k.name, mode: k.mode}
		// Granted at once only if nothing queued before conflicts.
		r.granted = compatibleWithAll(k.mode, &q.counts)
		if !r.granted {
			q.waiting++
			t.pending++
		}
		q.counts[k.mode]++
		r.elem = q.reqs.PushBack(r)
		t.reqs = append(t.reqs, r)
	}
	runnable := t.pending == 0
	s.mu.Unlock()
	if runnable {
		t.ready()
	}
	return t
}

// done releases t's locks and starts the ops that were waiting only for it.
func (s *sequencer) done(t *ticket) {
	var woken []*ticket
	s.mu.Lock()
	for _, r := range t.reqs {
		q := r.q
		q.reqs.Remove(r.elem)
		q.counts[r.mode]--
		if !r.granted {
			q.waiting-- // released before it was granted: only on shutdown
		}
		if q.reqs.Len() == 0 {
			delete(s.nodes, r.name)
			continue
		}
		if q.waiting > 0 {
			woken = q.grant(woken)
		}
	}
	s.mu.Unlock()
	for _, w := range woken {
		w.ready()
	}
}

// grant walks the queue in order, granting requests compatible with all
// before them, and appends tickets that became runnable.
func (q *lockQueue) grant(woken []*ticket) []*ticket {
	var seen [4]int // modes of the requests before e
	for e := q.reqs.Front(); e != nil && q.waiting > 0; e = e.Next() {
		r := e.Value.(*request)
		if !r.granted && compatibleWithAll(r.mode, &seen) {
			r.granted = true
			q.waiting--
			r.t.pending--
			if r.t.pending == 0 {
				woken = append(woken, r.t)
			}
		}
		seen[r.mode]++
		if seen[modeX] > 0 {
			break // nothing after an X can be granted
		}
	}
	return woken
}

// size is the number of lock names with queued requests (for tests).
func (s *sequencer) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.nodes)
}
