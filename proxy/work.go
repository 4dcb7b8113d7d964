package proxy

import "sync"

// workQueue is an unbounded FIFO of tasks run by a fixed set of workers.
// Pushing never blocks, so a sequencer's ready callback can push while
// holding nothing; the bound on mirrored work is the proxy's mirror bound.
type workQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	tasks  []func()
	head   int
	closed bool
}

func newWorkQueue() *workQueue {
	q := &workQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *workQueue) push(task func()) {
	q.mu.Lock()
	q.tasks = append(q.tasks, task)
	q.mu.Unlock()
	q.cond.Signal()
}

// run executes tasks until the queue is closed and empty.
func (q *workQueue) run() {
	for {
		q.mu.Lock()
		for q.head == len(q.tasks) && !q.closed {
			q.cond.Wait()
		}
		if q.head == len(q.tasks) {
			q.mu.Unlock()
			return
		}
		task := q.tasks[q.head]
		q.tasks[q.head] = nil
		q.head++
		if q.head > 1024 && q.head*2 > len(q.tasks) { // reclaim the consumed front
			q.tasks = append(q.tasks[:0], q.tasks[q.head:]...)
			q.head = 0
		}
		q.mu.Unlock()
		task()
	}
}

func (q *workQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}
