// Package storeexec executes fsop ops on a store.Store directly, without a
// kernel or a FUSE library: the fourth conformance target, the executor of
// a degraded bridge that cannot mount, and the bridge's read-back of a
// path's state (Executor.State).
//
// # Semantics
//
// The reference is package sysexec: each op is the syscall sequence sysexec
// issues, each syscall modelled as the kernel's VFS runs it on a FUSE mount
// of the store (path walk, ELOOP after 40 symlinks, xattr namespace rules,
// errors in the kernel's order), so a degraded bridge answers like a
// mounted one. It uses only the store's exported API.
package storeexec

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/internal/handles"
	"github.com/lighthouse-fs/lighthouse/store"
)

// Executor runs fsop ops on a store.Store directly, with the semantics of
// the same syscalls on a Linux filesystem (the kernel's VFS checks
// included), so a degraded bridge answers like a mounted one.
//
// The reference is package sysexec: each op is the syscall sequence sysexec
// issues (resolve the parent, then the *at call; or open the target, then
// act on it), each syscall modelled as the kernel runs it on a FUSE mount of
// this store, errors in the kernel's order. Paths resolve beneath the root
// like openat2 with RESOLVE_BENEATH: an absolute symlink or a ".." above the
// root refuses the op with an error wrapping fsop.ErrPathEscapes.
//
// The caller is modelled as the process: new nodes belong to its effective
// uid and gid, and it is privileged (trusted.* xattrs) when that uid is 0.
// An op's Caller, if set, owns the nodes it creates (as sysexec's switch of
// credentials gives them); its permissions are not checked: mode-bit
// permission checks (EACCES) are not modelled. No umask is applied.
type Executor struct {
	s          *store.Store
	uid, gid   uint32
	privileged bool
	closed     atomic.Bool
	handles    *handles.Table[file]

	// sizeMu stands in for the kernel's inode lock, striped by inode: an
	// O_APPEND write holds it exclusively so that "size, then write there"
	// is atomic; other writes and truncates share it.
	sizeMu [64]sync.RWMutex
}

// MaxRead bounds read and pread Length (larger is refused with an error
// wrapping fsop.ErrBadValue) and the size of a read_file (larger gives
// EFBIG), as sysexec's default.
const MaxRead = 64 << 20

// Kernel limits the executor reproduces.
const (
	maxSymlinks    = 40       // MAXSYMLINKS: symlinks one path walk may follow
	xattrMax       = 64 << 10 // XATTR_SIZE_MAX and XATTR_LIST_MAX
	renameWhiteout = 1 << 2   // RENAME_WHITEOUT, valid for the VFS (the store refuses it)
)

var (
	// ErrClosed is returned by Exec after Close.
	ErrClosed = errors.New("storeexec: executor closed")
	// ErrHandleInUse is returned (wrapped together with fsop.ErrBadValue)
	// by an open whose handle id is already in use.
	ErrHandleInUse = errors.New("handle already in use")
)

// New returns an executor on s. Close it to release its handles.
func New(s *store.Store) *Executor {
	uid, gid := os.Geteuid(), os.Getegid()
	return &Executor{s: s, uid: uint32(uid), gid: uint32(gid), privileged: uid == 0,
		handles: handles.New[file]()}
}

// Close releases every open handle (store.Release). Exec fails with
// ErrClosed afterwards.
func (e *Executor) Close() error {
	e.closed.Store(true)
	for _, f := range e.handles.DetachAll() {
		e.s.Release(f.ino)
	}
	return nil
}

// finish turns a method's outcome into Exec's: a syscall.Errno is a
// filesystem answer (only N, the count written, survives it); any other
// error refuses the request.
func finish(r fsop.Result, err error) (fsop.Result, error) {
	var en syscall.Errno
	switch {
	case err == nil:
		return r, nil
	case errors.As(err, &en):
		return fsop.Result{Errno: fsop.ErrnoName(en), N: r.N}, nil
	}
	return fsop.Result{}, err
}

// ---- Exec ----

// Exec runs one validated op. Filesystem errors are in Result.Errno; the
// error return is for refused requests only, as sysexec's: a path leaving the
// root (fsop.ErrPathEscapes), a read Length above MaxRead or a uid/gid out of
// range (fsop.ErrBadValue), a handle id in use (ErrHandleInUse), an unknown
// kind (fsop.ErrUnknownOp), or a closed executor (ErrClosed).
func (e *Executor) Exec(op *fsop.Op) (fsop.Result, error) {
	if op == nil {
		return fsop.Result{}, fmt.Errorf("storeexec: %w: nil op", fsop.ErrMissing)
	}
	if e.closed.Load() {
		return fsop.Result{}, ErrClosed
	}
	return finish(e.run(op))
}

