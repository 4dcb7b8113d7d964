// Package sysexec executes fsop ops as real syscalls on a directory tree.
//
// In production the tree is a FUSE mount served by another process; in
// tests it is a temporary directory. sysexec is the one place where
// Lighthouse turns an Op into syscalls, so its behaviour is the reference
// semantics of the harness: each op is the syscall sequence a program would
// issue, and the kernel's answer (errno included) is the result.
//
// # Confinement
//
// Every path is relative to the root and must stay beneath it, whatever
// symlinks it crosses. The root is opened once as an O_PATH|O_DIRECTORY fd,
// and every path is resolved against that fd with openat2(2) and
// RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS, which makes the kernel itself refuse
// (EXDEV) any walk that would leave the tree: "..", absolute symlinks,
// relative symlinks that climb out, magic links. A refused walk is not a
// filesystem result: Exec returns an error wrapping fsop.ErrPathEscapes.
//
// No path string built from the root (root+"/"+path) is ever handed to a
// path-based syscall, since its walk would not be confined and could race
// with renames. Instead:
//
//   - Ops that do not follow a final symlink (lstat, unlink, rmdir, rename,
//     link, symlink, readlink, mkdir, mknod, and chown and utimens with
//     fsop.NoFollow) open the parent directory beneath the
//     root and call the *at syscall on the base name (AT_SYMLINK_NOFOLLOW
//     where it applies).
//   - Ops that follow a final symlink open the target itself beneath the
//     root: O_PATH for metadata (stat, statfs), the real open flags for data.
//     Where a syscall refuses an O_PATH fd (chmod, chown, utimensat,
//     truncate, the xattr calls) it is called on "/proc/self/fd/N": the
//     kernel follows that magic link to exactly the inode already resolved,
//     without walking any name again. /proc must therefore be mounted.
//
// # Umask
//
// sysexec applies no umask of its own: mkdir, create, write_file, append and
// open with O_CREAT pass their mode to the kernel, which applies the
// process umask. Callers that want the modes verbatim set umask 0, as the
// bridge's executor process does when it starts (bridge.RunExecutorIfChild):
// an op's mode is final, the kernel having applied the caller's umask on
// the mount that received it.
//
// # Concurrency
//
// Exec may be called from many goroutines. Handles (open, pread, pwrite,
// ftruncate, fsync, close) live in a table whose lock is held only to look
// a handle up; no lock is held across a syscall.
package sysexec

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/internal/asuser"
	"github.com/lighthouse-fs/lighthouse/internal/handles"
)

// DefaultMaxRead is the read bound used when Limits.MaxRead is 0.
const DefaultMaxRead = 64 << 20

// Limits bounds what one op may make the executor allocate.
type Limits struct {
	// MaxRead bounds read and pread Length (larger is refused with an error
	// wrapping fsop.ErrBadValue) and the size of a read_file (larger gives
	// Errno "EFBIG"). 0 means DefaultMaxRead.
	MaxRead int64
}

// ErrClosed is returned by Exec after Close.
var ErrClosed = errors.New("sysexec: executor closed")

// ErrHandleInUse is returned (wrapped together with fsop.ErrBadValue) by an
// open whose handle id is already in use.
var ErrHandleInUse = errors.New("handle already in use")

// Executor runs ops on the tree under one root directory.
type Executor struct {
	root    int // O_PATH|O_DIRECTORY fd of the root
	maxRead int64
	handles *handles.Table[int] // fds
	// self is the executor's own user; asCaller says it may act as
	// another (root: CAP_SETUID and CAP_SETGID).
	self     fsop.Caller
	asCaller bool

	// Close waits for in-flight Execs: inflight counts them, closed stops
	// new ones, drained is closed when the last one leaves after closed.
	inflight  atomic.Int64
	closed    atomic.Bool
	drained   chan struct{}
	drainOnce sync.Once
	closeOnce sync.Once
	closeErr  error
}

