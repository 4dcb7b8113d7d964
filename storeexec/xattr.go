package storeexec

import (
	"strings"
	"syscall"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/store"
)

// xattr runs the four xattr calls. sysexec resolves the path first; then
// the syscall copies its arguments (setxattr's flags, the name, the value's
// size), the VFS checks the namespace, and the store answers.
func (e *Executor) xattr(op *fsop.Op) (fsop.Result, error) {
	a, err := e.resolve(op.Path, true, nil)
	if err != nil {
		return fsop.Result{}, err
	}
	if op.Kind == fsop.Listxattr {
		return e.listxattr(a, op.Length)
	}
	set := op.Kind == fsop.Setxattr
	switch {
	case set && uint32(op.Flags)&^(store.XattrCreate|store.XattrReplace) != 0:
		return fsop.Result{}, syscall.EINVAL
	case op.Name == "" || len(op.Name) > store.MaxXattrName:
		return fsop.Result{}, syscall.ERANGE
	case set && len(op.Value) > store.MaxXattrSize:
		return fsop.Result{}, syscall.E2BIG
	}
	if err := e.xattrAccess(a, op.Name, op.Kind != fsop.Getxattr); err != nil {
		return fsop.Result{}, err
	}
	switch op.Kind {
	case fsop.Setxattr:
		return fsop.Result{}, e.s.Setxattr(a.Ino, op.Name, op.Value, uint32(op.Flags))
	case fsop.Removexattr:
		return fsop.Result{}, e.s.Removexattr(a.Ino, op.Name)
	}
	v, err := e.s.Getxattr(a.Ino, op.Name)
	if err == nil {
		err = xattrFits(int64(len(v)), op.Length)
	}
	return fsop.Result{Value: v, Size: int64(len(v))}, err
}

// listxattr answers with the names and the buffer size they need (each name
// and its NUL).
func (e *Executor) listxattr(a store.Attr, length int64) (fsop.Result, error) {
	names, err := e.s.Listxattr(a.Ino)
	if err != nil {
		return fsop.Result{}, err
	}
	var r fsop.Result
	for _, n := range names {
		r.Size += int64(len(n)) + 1
	}
	if len(names) > 0 {
		r.Names = names
	}
	return r, xattrFits(r.Size, length)
}

// xattrFits applies getxattr and listxattr's buffer rules to an answer of
// size bytes. Length 0 is a size query, which sysexec follows with a read
// whose buffer has that size. The kernel clamps a buffer to 64 KiB; an answer
// that does not fit gives ERANGE, or E2BIG when even 64 KiB is too small.
func xattrFits(size, length int64) error {
	buf := length
	if buf == 0 {
		buf = size
	}
	buf = min(buf, xattrMax)
	switch {
	case size <= buf:
		return nil
	case buf == xattrMax:
		return syscall.E2BIG
	}
	return syscall.ERANGE
}

// xattrPrefixes are the namespaces Linux filesystems have handlers for.
var xattrPrefixes = []string{"user.", "trusted.", "security.", "system."}

// xattrAccess is the VFS's say on xattr name of node a: xattr_permission
// (trusted.* needs privilege; user.* only exists on regular files and
// directories, and on a sticky directory is written only by its owner), then
// the handler lookup (a name outside the four namespaces is EOPNOTSUPP, a
// bare prefix EINVAL).
func (e *Executor) xattrAccess(a store.Attr, name string, write bool) error {
	deny := syscall.ENODATA
	if write {
		deny = syscall.EPERM
	}
	var prefix string
	for _, p := range xattrPrefixes {
		if strings.HasPrefix(name, p) {
			prefix = p
			break
		}
	}
	switch prefix {
	case "trusted.":
		if !e.privileged {
			return deny
		}
	case "user.":
		if !isReg(a) && !isDir(a) {
			return deny
		}
		if write && isDir(a) && a.Mode&syscall.S_ISVTX != 0 && !e.privileged && a.UID != e.uid {
			return syscall.EPERM
		}
	case "":
		return syscall.EOPNOTSUPP
	}
	if name == prefix {
		return syscall.EINVAL
	}
	return nil
}