func (e *Executor) run(op *fsop.Op) (fsop.Result, error) {
	switch op.Kind {
	case fsop.Mkdir:
		return e.mkdir(op)
	case fsop.Rmdir:
		return e.rmdir(op)
	case fsop.Unlink:
		return e.unlink(op)
	case fsop.Symlink:
		return e.symlink(op)
	case fsop.Readlink:
		return e.readlink(op)
	case fsop.Lstat:
		return e.lstat(op)
	case fsop.Rename:
		return e.rename(op)
	case fsop.Link:
		return e.link(op)
	case fsop.Mknod:
		return e.mknod(op)

	case fsop.Stat:
		return e.stat(op)
	case fsop.Statfs:
		return e.statfs(op)
	case fsop.Chmod:
		return e.chmod(op)
	case fsop.Chown:
		return e.chown(op)
	case fsop.Utimens:
		return e.utimens(op)
	case fsop.Truncate:
		return e.truncatePath(op)
	case fsop.Setxattr, fsop.Getxattr, fsop.Listxattr, fsop.Removexattr:
		return e.xattr(op)
	case fsop.Readdir:
		return e.readdir(op)

	case fsop.Create:
		return e.create(op)
	case fsop.WriteFile:
		return e.writePath(op.Path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o644, e.ownerOf(op), 0, op.Data)
	case fsop.Append:
		return e.writePath(op.Path, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND, 0o644, e.ownerOf(op), 0, op.Data)
	case fsop.Write:
		return e.writePath(op.Path, unix.O_WRONLY, 0, noCreate, op.Offset, op.Data)
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
		return fsop.Result{}, e.closeHandle(op.Handle)
	}
	return fsop.Result{}, fmt.Errorf("storeexec: %w %q", fsop.ErrUnknownOp, op.Kind)
}

// ---- Ops on the parent directory (final symlink not followed) ----

// atParent resolves p's parent and runs fn on it and p's base name.
func (e *Executor) atParent(p string, fn func(dir store.Attr, base string) error) error {
	dir, base, err := e.parent(p)
	if err != nil {
		return err
	}
	return fn(dir, base)
}

// mkdir: mode 0 means 0o755; vfs_mkdir keeps only the permission and sticky
// bits.
func (e *Executor) mkdir(op *fsop.Op) (fsop.Result, error) {
	mode := op.Mode
	if mode == 0 {
		mode = 0o755
	}
	return fsop.Result{}, e.atParent(op.Path, func(dir store.Attr, base string) error {
		if base == "." {
			return syscall.EEXIST // filename_create: not LAST_NORM
		}
		own := e.ownerOf(op)
		_, err := e.s.Mkdir(dir.Ino, base, mode&0o1777, own.uid, own.gid)
		return err
	})
}

// rmdir: the store answers "." with EINVAL, as do_rmdir does (LAST_DOT).
func (e *Executor) rmdir(op *fsop.Op) (fsop.Result, error) {
	return fsop.Result{}, e.atParent(op.Path, func(dir store.Attr, base string) error {
		return e.s.Rmdir(dir.Ino, base)
	})
}

func (e *Executor) unlink(op *fsop.Op) (fsop.Result, error) {
	return fsop.Result{}, e.atParent(op.Path, func(dir store.Attr, base string) error {
		if base == "." {
			return syscall.EISDIR // do_unlinkat: not LAST_NORM
		}
		return e.s.Unlink(dir.Ino, base)
	})
}

// symlink: symlinkat copies the target (PATH_MAX) before it looks at the
// new name.
func (e *Executor) symlink(op *fsop.Op) (fsop.Result, error) {
	return fsop.Result{}, e.atParent(op.Path, func(dir store.Attr, base string) error {
		switch {
		case len(op.Target) >= fsop.MaxTargetLen:
			return syscall.ENAMETOOLONG
		case base == ".":
			return syscall.EEXIST
		}
		own := e.ownerOf(op)
		_, err := e.s.Symlink(dir.Ino, base, op.Target, own.uid, own.gid)
		return err
	})
}

func (e *Executor) readlink(op *fsop.Op) (r fsop.Result, err error) {
	err = e.atParent(op.Path, func(dir store.Attr, base string) error {
		a, err := e.lookupAt(dir, base)
		if err == nil {
			r.Target, err = e.s.Readlink(a.Ino) // EINVAL on a non-symlink
		}
		return err
	})
	return r, err
}

func (e *Executor) lstat(op *fsop.Op) (r fsop.Result, err error) {
	err = e.atParent(op.Path, func(dir store.Attr, base string) error {
		a, err := e.lookupAt(dir, base)
		r.Stat = fsopAttr(a)
		return err
	})
	return r, err
}

