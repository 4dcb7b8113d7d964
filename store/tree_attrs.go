package store

// Attribute events: setattr (a size change is node.truncate) and xattrs.

import (
	"strings"
	"syscall"
)

func (t *tree) applySetattr(ev *event) error {
	n, err := t.get(ev.ino)
	if err != nil {
		return err
	}
	if ev.valid&SetSize != 0 {
		switch {
		case n.isDir():
			return syscall.EISDIR
		case !n.isReg() || ev.size < 0:
			return syscall.EINVAL
		case ev.size > MaxFileSize:
			return syscall.EFBIG
		}
	}
	n = t.w(n)
	if ev.valid&SetSize != 0 {
		n.truncate(ev.size)
		n.mtime = ev.time
	}
	if ev.valid&SetMode != 0 {
		n.mode = n.mode&syscall.S_IFMT | ev.mode&0o7777
	}
	if ev.valid&SetUID != 0 {
		n.uid = ev.uid
	}
	if ev.valid&SetGID != 0 {
		n.gid = ev.gid
	}
	if ev.valid&SetAtime != 0 {
		n.atime = ev.atime
	}
	if ev.valid&SetMtime != 0 {
		n.mtime = ev.mtime
	}
	n.ctime = ev.time
	return nil
}

func (t *tree) applyXattr(ev *event) error {
	n, err := t.get(ev.ino)
	if err != nil {
		return err
	}
	if err := checkXattrName(ev.name); err != nil {
		return err
	}
	_, exists := n.xattrs[ev.name]
	if ev.kind == evRemovexattr {
		if !exists {
			return syscall.ENODATA
		}
		n = t.w(n)
		delete(n.xattrs, ev.name)
		n.ctime = ev.time
		return nil
	}
	switch {
	case ev.flags&^(XattrCreate|XattrReplace) != 0:
		return syscall.EINVAL
	case ev.flags&XattrCreate != 0 && exists:
		return syscall.EEXIST
	case ev.flags&XattrReplace != 0 && !exists:
		return syscall.ENODATA
	case len(ev.data) > MaxXattrSize:
		return syscall.E2BIG
	}
	n = t.w(n)
	if n.xattrs == nil {
		n.xattrs = map[string][]byte{}
	}
	n.xattrs[ev.name] = append([]byte{}, ev.data...)
	n.ctime = ev.time
	return nil
}

// xattrNamespaces are the prefixes Linux filesystems accept; the kernel
// leaves the check to FUSE filesystems, so the store makes it.
var xattrNamespaces = []string{"user.", "trusted.", "security.", "system."}

func checkXattrName(name string) error {
	if name == "" || len(name) > MaxXattrName {
		return syscall.ERANGE
	}
	for _, ns := range xattrNamespaces {
		if strings.HasPrefix(name, ns) {
			return nil
		}
	}
	return syscall.EOPNOTSUPP
}