// New opens root (a directory) and returns an executor confined to it.
func New(root string, lim Limits) (*Executor, error) {
	if lim.MaxRead < 0 {
		return nil, fmt.Errorf("sysexec: %w: negative MaxRead", fsop.ErrBadValue)
	}
	if lim.MaxRead == 0 {
		lim.MaxRead = DefaultMaxRead
	}
	var fd int
	err := eintr(func() (err error) {
		fd, err = unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sysexec: open root %q: %w", root, err)
	}
	e := &Executor{root: fd, maxRead: lim.MaxRead, drained: make(chan struct{}), handles: handles.New[int](),
		self: fsop.Caller{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}, asCaller: os.Geteuid() == 0}
	// Check the two kernel features confinement relies on, so that a
	// missing one fails here rather than as odd errnos later.
	probe, err := e.openat2(".", unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sysexec: openat2 on %q: %w", root, err)
	}
	var st unix.Stat_t
	err = unix.Stat(procPath(probe), &st)
	unix.Close(probe)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sysexec: /proc/self/fd not usable: %w", err)
	}
	return e, nil
}

// Close waits for running Execs, then closes every open handle and the root
// fd. Exec fails with ErrClosed afterwards. It returns the first close error.
func (e *Executor) Close() error {
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		if e.inflight.Load() == 0 {
			e.drainOnce.Do(func() { close(e.drained) })
		}
		<-e.drained
		for _, hfd := range e.handles.DetachAll() { // no Exec runs now: every fd
			if err := unix.Close(hfd); err != nil && e.closeErr == nil {
				e.closeErr = err
			}
		}
		if err := unix.Close(e.root); err != nil && e.closeErr == nil {
			e.closeErr = err
		}
	})
	return e.closeErr
}

// enter registers an Exec; false once Close has begun.
func (e *Executor) enter() bool {
	e.inflight.Add(1)
	if e.closed.Load() {
		e.exit()
		return false
	}
	return true
}

func (e *Executor) exit() {
	if e.inflight.Add(-1) == 0 && e.closed.Load() {
		e.drainOnce.Do(func() { close(e.drained) })
	}
}

// Exec runs one validated op. Filesystem errors are in Result.Errno; the
// error return is for refused requests only: a path or symlink leaving the
// root (fsop.ErrPathEscapes), a read Length above MaxRead or a uid/gid out of
// range (fsop.ErrBadValue), a handle id already in use (ErrHandleInUse), an
// unknown kind (fsop.ErrUnknownOp), or a closed executor (ErrClosed).
//
// An op with a Caller other than the executor's own user runs as that
// user (asuser.DoFS: the thread's filesystem credentials, fsuid, fsgid
// and groups, for the op), so what it creates is theirs and the kernel
// checks their permissions; an executor that is not root cannot switch
// and runs every op as itself.
func (e *Executor) Exec(op *fsop.Op) (fsop.Result, error) {
	if op == nil {
		return fsop.Result{}, fmt.Errorf("sysexec: %w: nil op", fsop.ErrMissing)
	}
	if !e.enter() {
		return fsop.Result{}, ErrClosed
	}
	defer e.exit()
	if c := op.Caller; c != nil && e.asCaller && (c.UID != e.self.UID || c.GID != e.self.GID) {
		var res fsop.Result
		var err error
		if derr := asuser.DoFS(asuser.Cred(*c), func() error { res, err = e.exec(op); return nil }); derr != nil {
			return fsop.Result{}, fmt.Errorf("sysexec: %w", derr)
		}
		return res, err
	}
	return e.exec(op)
}

