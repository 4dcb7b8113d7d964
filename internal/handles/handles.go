// Package handles is the table of open handles that both executors keep
// (storeexec.Executor: store nodes, sysexec.Executor: file descriptors): ids
// chosen by the caller, an open that reserves its id before it runs, and
// reference counts so that a close never releases what a running op still
// uses (a node, or an fd whose number the kernel could give out again).
package handles

import "sync"

// Handle is one entry: Value is valid once published and until the handle
// is detached and its last op has finished.
type Handle[T any] struct {
	Value   T
	ready   bool          // false while its open runs
	refs    int           // ops running on it
	closing bool          // detached from the table
	drained chan struct{} // closed when the last op of a detached handle ends
}

// Table maps ids to handles. Its lock is never held across the caller's
// work (a store call, a syscall).
type Table[T any] struct {
	mu sync.Mutex
	m  map[uint64]*Handle[T]
}

// New returns an empty table.
func New[T any]() *Table[T] { return &Table[T]{m: map[uint64]*Handle[T]{}} }

// Reserve claims id for an open in progress; false if it is in use.
func (t *Table[T]) Reserve(id uint64) (*Handle[T], bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[id]; ok {
		return nil, false
	}
	h := &Handle[T]{}
	t.m[id] = h
	return h, true
}

// Publish makes reserved handle h usable with v; false if it was detached
// meanwhile (DetachAll: the caller then releases v itself).
func (t *Table[T]) Publish(id uint64, h *Handle[T], v T) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[id] != h {
		return false
	}
	h.Value, h.ready = v, true
	return true
}

// Unreserve drops a reservation whose open failed.
func (t *Table[T]) Unreserve(id uint64, h *Handle[T]) {
	t.mu.Lock()
	if t.m[id] == h {
		delete(t.m, id)
	}
	t.mu.Unlock()
}

// Acquire returns open handle id with a reference taken, or nil.
func (t *Table[T]) Acquire(id uint64) *Handle[T] {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.m[id]
	if h == nil || !h.ready {
		return nil
	}
	h.refs++
	return h
}

// Release drops a reference taken by Acquire. True when it was the last op
// on a detached handle: the caller that detached it was told to wait
// (Detach's channel is now closed), or, after DetachAll, the releaser must
// free the value itself.
func (t *Table[T]) Release(h *Handle[T]) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	h.refs--
	if !h.closing || h.refs > 0 {
		return false
	}
	if h.drained != nil {
		close(h.drained)
		h.drained = nil
		return false // the detacher frees it
	}
	return true
}

// Detach removes open handle id from the table and returns it (nil if
// unknown or still opening). drained is nil when no op runs on it: the
// caller frees its value now; otherwise the caller waits for drained.
func (t *Table[T]) Detach(id uint64) (h *Handle[T], drained <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h = t.m[id]
	if h == nil || !h.ready {
		return nil, nil
	}
	delete(t.m, id)
	h.closing = true
	if h.refs > 0 {
		h.drained = make(chan struct{})
		return h, h.drained
	}
	return h, nil
}

// DetachAll empties the table and returns the values no op is using, for
// the caller to free now; the others are freed by their last Release
// (which returns true).
func (t *Table[T]) DetachAll() []T {
	t.mu.Lock()
	defer t.mu.Unlock()
	var now []T
	for id, h := range t.m {
		delete(t.m, id)
		if h.ready {
			h.closing = true
			if h.refs == 0 {
				now = append(now, h.Value)
			}
		}
	}
	return now
}
