package storeexec

import (
	"fmt"
	"math"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/store"
)

// This file is the Executor's calls on an opened file: open(2) itself, the
// data ops (path-based: open, use, close; or on a handle), readdir, the
// handle table, and the xattr calls (sysexec makes them on the O_PATH fd it
// opened).

// file is an open file: the node open resolved and the flags it was opened
// with.
type file struct {
	ino   uint64
	mode  uint32 // st_mode at open; the type never changes
	size  int64  // st_size at open, for read_file
	flags int
}

// access reports what the open flags allow: O_PATH allows nothing, and the
// access mode O_ACCMODE (3) neither reading nor writing (FMODE is flags+1).
func (f *file) access() (read, write bool) {
	if f.flags&unix.O_PATH != 0 {
		return false, false
	}
	fmode := (f.flags + 1) & unix.O_ACCMODE
	return fmode&1 != 0, fmode&2 != 0
}

// openAt is open(2) of p, without keeping the file: openat2's flag checks,
// the walk (O_CREAT creating a missing final name, even through a dangling
// symlink), do_open's and may_open's checks in their order, then O_TRUNC.
func (e *Executor) openAt(p string, flags int, mode uint32, own owner) (file, error) {
	acc := flags & unix.O_ACCMODE
	switch {
	case flags&(unix.O_DIRECTORY|unix.O_CREAT) == unix.O_DIRECTORY|unix.O_CREAT:
		return file{}, syscall.EINVAL
	case flags&(unix.O_TMPFILE&^unix.O_DIRECTORY) != 0: // __O_TMPFILE
		if flags&unix.O_DIRECTORY == 0 || acc == unix.O_RDONLY {
			return file{}, syscall.EINVAL
		}
		// FUSE has no O_TMPFILE unless the server implements it; the
		// store's mounts do not.
		a, err := e.resolve(p, flags&unix.O_NOFOLLOW == 0, nil)
		switch {
		case err != nil:
			return file{}, err
		case !isDir(a):
			return file{}, syscall.ENOTDIR
		}
		return file{}, syscall.EOPNOTSUPP
	}
	var mk *mkfile
	excl := flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL
	if flags&(unix.O_CREAT|unix.O_PATH) == unix.O_CREAT {
		mk = &mkfile{mode: mode, excl: excl, owner: own}
	}
	follow := flags&unix.O_NOFOLLOW == 0 && !excl // O_EXCL implies O_NOFOLLOW
	a, err := e.resolve(p, follow, mk)
	if err != nil {
		return file{}, err
	}
	created := mk != nil && mk.created
	switch {
	case mk != nil && excl && !created:
		return file{}, syscall.EEXIST
	case mk != nil && isDir(a):
		return file{}, syscall.EISDIR
	case flags&unix.O_DIRECTORY != 0 && !isDir(a):
		return file{}, syscall.ENOTDIR
	case flags&unix.O_PATH != 0 || created:
		// O_PATH opens anything; a file just created skips may_open's
		// access checks and O_TRUNC.
	case isLink(a):
		return file{}, syscall.ELOOP
	case a.Mode&syscall.S_IFMT == syscall.S_IFSOCK:
		return file{}, syscall.ENXIO // a socket has no open (no_open)
	case isDir(a) && (acc != unix.O_RDONLY || flags&unix.O_TRUNC != 0):
		return file{}, syscall.EISDIR
	case isReg(a) && flags&unix.O_TRUNC != 0:
		if err := e.truncate(a.Ino, 0); err != nil {
			return file{}, err
		}
		a.Size = 0
	}
	return file{ino: a.Ino, mode: a.Mode, size: a.Size, flags: flags}, nil
}

// openFile is openAt keeping the file: the node is acquired, so it outlives
// its last name until the caller releases it.
func (e *Executor) openFile(p string, flags int, mode uint32, own owner) (file, error) {
	f, err := e.openAt(p, flags, mode, own)
	if err == nil {
		err = e.s.Acquire(f.ino)
	}
	return f, err
}

// withFile opens p, runs fn on the open file and closes it.
func (e *Executor) withFile(p string, flags int, mode uint32, own owner, fn func(f *file) error) error {
	f, err := e.openFile(p, flags, mode, own)
	if err != nil {
		return err
	}
	defer e.s.Release(f.ino)
	return fn(&f)
}

// ---- Data on an open file ----

// readChunk is the first read's size (sysexec's first pread); the buffer
// then doubles as data arrives.
const readChunk = 64 << 10

// read is pread(2) looped until length bytes or end of file, as sysexec
// does: always at least one call, so a zero-length read still gets the
// kernel's verdict (EBADF, EISDIR).
func (e *Executor) read(f *file, off, length int64) ([]byte, error) {
	if read, _ := f.access(); !read {
		return nil, syscall.EBADF
	}
	if f.mode&syscall.S_IFMT == syscall.S_IFIFO {
		return nil, syscall.ESPIPE // pread(2) of a pipe; its data is the kernel's, never the store's
	}
	first := min(length, readChunk)
	if off > math.MaxInt64-first {
		return nil, syscall.EINVAL // rw_verify_area: pos+count overflows
	}
	return e.readRange(f.ino, off, length, first)
}