// exec runs op as the calling thread's user.
func (e *Executor) exec(op *fsop.Op) (fsop.Result, error) {
	switch op.Kind {
	case fsop.Mkdir:
		mode := op.Mode
		if mode == 0 {
			mode = 0o755
		}
		return e.atParent(op.Path, func(dir int, base string) error {
			return unix.Mkdirat(dir, base, mode)
		})
	case fsop.Rmdir:
		return e.atParent(op.Path, func(dir int, base string) error {
			return unix.Unlinkat(dir, base, unix.AT_REMOVEDIR)
		})
	case fsop.Unlink:
		return e.atParent(op.Path, func(dir int, base string) error {
			return unix.Unlinkat(dir, base, 0)
		})
	case fsop.Symlink:
		return e.atParent(op.Path, func(dir int, base string) error {
			return unix.Symlinkat(op.Target, dir, base)
		})
	case fsop.Readlink:
		return e.readlink(op)
	case fsop.Lstat:
		var st unix.Stat_t
		r, err := e.atParent(op.Path, func(dir int, base string) error {
			return unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		})
		if err == nil && r.Errno == "" {
			r.Stat = attr(&st)
		}
		return r, err
	case fsop.Rename:
		return e.atTwoParents(op.Path, op.To, func(od int, ob string, nd int, nb string) error {
			return unix.Renameat2(od, ob, nd, nb, uint(op.Flags))
		})
	case fsop.Link:
		return e.atTwoParents(op.Path, op.To, func(od int, ob string, nd int, nb string) error {
			return unix.Linkat(od, ob, nd, nb, 0)
		})

	case fsop.Stat:
		return e.stat(op)
	case fsop.Statfs:
		return e.statfs(op)
	case fsop.Chmod:
		return outcome(e.withPath(op.Path, func(p string) error {
			return eintr(func() error { return unix.Chmod(p, op.Mode) })
		}))
	case fsop.Chown:
		return e.chown(op)
	case fsop.Utimens:
		ts := []unix.Timespec{unix.NsecToTimespec(op.AtimeNs), unix.NsecToTimespec(op.MtimeNs)}
		if op.Flags&fsop.NoFollow != 0 {
			return e.atParent(op.Path, func(dir int, base string) error {
				return unix.UtimesNanoAt(dir, base, ts, unix.AT_SYMLINK_NOFOLLOW)
			})
		}
		return outcome(e.withPath(op.Path, func(p string) error {
			return eintr(func() error { return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, 0) })
		}))
	case fsop.Mknod:
		return e.atParent(op.Path, func(dir int, base string) error {
			return unix.Mknodat(dir, base, op.Mode, int(op.Rdev))
		})
	case fsop.Truncate:
		return outcome(e.withPath(op.Path, func(p string) error {
			return eintr(func() error { return unix.Truncate(p, op.Size) })
		}))
	case fsop.Setxattr, fsop.Getxattr, fsop.Listxattr, fsop.Removexattr:
		return e.xattr(op)
	case fsop.Readdir:
		return e.readdir(op)

	case fsop.Create:
		return e.create(op)
	case fsop.WriteFile:
		return e.writePath(op.Path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o644, -1, op.Data)
	case fsop.Append:
		return e.writePath(op.Path, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND, 0o644, -1, op.Data)
	case fsop.Write:
		return e.writePath(op.Path, unix.O_WRONLY, 0, op.Offset, op.Data)
	case fsop.ReadFile:
		return e.readFile(op)
	case fsop.Read:
		return e.readPath(op)
	case fsop.Fsync:
		if op.Handle != 0 {
			return e.fsyncHandle(op)
		}
		return e.fsyncPath(op)

	case fsop.Open:
		return e.open(op)
	case fsop.Pread:
		return e.pread(op)
	case fsop.Pwrite:
		return e.pwrite(op)
	case fsop.Ftruncate:
		return e.ftruncate(op)
	case fsop.Close:
		return e.closeHandle(op)
	}
	return fsop.Result{}, fmt.Errorf("sysexec: %w %q", fsop.ErrUnknownOp, op.Kind)
}