// twoParents resolves both parents of a rename or link, from's first, before
// anything changes.
func (e *Executor) twoParents(op *fsop.Op) (od store.Attr, ob string, nd store.Attr, nb string, err error) {
	if od, ob, err = e.parent(op.Path); err == nil {
		nd, nb, err = e.parent(op.To)
	}
	return od, ob, nd, nb, err
}

// rename is renameat2 with do_renameat2's checks in its order; the store
// then makes the type and emptiness checks of vfs_rename.
func (e *Executor) rename(op *fsop.Op) (fsop.Result, error) {
	od, ob, nd, nb, err := e.twoParents(op)
	if err != nil {
		return fsop.Result{}, err
	}
	flags := uint32(op.Flags)
	noReplace, exchange := flags&store.RenameNoReplace != 0, flags&store.RenameExchange != 0
	switch {
	case flags&^(store.RenameNoReplace|store.RenameExchange|renameWhiteout) != 0,
		exchange && flags&(store.RenameNoReplace|renameWhiteout) != 0:
		return fsop.Result{}, syscall.EINVAL
	case ob == ".":
		return fsop.Result{}, syscall.EBUSY
	case nb == "." && noReplace:
		return fsop.Result{}, syscall.EEXIST
	case nb == ".":
		return fsop.Result{}, syscall.EBUSY
	}
	src, err := e.s.Lookup(od.Ino, ob)
	if err != nil {
		return fsop.Result{}, err
	}
	dst, err := e.s.Lookup(nd.Ino, nb)
	exists := err == nil
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return fsop.Result{}, err
	}
	switch {
	case noReplace && exists:
		return fsop.Result{}, syscall.EEXIST
	case exchange && !exists:
		return fsop.Result{}, syscall.ENOENT
	}
	if od.Ino != nd.Ino {
		// lock_rename's trap: the source may not contain the new parent,
		// the target may not contain the old one.
		srcTrap, err := e.contains(src, nd.Ino)
		dstTrap := false
		if err == nil && exists {
			dstTrap, err = e.contains(dst, od.Ino)
		}
		switch {
		case err != nil:
			return fsop.Result{}, err
		case srcTrap, dstTrap && exchange:
			return fsop.Result{}, syscall.EINVAL
		case dstTrap:
			return fsop.Result{}, syscall.ENOTEMPTY
		}
	}
	if exists && src.Ino == dst.Ino {
		return fsop.Result{}, nil // vfs_rename: source == target does nothing
	}
	return fsop.Result{}, e.s.Rename(od.Ino, ob, nd.Ino, nb, flags)
}

// link is linkat without AT_SYMLINK_FOLLOW: the new name is checked (EEXIST)
// before the source's type (EPERM for a directory).
func (e *Executor) link(op *fsop.Op) (fsop.Result, error) {
	od, ob, nd, nb, err := e.twoParents(op)
	if err != nil {
		return fsop.Result{}, err
	}
	src, err := e.lookupAt(od, ob)
	if err != nil {
		return fsop.Result{}, err
	}
	if nb == "." {
		return fsop.Result{}, syscall.EEXIST
	}
	if _, err := e.s.Lookup(nd.Ino, nb); err == nil {
		return fsop.Result{}, syscall.EEXIST
	} else if !errors.Is(err, syscall.ENOENT) {
		return fsop.Result{}, err
	}
	if isDir(src) {
		return fsop.Result{}, syscall.EPERM
	}
	_, err = e.s.Link(src.Ino, nd.Ino, nb)
	return fsop.Result{}, err
}

// ---- Ops on the file a path names (final symlink followed) ----

func (e *Executor) stat(op *fsop.Op) (fsop.Result, error) {
	a, err := e.resolve(op.Path, true, nil)
	return fsop.Result{Stat: fsopAttr(a)}, err
}

func (e *Executor) statfs(op *fsop.Op) (fsop.Result, error) {
	if _, err := e.resolve(op.Path, true, nil); err != nil {
		return fsop.Result{}, err
	}
	sf := e.s.Statfs()
	return fsop.Result{Statfs: &fsop.StatfsInfo{
		Bsize: int64(sf.Bsize), Blocks: sf.Blocks, Bfree: sf.Bfree, Bavail: sf.Bavail,
		Files: sf.Files, Ffree: sf.Ffree, Namelen: int64(sf.Namelen),
	}}, nil
}

// setattr resolves p and applies the change attr computes from its node.
func (e *Executor) setattr(p string, follow bool, attr func(store.Attr) store.SetAttr) (fsop.Result, error) {
	a, err := e.resolve(p, follow, nil)
	if err == nil {
		_, err = e.s.Setattr(a.Ino, attr(a))
	}
	return fsop.Result{}, err
}