// readRange reads ino from off until n bytes or end of file, its buffer
// starting at first bytes. A directory gives EISDIR.
func (e *Executor) readRange(ino uint64, off, n, first int64) ([]byte, error) {
	buf := make([]byte, 0, min(first, n))
	for {
		if len(buf) == cap(buf) && int64(len(buf)) < n {
			nb := make([]byte, len(buf), min(int64(cap(buf))*2, n))
			copy(nb, buf)
			buf = nb
		}
		want := cap(buf) - len(buf)
		got, err := e.s.ReadAt(ino, buf[len(buf):cap(buf)], off+int64(len(buf)))
		if err != nil {
			return nil, err
		}
		buf = buf[:len(buf)+got]
		// The store reads short only at end of file.
		if got < want || int64(len(buf)) >= n {
			return buf, nil
		}
	}
}

// write is write(2) or pwrite(2) of data at off, or at end of file on an
// O_APPEND file (pwrite too, as on Linux). Empty data changes nothing but
// still gets the kernel's verdict (EBADF).
func (e *Executor) write(f *file, data []byte, off int64) (int64, error) {
	if _, write := f.access(); !write {
		return 0, syscall.EBADF
	}
	if f.mode&syscall.S_IFMT == syscall.S_IFIFO {
		return 0, syscall.ESPIPE // pwrite(2) of a pipe
	}
	if len(data) == 0 {
		return 0, nil
	}
	if off > math.MaxInt64-int64(len(data)) {
		return 0, syscall.EINVAL // rw_verify_area: pos+count overflows
	}
	mu := e.sizeLock(f.ino)
	if f.flags&unix.O_APPEND == 0 {
		mu.RLock()
		defer mu.RUnlock()
	} else {
		mu.Lock()
		defer mu.Unlock()
		a, err := e.s.Getattr(f.ino)
		if err != nil {
			return 0, err
		}
		off = a.Size
	}
	n, err := e.s.WriteAt(f.ino, data, off)
	return int64(n), err
}

// truncate sets ino's size (EISDIR for a directory, EINVAL for another
// non-regular file).
func (e *Executor) truncate(ino uint64, size int64) error {
	mu := e.sizeLock(ino)
	mu.RLock()
	defer mu.RUnlock()
	_, err := e.s.Setattr(ino, store.SetAttr{Valid: store.SetSize, Size: size})
	return err
}

func (e *Executor) sizeLock(ino uint64) *sync.RWMutex {
	return &e.sizeMu[ino%uint64(len(e.sizeMu))]
}

// checkLength refuses a read length above MaxRead.
func checkLength(length int64) error {
	if length > MaxRead {
		return fmt.Errorf("storeexec: %w: read length %d above %d", fsop.ErrBadValue, length, MaxRead)
	}
	return nil
}

// ---- Path-based data ops: open, use, close ----

// create is open(O_CREAT|O_WRONLY[|O_EXCL], mode) then close; mode 0 means
// 0o644.
func (e *Executor) create(op *fsop.Op) (fsop.Result, error) {
	mode := op.Mode & 0o7777
	if op.Mode == 0 {
		mode = 0o644
	}
	flags := unix.O_CREAT | unix.O_WRONLY
	if op.Exclusive {
		flags |= unix.O_EXCL
	}
	_, err := e.openAt(op.Path, flags, mode, e.ownerOf(op))
	return fsop.Result{}, err
}

// writePath opens p with flags, writes data at off (the offset of a fresh
// open is 0) and closes. N is the count written.
func (e *Executor) writePath(p string, flags int, mode uint32, own owner, off int64, data []byte) (fsop.Result, error) {
	var n int64
	err := e.withFile(p, flags, mode, own, func(f *file) (err error) {
		n, err = e.write(f, data, off)
		return err
	})
	return fsop.Result{N: n}, err
}

func (e *Executor) readPath(op *fsop.Op) (fsop.Result, error) {
	if err := checkLength(op.Length); err != nil {
		return fsop.Result{}, err
	}
	var data []byte
	err := e.withFile(op.Path, unix.O_RDONLY, 0, noCreate, func(f *file) (err error) {
		data, err = e.read(f, op.Offset, op.Length)
		return err
	})
	return fsop.Result{Data: data}, err
}

// readFile reads a whole file. A file larger than MaxRead (by its size at
// open, or by what reading it returns) gives EFBIG.
func (e *Executor) readFile(op *fsop.Op) (fsop.Result, error) {
	var data []byte
	err := e.withFile(op.Path, unix.O_RDONLY, 0, noCreate, func(f *file) (err error) {
		if f.size > MaxRead {
			return syscall.EFBIG
		}
		data, err = e.readRange(f.ino, 0, MaxRead+1, max(f.size+1, 512))
		if err == nil && int64(len(data)) > MaxRead {
			err = syscall.EFBIG
		}
		return err
	})
	return fsop.Result{Data: data}, err
}

