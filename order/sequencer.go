package order

import "sync"

// Sequencer orders the ops of one bridge: an op starts only when every
// earlier op it conflicts with has finished there. Ops are enqueued in
// sequence order (the proxy enqueues each op on every bridge under one
// lock), so both bridges run conflicting ops in the same order, while ops
// that do not conflict run concurrently.
//
// Each lock name has a FIFO queue of requests. A request is granted when
// it is compatible with every earlier request in its queue, granted or
// not, so a later op never overtakes an earlier conflicting one.
type Sequencer struct {
	mu    sync.Mutex
	nodes map[string]*lockQueue
	free  []*lockQueue // emptied queues, reused: most names are locked briefly
}

// lockQueue is the FIFO of one lock name: an intrusive list of requests,
// so queueing allocates nothing.
type lockQueue struct {
	head, tail *request // in sequence order
	n          int
	waiting    int    // requests not yet granted
	counts     [4]int // requests per mode (granted or not)
}

type request struct {
	t          *Ticket
	q          *lockQueue
	name       string
	mode       Mode
	granted    bool
	prev, next *request
}

// Ticket is one op's place in a Sequencer.
type Ticket struct {
	reqs    []request // one per key, allocated together
	pending int       // requests not granted yet
	ready   func()    // called once, without the Sequencer's lock, when runnable
}

func NewSequencer() *Sequencer { return &Sequencer{nodes: map[string]*lockQueue{}} }

// compatibleWithAll reports whether m is compatible with every mode that
// has a count in c.
func compatibleWithAll(m Mode, c *[4]int) bool {
	for other, n := range c {
		if n > 0 && !compatible[m][other] {
			return false
		}
	}
	return true
}

// NewTicket makes a Ticket whose ready runs once the op may start.
func NewTicket(ready func()) *Ticket { return &Ticket{ready: ready} }

func (q *lockQueue) pushBack(r *request) {
	r.prev, r.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = r
	} else {
		q.head = r
	}
	q.tail = r
	q.n++
}

func (q *lockQueue) remove(r *request) {
	if r.prev != nil {
		r.prev.next = r.next
	} else {
		q.head = r.next
	}
	if r.next != nil {
		r.next.prev = r.prev
	} else {
		q.tail = r.prev
	}
	r.prev, r.next = nil, nil
	q.n--
}

// enqueue places t's op with keys in the sequence; t.ready runs as soon as
// the op may start (possibly before enqueue returns, so store t first).
func (s *Sequencer) Enqueue(t *Ticket, keys []Key) *Ticket {
	t.reqs = make([]request, len(keys))
	s.mu.Lock()
	for i, k := range keys {
		q := s.nodes[k.Name]
		if q == nil {
			if n := len(s.free); n > 0 {
				q, s.free = s.free[n-1], s.free[:n-1]
			} else {
				q = &lockQueue{}
			}
			s.nodes[k.Name] = q
		}
		r := &t.reqs[i]
		*r = request{t: t, q: q, name: k.Name, mode: k.Mode}
		// Granted at once only if nothing queued before conflicts.
		r.granted = compatibleWithAll(k.Mode, &q.counts)
		if !r.granted {
			q.waiting++
			t.pending++
		}
		q.counts[k.Mode]++
		q.pushBack(r)
	}
	runnable := t.pending == 0
	s.mu.Unlock()
	if runnable {
		t.ready()
	}
	return t
}

// freeCap bounds the reused lock queues.
const freeCap = 1024

// done releases t's locks and starts the ops that were waiting only for it.
func (s *Sequencer) Done(t *Ticket) {
	var woken []*Ticket
	s.mu.Lock()
	for i := range t.reqs {
		r := &t.reqs[i]
		q := r.q
		q.remove(r)
		q.counts[r.mode]--
		if !r.granted {
			q.waiting-- // released before it was granted: only on shutdown
		}
		if q.n == 0 {
			delete(s.nodes, r.name)
			if len(s.free) < freeCap {
				*q = lockQueue{}
				s.free = append(s.free, q)
			}
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
func (q *lockQueue) grant(woken []*Ticket) []*Ticket {
	var seen [4]int // modes of the requests before r
	for r := q.head; r != nil && q.waiting > 0; r = r.next {
		if !r.granted && compatibleWithAll(r.mode, &seen) {
			r.granted = true
			q.waiting--
			r.t.pending--
			if r.t.pending == 0 {
				woken = append(woken, r.t)
			}
		}
		seen[r.mode]++
		if seen[X] > 0 {
			break // nothing after an X can be granted
		}
	}
	return woken
}

// size is the number of lock names with queued requests (for tests).
func (s *Sequencer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.nodes)
}
