package sysexec

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// handle is one open file. fd is valid while ready and not closing; refs
// counts the ops using it, so that close never closes an fd (whose number the
// kernel could then reuse) under a running pread or pwrite.
type handle struct {
	fd      int
	ready   bool          // false while its open is in progress
	refs    int           // ops in flight on fd
	closing bool          // removed from the table; fd closes when refs is 0
	drained chan struct{} // closed when refs drops to 0 while closing
}

// handleTable maps caller-chosen ids to handles. mu guards the map and the
// handles' bookkeeping fields; it is never held across a syscall.
type handleTable struct {
	mu sync.Mutex
	m  map[uint64]*handle
}

// reserve claims id for an open in progress; false if it is in use.
func (t *handleTable) reserve(id uint64) (*handle, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[id]; ok {
		return nil, false
	}
	h := &handle{fd: -1}
	t.m[id] = h
	return h, true
}

// publish makes a reserved handle usable with fd.
func (t *handleTable) publish(h *handle, fd int) {
	t.mu.Lock()
	h.fd, h.ready = fd, true
	t.mu.Unlock()
}

// unreserve drops a reservation whose open failed.
func (t *handleTable) unreserve(id uint64, h *handle) {
	t.mu.Lock()
	if t.m[id] == h {
		delete(t.m, id)
	}
	t.mu.Unlock()
}

// acquire returns the open handle id with a reference taken, or nil.
func (t *handleTable) acquire(id uint64) *handle {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.m[id]
	if h == nil || !h.ready {
		return nil
	}
	h.refs++
	return h
}

// release drops a reference taken by acquire.
func (t *handleTable) release(h *handle) {
	t.mu.Lock()
	h.refs--
	if h.closing && h.refs == 0 {
		close(h.drained)
	}
	t.mu.Unlock()
}

// detach removes id from the table and returns its handle (nil if unknown
// or still opening) with a channel to wait on for in-flight ops, or nil.
func (t *handleTable) detach(id uint64) (*handle, chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.m[id]
	if h == nil || !h.ready {
		return nil, nil
	}
	delete(t.m, id)
	h.closing = true
	if h.refs > 0 {
		h.drained = make(chan struct{})
	}
	return h, h.drained
}

// closeAll closes every open handle; only called once no Exec is running.
func (t *handleTable) closeAll() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var first error
	for id, h := range t.m {
		if h.ready {
			if err := unix.Close(h.fd); err != nil && first == nil {
				first = err
			}
		}
		delete(t.m, id)
	}
	return first
}

// withHandle runs fn on the fd of handle id; unknown handles give EBADF.
func (e *Executor) withHandle(id uint64, fn func(fd int) error) error {
	h := e.handles.acquire(id)
	if h == nil {
		return unix.EBADF
	}
	defer e.handles.release(h)
	return fn(h.fd)
}

// open opens op.Path with op.Flags (O_CLOEXEC added) and op.Mode and keeps
// the fd under op.Handle. A handle id in use is refused before anything is
// opened.
func (e *Executor) open(op *fsop.Op) (fsop.Result, error) {
	h, ok := e.handles.reserve(op.Handle)
	if !ok {
		return fsop.Result{}, fmt.Errorf("sysexec: %w: %w %d", fsop.ErrBadValue, ErrHandleInUse, op.Handle)
	}
	flags, mode := fsop.OpenHow(op.Flags, op.Mode)
	fd, err := e.openFile(op.Path, flags, mode)
	if err != nil {
		e.handles.unreserve(op.Handle, h)
		return outcome(err)
	}
	e.handles.publish(h, fd)
	return fsop.Result{}, nil
}

// closeHandle removes the handle, waits for ops still running on it, and
// closes its fd, reporting close(2)'s errno.
func (e *Executor) closeHandle(op *fsop.Op) (fsop.Result, error) {
	h, wait := e.handles.detach(op.Handle)
	if h == nil {
		return fsop.ErrnoResult(unix.EBADF), nil
	}
	if wait != nil {
		<-wait
	}
	// close(2) is not retried on EINTR: on Linux the fd is gone either way.
	return outcome(unix.Close(h.fd))
}

func (e *Executor) pread(op *fsop.Op) (fsop.Result, error) {
	if err := e.checkLength(op.Length); err != nil {
		return fsop.Result{}, err
	}
	var data []byte
	err := e.withHandle(op.Handle, func(fd int) (err error) {
		data, err = readAt(fd, op.Offset, op.Length)
		return err
	})
	if err != nil {
		return outcome(err)
	}
	return fsop.Result{Data: data}, nil
}

// pwrite writes all of op.Data at op.Offset. On an O_APPEND fd Linux
// appends whatever the offset: that is kept, it is the kernel's semantics.
func (e *Executor) pwrite(op *fsop.Op) (fsop.Result, error) {
	var n int64
	err := e.withHandle(op.Handle, func(fd int) (err error) {
		n, err = writeAll(fd, op.Offset, op.Data)
		return err
	})
	r, rerr := outcome(err)
	r.N = n
	return r, rerr
}

func (e *Executor) ftruncate(op *fsop.Op) (fsop.Result, error) {
	return outcome(e.withHandle(op.Handle, func(fd int) error {
		return eintr(func() error { return unix.Ftruncate(fd, op.Size) })
	}))
}

func (e *Executor) fsyncHandle(op *fsop.Op) (fsop.Result, error) {
	return outcome(e.withHandle(op.Handle, func(fd int) error {
		return eintr(func() error { return unix.Fsync(fd) })
	}))
}