// fsyncPath opens p O_RDONLY (a directory too), then syncs the store.
func (e *Executor) fsyncPath(op *fsop.Op) (fsop.Result, error) {
	_, err := e.openAt(op.Path, unix.O_RDONLY, 0, noCreate)
	if err == nil {
		err = e.s.Sync()
	}
	return fsop.Result{}, err
}

func (e *Executor) readdir(op *fsop.Op) (fsop.Result, error) {
	f, err := e.openAt(op.Path, unix.O_RDONLY|unix.O_DIRECTORY, 0, noCreate)
	if err != nil {
		return fsop.Result{}, err
	}
	ents, err := e.s.Readdir(f.ino)
	out := make([]fsop.Dirent, 0, len(ents))
	for i, en := range ents {
		// d_off: the store has no cookie of its own, so the entry's index+1
		// (go-fuse's, the position after the entry: 0 is the start).
		out = append(out, fsop.Dirent{Name: en.Name, Type: fsop.DirentType(en.Mode), Off: uint64(i + 1)})
	}
	return fsop.Result{Entries: out}, err
}

// ---- Handles ----

// withHandle runs fn on the open file of handle id; unknown handles give
// EBADF. The node stays acquired while fn runs, even if the handle is
// closed meanwhile.
func (e *Executor) withHandle(id uint64, fn func(f *file) error) error {
	h := e.handles.Acquire(id)
	if h == nil {
		return syscall.EBADF
	}
	defer func() {
		if e.handles.Release(h) { // the last op on a handle the executor's Close detached
			e.s.Release(h.Value.ino)
		}
	}()
	return fn(&h.Value)
}

// open opens op.Path with op.Flags and op.Mode (normalized as open(2) does)
// under op.Handle. A handle id in use is refused before anything is opened.
func (e *Executor) open(op *fsop.Op) (fsop.Result, error) {
	h, ok := e.handles.Reserve(op.Handle)
	if !ok {
		return fsop.Result{}, fmt.Errorf("storeexec: %w: %w %d", fsop.ErrBadValue, ErrHandleInUse, op.Handle)
	}
	flags, mode := fsop.OpenHow(op.Flags, op.Mode)
	f, err := e.openFile(op.Path, flags, mode, e.ownerOf(op))
	if err != nil {
		e.handles.Unreserve(op.Handle, h)
		return fsop.Result{}, err
	}
	if e.closed.Load() || !e.handles.Publish(op.Handle, h, f) {
		e.handles.Unreserve(op.Handle, h)
		e.s.Release(f.ino)
		return fsop.Result{}, ErrClosed
	}
	return fsop.Result{}, nil
}

// closeHandle removes the handle, waits for the ops still running on it,
// and releases its node.
func (e *Executor) closeHandle(id uint64) error {
	h, drained := e.handles.Detach(id)
	if h == nil {
		return syscall.EBADF
	}
	if drained != nil {
		<-drained
	}
	e.s.Release(h.Value.ino)
	return nil
}

func (e *Executor) pread(op *fsop.Op) (fsop.Result, error) {
	if err := checkLength(op.Length); err != nil {
		return fsop.Result{}, err
	}
	var data []byte
	err := e.withHandle(op.Handle, func(f *file) (err error) {
		data, err = e.read(f, op.Offset, op.Length)
		return err
	})
	return fsop.Result{Data: data}, err
}

func (e *Executor) pwrite(op *fsop.Op) (fsop.Result, error) {
	var n int64
	err := e.withHandle(op.Handle, func(f *file) (err error) {
		n, err = e.write(f, op.Data, op.Offset)
		return err
	})
	return fsop.Result{N: n}, err
}

// ftruncate: EBADF on an O_PATH handle; EINVAL unless the handle is a
// regular file open for writing.
func (e *Executor) ftruncate(op *fsop.Op) (fsop.Result, error) {
	return fsop.Result{}, e.withHandle(op.Handle, func(f *file) error {
		_, write := f.access()
		switch {
		case f.flags&unix.O_PATH != 0:
			return syscall.EBADF
		case f.mode&syscall.S_IFMT != syscall.S_IFREG || !write:
			return syscall.EINVAL
		}
		return e.truncate(f.ino, op.Size)
	})
}

// fsyncHandle syncs the store; EBADF on an O_PATH handle.
func (e *Executor) fsyncHandle(op *fsop.Op) (fsop.Result, error) {
	return fsop.Result{}, e.withHandle(op.Handle, func(f *file) error {
		if f.flags&unix.O_PATH != 0 {
			return syscall.EBADF
		}
		return e.s.Sync()
	})
}
