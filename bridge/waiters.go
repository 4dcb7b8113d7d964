package bridge

import (
	"sync"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// waiters are the requests sent on a frame stream that wait for their
// answers, by id: the bridge's calls to its executor, and the executor's
// questions to the bridge. Its zero value is ready.
type waiters struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64]chan fsop.Frame
	err  error // set by fail: no request is taken any more
}

// add registers a new request; its id has the bits of mark set. It fails
// with the error given to fail once that has been called.
func (w *waiters) add(mark uint64) (uint64, chan fsop.Frame, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, nil, w.err
	}
	if w.m == nil {
		w.m = map[uint64]chan fsop.Frame{}
	}
	w.next++
	id := w.next | mark
	ch := make(chan fsop.Frame, 1)
	w.m[id] = ch
	return id, ch, nil
}

// deliver hands f to the request with its id, if one waits.
func (w *waiters) deliver(f fsop.Frame) {
	w.mu.Lock()
	ch := w.m[f.ID]
	delete(w.m, f.ID)
	w.mu.Unlock()
	if ch != nil {
		ch <- f
	}
}

// forget removes a request nobody waits for any more.
func (w *waiters) forget(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

// fail closes the channel of every request waiting (the stream ended) and
// makes add fail with err from then on.
func (w *waiters) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = err
	for id, ch := range w.m {
		close(ch)
		delete(w.m, id)
	}
}
