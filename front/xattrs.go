package front

// Missing extended attributes, remembered. The kernel asks
// getxattr("security.capability") before every WRITE and before a chown (to
// know whether to clear file capabilities), and FUSE gives it no way to
// remember the answer: a tar xf sent 5 such getxattr ops per file, a third
// of all its ops, each through the proxy and both bridges. With the
// kernel's attribute cache on (fusemount.Options.AttrTimeout > 0,
// `--front-cache`), the front remembers that a node has no attribute of a
// name for that long and answers ENODATA itself, as the kernel answers a
// cached getattr itself; a file it creates starts with no
// security.capability. The memory is dropped by any setxattr or removexattr
// of the node through the front, and by Mounted.Forget (a change made
// through the proxy's API); a generation number keeps a getxattr that raced
// with such a change from writing its stale answer back.

import (
	"syscall"
	"time"
)

// capability is the attribute the kernel asks for before every write: a
// file just created has none.
const capability = "security.capability"

// maxMissingXattrs bounds the names remembered per node; past it, the
// memory starts over.
const maxMissingXattrs = 16

// missingXattrs is what a node remembers of its missing attributes; the
// node's mu guards it.
type missingXattrs struct {
	until map[string]time.Time // name -> when the memory ends
	gen   uint64               // bumped by every forget
}

// xattrKnownMissing reports whether name is remembered as missing, and
// the generation to pass to noteXattrMissing otherwise.
func (n *node) xattrKnownMissing(name string) (bool, uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	until, ok := n.xattrs.until[name]
	if ok && time.Now().Before(until) {
		return true, 0
	}
	if ok {
		delete(n.xattrs.until, name)
	}
	return false, n.xattrs.gen
}

// noteXattrMissing remembers, if the kernel may cache attributes, that
// name was found missing by a getxattr that started at generation gen.
func (n *node) noteXattrMissing(name string, gen uint64) {
	ttl := n.fsys.opts.AttrTimeout
	if ttl <= 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.xattrs.gen != gen {
		return // changed meanwhile: the answer may be stale
	}
	if n.xattrs.until == nil || len(n.xattrs.until) >= maxMissingXattrs {
		n.xattrs.until = map[string]time.Time{}
	}
	n.xattrs.until[name] = time.Now().Add(ttl)
}

// createdWithoutCapability remembers that the node, a file the front has
// just created, has no file capabilities: the kernel asks before its first
// write too.
func (n *node) createdWithoutCapability() {
	_, gen := n.xattrKnownMissing(capability)
	n.noteXattrMissing(capability, gen)
}

// forgetXattrs drops what the node remembers of its attributes.
func (n *node) forgetXattrs() {
	n.mu.Lock()
	n.xattrs.until = nil
	n.xattrs.gen++
	n.mu.Unlock()
}

// getxattrCached answers a getxattr of a name remembered missing with
// ENODATA, and runs the others with get, remembering ENODATA.
func (n *node) getxattrCached(name string, get func() (uint32, syscall.Errno)) (uint32, syscall.Errno) {
	missing, gen := n.xattrKnownMissing(name)
	if missing {
		return 0, syscall.ENODATA
	}
	size, errno := get()
	if errno == syscall.ENODATA {
		n.noteXattrMissing(name, gen)
	}
	return size, errno
}
