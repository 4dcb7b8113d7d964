package sysexec

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// withHandle runs fn on the fd of handle id; unknown handles give EBADF.
func (e *Executor) withHandle(id uint64, fn func(fd int) error) error {
	h := e.handles.Acquire(id)
	if h == nil {
		return unix.EBADF
	}
	defer e.handles.Release(h) // never the last: Close detaches only once no Exec runs
	return fn(h.Value)
}

// open opens op.Path with op.Flags (O_CLOEXEC added) and op.Mode and keeps
// the fd under op.Handle. A handle id in use is refused before anything is
// opened.
func (e *Executor) open(op *fsop.Op) (fsop.Result, error) {
	h, ok := e.handles.Reserve(op.Handle)
	if !ok {
		return fsop.Result{}, fmt.Errorf("sysexec: %w: %w %d", fsop.ErrBadValue, ErrHandleInUse, op.Handle)
	}
	flags, mode := fsop.OpenHow(op.Flags, op.Mode)
	fd, err := e.openFile(op.Path, flags, mode)
	if err != nil {
		e.handles.Unreserve(op.Handle, h)
		return outcome(err)
	}
	e.handles.Publish(op.Handle, h, fd) // only Close detaches reservations, and it waits for this Exec
	return fsop.Result{}, nil
}

// closeHandle removes the handle, waits for ops still running on it, and
// closes its fd, reporting close(2)'s errno.
func (e *Executor) closeHandle(op *fsop.Op) (fsop.Result, error) {
	h, wait := e.handles.Detach(op.Handle)
	if h == nil {
		return fsop.ErrnoResult(unix.EBADF), nil
	}
	if wait != nil {
		<-wait
	}
	// close(2) is not retried on EINTR: on Linux the fd is gone either way.
	return outcome(unix.Close(h.Value))
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