// atParent runs fn on p's parent directory fd and base name (no-follow ops).
func (e *Executor) atParent(p string, fn func(dir int, base string) error) (fsop.Result, error) {
	d, base, err := e.openParent(p)
	if err != nil {
		return outcome(err)
	}
	defer d.close()
	return outcome(eintr(func() error { return fn(d.fd, base) }))
}

// atTwoParents is atParent for rename and link. Both parents are resolved
// before anything changes, so an escaping "to" refuses the whole op.
func (e *Executor) atTwoParents(from, to string, fn func(od int, ob string, nd int, nb string) error) (fsop.Result, error) {
	od, ob, err := e.openParent(from)
	if err != nil {
		return outcome(err)
	}
	defer od.close()
	nd, nb, err := e.openParent(to)
	if err != nil {
		return outcome(err)
	}
	defer nd.close()
	return outcome(eintr(func() error { return fn(od.fd, ob, nd.fd, nb) }))
}

func (e *Executor) readlink(op *fsop.Op) (fsop.Result, error) {
	var target string
	r, err := e.atParent(op.Path, func(dir int, base string) error {
		for size := 256; ; size *= 2 {
			buf := make([]byte, size)
			n, err := unix.Readlinkat(dir, base, buf)
			if err != nil {
				return err
			}
			if n < size || size >= 1<<20 {
				target = string(buf[:n])
				return nil
			}
		}
	})
	if err == nil && r.Errno == "" {
		r.Target = target
	}
	return r, err
}

func (e *Executor) stat(op *fsop.Op) (fsop.Result, error) {
	fd, err := e.openPath(op.Path)
	if err != nil {
		return outcome(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := eintr(func() error { return unix.Fstat(fd, &st) }); err != nil {
		return outcome(err)
	}
	return fsop.Result{Stat: attr(&st)}, nil
}

func (e *Executor) statfs(op *fsop.Op) (fsop.Result, error) {
	fd, err := e.openPath(op.Path)
	if err != nil {
		return outcome(err)
	}
	defer unix.Close(fd)
	var sf unix.Statfs_t
	if err := eintr(func() error { return unix.Fstatfs(fd, &sf) }); err != nil {
		return outcome(err)
	}
	return fsop.Result{Statfs: &fsop.StatfsInfo{
		Bsize:   int64(sf.Bsize),
		Blocks:  sf.Blocks,
		Bfree:   sf.Bfree,
		Bavail:  sf.Bavail,
		Files:   sf.Files,
		Ffree:   sf.Ffree,
		Namelen: int64(sf.Namelen),
	}}, nil
}

// chown refuses ids that are neither -1 (unchanged) nor a 32-bit id: the
// kernel would silently truncate them.
func (e *Executor) chown(op *fsop.Op) (fsop.Result, error) {
	for _, id := range []int64{op.UID, op.GID} {
		if id < -1 || id >= 1<<32-1 {
			return fsop.Result{}, fmt.Errorf("sysexec: %w: chown id %d out of range", fsop.ErrBadValue, id)
		}
	}
	if op.Flags&fsop.NoFollow != 0 {
		return e.atParent(op.Path, func(dir int, base string) error {
			return unix.Fchownat(dir, base, int(op.UID), int(op.GID), unix.AT_SYMLINK_NOFOLLOW)
		})
	}
	return outcome(e.withPath(op.Path, func(p string) error {
		return eintr(func() error { return unix.Chown(p, int(op.UID), int(op.GID)) })
	}))
}

// attr converts a stat buffer.
func attr(st *unix.Stat_t) *fsop.Attr {
	return &fsop.Attr{
		Mode:    st.Mode,
		Size:    st.Size,
		Nlink:   uint32(st.Nlink),
		UID:     st.Uid,
		GID:     st.Gid,
		AtimeNs: st.Atim.Nano(),
		MtimeNs: st.Mtim.Nano(),
		CtimeNs: st.Ctim.Nano(),
		Ino:     st.Ino,
		Rdev:    st.Rdev,
	}
}