// mknod is do_mknodat: may_mknod's type check (a directory EPERM, an
// unknown type EINVAL), then the new name (EEXIST for "."), then a device
// needs CAP_MKNOD (modelled as uid 0). The kernel takes the device number
// as a 32-bit dev_t and reports it back unchanged; S_IFREG or no type
// makes an empty regular file (vfs_create).
func (e *Executor) mknod(op *fsop.Op) (fsop.Result, error) {
	switch op.Mode & unix.S_IFMT {
	case 0, unix.S_IFREG, unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFCHR, unix.S_IFBLK:
	case unix.S_IFDIR:
		return fsop.Result{}, syscall.EPERM
	default:
		return fsop.Result{}, syscall.EINVAL
	}
	return fsop.Result{}, e.atParent(op.Path, func(dir store.Attr, base string) error {
		if base == "." {
			return syscall.EEXIST // filename_create: not LAST_NORM
		}
		dev := op.Mode&unix.S_IFMT == unix.S_IFCHR || op.Mode&unix.S_IFMT == unix.S_IFBLK
		if _, err := e.s.Lookup(dir.Ino, base); err == nil {
			return syscall.EEXIST
		}
		if dev && !e.privileged {
			return syscall.EPERM
		}
		own := e.ownerOf(op)
		_, err := e.s.Mknod(dir.Ino, base, op.Mode, uint64(uint32(op.Rdev)), own.uid, own.gid)
		return err
	})
}

// chmod keeps the permission bits (chmod_common: S_IALLUGO).
func (e *Executor) chmod(op *fsop.Op) (fsop.Result, error) {
	return e.setattr(op.Path, true, func(store.Attr) store.SetAttr {
		return store.SetAttr{Valid: store.SetMode, Mode: op.Mode & 0o7777}
	})
}

func (e *Executor) utimens(op *fsop.Op) (fsop.Result, error) {
	return e.setattr(op.Path, op.Flags&fsop.NoFollow == 0, func(store.Attr) store.SetAttr {
		return store.SetAttr{Valid: store.SetAtime | store.SetMtime, Atime: op.AtimeNs, Mtime: op.MtimeNs}
	})
}

// truncatePath: EISDIR for a directory, EINVAL for another non-regular file.
func (e *Executor) truncatePath(op *fsop.Op) (fsop.Result, error) {
	a, err := e.resolve(op.Path, true, nil)
	if err == nil {
		err = e.truncate(a.Ino, op.Size)
	}
	return fsop.Result{}, err
}

// chown refuses ids that are neither -1 (unchanged) nor a 32-bit id, as
// sysexec does. Like chown_common it always changes ctime, and on a
// non-directory clears set-user-ID, and set-group-ID when group-executable.
func (e *Executor) chown(op *fsop.Op) (fsop.Result, error) {
	for _, id := range []int64{op.UID, op.GID} {
		if id < -1 || id >= 1<<32-1 {
			return fsop.Result{}, fmt.Errorf("storeexec: %w: chown id %d out of range", fsop.ErrBadValue, id)
		}
	}
	return e.setattr(op.Path, op.Flags&fsop.NoFollow == 0, func(a store.Attr) store.SetAttr {
		sa := store.SetAttr{UID: uint32(op.UID), GID: uint32(op.GID)}
		if op.UID != -1 {
			sa.Valid |= store.SetUID
		}
		if op.GID != -1 {
			sa.Valid |= store.SetGID
		}
		if !isDir(a) {
			mode := a.Mode &^ syscall.S_ISUID
			if mode&(syscall.S_ISGID|syscall.S_IXGRP) == syscall.S_ISGID|syscall.S_IXGRP {
				mode &^= syscall.S_ISGID
			}
			if mode != a.Mode {
				sa.Valid, sa.Mode = sa.Valid|store.SetMode, mode&0o7777
			}
		}
		return sa
	})
}

// fsopAttr converts store attributes.
func fsopAttr(a store.Attr) *fsop.Attr {
	return &fsop.Attr{
		Mode: a.Mode, Size: a.Size, Nlink: a.Nlink, UID: a.UID, GID: a.GID,
		AtimeNs: a.Atime, MtimeNs: a.Mtime, CtimeNs: a.Ctime, Ino: a.Ino, Rdev: a.Rdev,
	}
}

// owner is who a new node belongs to.
type owner struct{ uid, gid uint32 }

// noCreate is the owner passed where nothing can be created.
var noCreate = owner{}

// ownerOf is the owner of what op creates: its Caller, or the executor's
// own user.
func (e *Executor) ownerOf(op *fsop.Op) owner {
	if c := op.Caller; c != nil {
		return owner{c.UID, c.GID}
	}
	return owner{e.uid, e.gid}
}
