package front

import (
	"context"
	"log"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// node is one name the kernel knows, as go-fuse sees it. Its identity is
// its place in go-fuse's tree: every request runs on its current path.
type node struct {
	fs.Inode
	fsys *filesystem
	top  bool // the front's root (isTop)
	// bridgeIno is the bridge's inode number the node was looked up with:
	// its number in go-fuse's table too, unless another file had taken it
	// there (newChild).
	bridgeIno uint64

	mu       sync.Mutex
	attr     fsop.Attr // the last attributes seen or made through the front
	haveAttr bool
	xattrs   missingXattrs // names a getxattr found missing (xattrs.go)
}

var _ fs.InodeEmbedder = (*node)(nil)

// ino is the node's inode number in go-fuse's table: the serving
// bridge's st_ino when the node was looked up.
func (n *node) ino() uint64 { return n.StableAttr().Ino }

// isSymlink reports whether the node is a symbolic link.
func (n *node) isSymlink() bool { return n.StableAttr().Mode == syscall.S_IFLNK }

// path is the node's current path.
func (n *node) path() (string, syscall.Errno) {
	p, ok := pathOf(n.EmbeddedInode())
	if !ok {
		return "", errOrphan
	}
	return p, checkLen(p)
}

// childPath is the path of name in directory n.
func (n *node) childPath(name string) (string, syscall.Errno) {
	dir, errno := n.path()
	if errno != 0 {
		return "", errno
	}
	p := name
	if dir != "." {
		p = dir + "/" + name
	}
	return p, checkLen(p)
}

// remember records a as the node's last known attributes.
func (n *node) remember(a fsop.Attr) {
	n.mu.Lock()
	n.attr, n.haveAttr = a, true
	n.mu.Unlock()
}

// remembered returns the node's last known attributes.
func (n *node) remembered() (fsop.Attr, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.attr, n.haveAttr
}

// update changes the remembered attributes, if there are any, and reports
// whether there were.
func (n *node) update(fn func(a *fsop.Attr)) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.haveAttr {
		fn(&n.attr)
	}
	return n.haveAttr
}

// lostName records that one of the node's names was removed through the
// front (unlink, rmdir, rename over it).
func (n *node) lostName() {
	n.update(func(a *fsop.Attr) {
		switch {
		case a.Mode&syscall.S_IFMT == syscall.S_IFDIR:
			a.Nlink = 0
		case a.Nlink > 0:
			a.Nlink--
		}
		a.CtimeNs = time.Now().UnixNano()
	})
}

// asNode returns the front node behind an Inode of this mount.
func asNode(in *fs.Inode) *node {
	if in == nil {
		return nil
	}
	nd, _ := in.Operations().(*node)
	return nd
}

// newChild returns the Inode for name, a child of n with attributes a, and
// fills out. Its identity is the bridge's inode number and the file type:
// go-fuse hands back the Inode it already has for them (another name of
// a hard link, or a name looked up again), so the kernel sees one inode
// per file, as on the bridge's mount. An attribute without an inode
// number gets one of go-fuse's (from FirstAutomaticIno).
//
// The number can mislead: during a canary the candidate serves some paths,
// and after a resync renumbered its copy (store.RestoreSubtree) one of its
// numbers can be another file's on the primary. A directory whose number
// is n's or an ancestor's would be handed that node by go-fuse, a
// directory inside itself, which the kernel refuses with ELOOP; such a
// directory gets a node, and a number, of its own (a directory has one
// name, so it cannot be the same file). Two files sharing a number
// elsewhere are not detected (front/doc.go, "Inode numbers").
func (n *node) newChild(ctx context.Context, name string, a fsop.Attr, out *fuse.EntryOut) *fs.Inode {
	typ := a.Mode & syscall.S_IFMT
	id := fs.StableAttr{Ino: a.Ino, Mode: typ}
	if typ == syscall.S_IFDIR && a.Ino != 0 && n.hasAncestor(id) {
		if old := n.knownChild(name); old != nil && old.bridgeIno == a.Ino && old.StableAttr().Mode == typ {
			id = old.StableAttr() // looked up again: the number it was given
		} else {
			id.Ino = 0 // go-fuse's next free number
			log.Printf("front: %s: the bridge's inode number %d is this directory's or an ancestor's; given a number of its own (did a resync renumber the serving bridge's copy?)", name, a.Ino)
		}
	}
	child := n.NewInode(ctx, &node{fsys: n.fsys, bridgeIno: a.Ino, attr: a, haveAttr: true}, id)
	n.fsys.fillEntry(a, child.StableAttr().Ino, out)
	return child
}

// knownChild is go-fuse's node for name in n, or nil.
func (n *node) knownChild(name string) *node {
	if in := n.GetChild(name); in != nil {
		nd, _ := in.Operations().(*node)
		return nd
	}
	return nil
}

// hasAncestor reports whether n, or a directory above it, has identity id.
func (n *node) hasAncestor(id fs.StableAttr) bool {
	for in := n.EmbeddedInode(); in != nil; {
		if in.StableAttr() == id {
			return true
		}
		if isTop(in) {
			return false
		}
		_, in = in.Parent()
	}
	return false
}

// entry runs op (which makes name in n) and then looks the new name up.
func (n *node) entry(ctx context.Context, name string, op *fsop.Op, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p, errno := n.childPath(name)
	if errno != 0 {
		return nil, errno
	}
	op.Path = p
	if _, errno := n.fsys.run(ctx, op); errno != 0 {
		return nil, errno
	}
	return n.lookupPath(ctx, name, p, out)
}

// lookupPath lstats p, the path of name in n, and returns its node (see
// newChild).
func (n *node) lookupPath(ctx context.Context, name, p string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	a, errno := n.fsys.lstat(ctx, p)
	if errno != 0 {
		return nil, errno
	}
	return n.newChild(ctx, name, a, out), 0
}

var _ fs.NodeLookuper = (*node)(nil)

// Lookup lstats the child's path. A missing name is ENOENT without a
// timeout: go-fuse turns it into the negative entry that
// fs.Options.NegativeTimeout asks for.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p, errno := n.childPath(name)
	if errno != 0 {
		return nil, errno
	}
	return n.lookupPath(ctx, name, p, out)
}

var _ fs.NodeGetattrer = (*node)(nil)

// Getattr lstats the node's path. The remembered attributes answer when the
// node has no path any more, or when its path has gone while a file handle
// is open (go-fuse passes one whenever the node has an open file), so that
// fstat, and the GETATTR the kernel sends before reading, work on an open,
// unlinked file. A path that now names another file (another type, or
// another inode number on the bridge) is ESTALE, which makes the kernel
// look the name up again; with an open handle the node keeps answering.
func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	p, ok := pathOf(n.EmbeddedInode())
	if !ok {
		return n.fillRemembered(out, errOrphan)
	}
	if errno := checkLen(p); errno != 0 {
		return errno
	}
	a, errno := n.fsys.lstat(ctx, p)
	switch {
	case errno == syscall.ENOENT && f != nil:
		return n.fillRemembered(out, errno)
	case errno != 0:
		return errno
	case a.Mode&syscall.S_IFMT != n.StableAttr().Mode:
		return syscall.ESTALE
	case f == nil && a.Ino != 0 && a.Ino != n.bridgeIno && !isTop(n.EmbeddedInode()):
		return syscall.ESTALE
	}
	n.remember(a)
	n.fsys.fillAttrOut(a, n.ino(), out)
	return 0
}

// fillRemembered answers a GETATTR from the remembered attributes, or with
// errno if there are none.
func (n *node) fillRemembered(out *fuse.AttrOut, errno syscall.Errno) syscall.Errno {
	a, ok := n.remembered()
	if !ok {
		return errno
	}
	n.fsys.fillAttrOut(a, n.ino(), out)
	return 0
}

// attrs returns the node's attributes after a change: an lstat of its path,
// or the remembered ones when it has no path any more.
func (n *node) attrs(ctx context.Context) (fsop.Attr, syscall.Errno) {
	p, ok := pathOf(n.EmbeddedInode())
	if !ok {
		if a, ok := n.remembered(); ok {
			return a, 0
		}
		return fsop.Attr{}, errOrphan
	}
	if errno := checkLen(p); errno != 0 {
		return fsop.Attr{}, errno
	}
	a, errno := n.fsys.lstat(ctx, p)
	if errno == 0 {
		n.remember(a)
	}
	return a, errno
}

var _ fs.NodeSetattrer = (*node)(nil)

// Setattr translates one SETATTR into ops, in this order: the size
// (ftruncate on the handle if the kernel gave one, else truncate), then
// chown, chmod and utimens. The kernel combines attributes only where one
// follows from another (a chown's cleared set-user-ID bit comes as a mode),
// so the order gives the same end state as one call. chown and utimens
// carry fsop.NoFollow: a SETATTR is about the node itself, so on a symlink
// they are lchown and utimensat(AT_SYMLINK_NOFOLLOW).
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = kernelChecked(ctx)
	mode, setMode := in.GetMode()
	uid, setUID := in.GetUID()
	gid, setGID := in.GetGID()
	size, setSize := in.GetSize()
	setAtime := in.Valid&(fuse.FATTR_ATIME|fuse.FATTR_ATIME_NOW) != 0
	setMtime := in.Valid&(fuse.FATTR_MTIME|fuse.FATTR_MTIME_NOW) != 0
	if setSize && !setAtime && in.Valid&fuse.FATTR_MTIME_NOW != 0 {
		// The mtime update the kernel adds to ftruncate and open(O_TRUNC):
		// the truncate makes it itself.
		setMtime = false
	}
	if n.isSymlink() && (setMode || setSize) {
		// The kernel sends neither for a symlink (chmod and truncate
		// follow links); the ops would follow it to its target.
		return syscall.EOPNOTSUPP
	}

	if setSize {
		if h, ok := f.(*handle); ok {
			if _, errno := n.fsys.run(ctx, &fsop.Op{Kind: fsop.Ftruncate, Handle: h.id, Size: int64(size)}); errno != 0 {
				return errno
			}
		} else if errno := n.pathOp(ctx, &fsop.Op{Kind: fsop.Truncate, Size: int64(size)}); errno != 0 {
			return errno
		}
		n.update(func(a *fsop.Attr) { a.Size = int64(size) })
	}
	if setUID || setGID {
		op := &fsop.Op{Kind: fsop.Chown, UID: -1, GID: -1, Flags: fsop.NoFollow}
		if setUID {
			op.UID = int64(uid)
		}
		if setGID {
			op.GID = int64(gid)
		}
		if errno := n.pathOp(ctx, op); errno != 0 {
			return errno
		}
	}
	if setMode {
		if errno := n.pathOp(ctx, &fsop.Op{Kind: fsop.Chmod, Mode: mode & 0o7777}); errno != 0 {
			return errno
		}
	}
	var times *fsop.Op
	if setAtime || setMtime {
		var errno syscall.Errno
		if times, errno = n.utimens(ctx, in, setAtime, setMtime); errno != 0 {
			return errno
		}
	}

	// The reply: what the ops set, on the remembered attributes, if there
	// are any; else an lstat.
	now := time.Now().UnixNano()
	var a fsop.Attr
	changed := n.update(func(r *fsop.Attr) {
		a = *r
		if setUID {
			a.UID = uid
		}
		if setGID {
			a.GID = gid
		}
		if setMode {
			a.Mode = a.Mode&syscall.S_IFMT | mode&0o7777
		}
		if setSize {
			a.MtimeNs = now
		}
		if times != nil {
			a.AtimeNs, a.MtimeNs = times.AtimeNs, times.MtimeNs
		}
		a.CtimeNs = now
		*r = a
	})
	if changed {
		fillAttr(a, n.ino(), &out.Attr)
		// Not to be cached: the times are the front's clock, not the
		// bridge's. The kernel asks for them (an lstat) if it needs
		// them; after a chmod or utimes it rarely does (tar sets three
		// attributes of each file it extracts, one SETATTR each, and
		// never reads them back).
		out.SetTimeout(0)
		return 0
	}
	a, errno := n.attrs(ctx)
	if errno != 0 {
		return errno
	}
	n.fsys.fillAttrOut(a, n.ino(), out)
	return 0
}

// utimens sets the times SETATTR asks for, and returns the op it made. The
// op sets both, so a time the kernel leaves alone (UTIME_OMIT) is read back
// by an lstat first.
func (n *node) utimens(ctx context.Context, in *fuse.SetAttrIn, setAtime, setMtime bool) (*fsop.Op, syscall.Errno) {
	now := time.Now().UnixNano()
	at := func(nowBit uint32, sec uint64, nsec uint32) int64 {
		if in.Valid&nowBit != 0 {
			return now
		}
		return joinNs(sec, nsec)
	}
	op := &fsop.Op{Kind: fsop.Utimens, Flags: fsop.NoFollow}
	if !setAtime || !setMtime {
		p, errno := n.path()
		if errno != 0 {
			return nil, errno
		}
		cur, errno := n.fsys.lstat(ctx, p)
		if errno != 0 {
			return nil, errno
		}
		op.AtimeNs, op.MtimeNs = cur.AtimeNs, cur.MtimeNs
	}
	if setAtime {
		op.AtimeNs = at(fuse.FATTR_ATIME_NOW, in.Atime, in.Atimensec)
	}
	if setMtime {
		op.MtimeNs = at(fuse.FATTR_MTIME_NOW, in.Mtime, in.Mtimensec)
	}
	if errno := n.pathOp(ctx, op); errno != 0 {
		return nil, errno
	}
	return op, 0
}

// pathOp runs op on the node's path.
func (n *node) pathOp(ctx context.Context, op *fsop.Op) syscall.Errno {
	p, errno := n.path()
	if errno != 0 {
		return errno
	}
	op.Path = p
	_, errno = n.fsys.run(ctx, op)
	return errno
}

var _ fs.NodeMkdirer = (*node)(nil)

// Mkdir makes a directory with the mode the kernel gives (umask applied).
// The ops read mode 0 as "the default", so mode 0 takes a chmod after.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	perm := mode & 0o7777
	if perm != 0 {
		return n.entry(ctx, name, &fsop.Op{Kind: fsop.Mkdir, Mode: perm}, out)
	}
	p, errno := n.childPath(name)
	if errno != 0 {
		return nil, errno
	}
	if _, errno := n.fsys.run(ctx, &fsop.Op{Kind: fsop.Mkdir, Path: p}); errno != 0 {
		return nil, errno
	}
	if _, errno := n.fsys.run(ctx, &fsop.Op{Kind: fsop.Chmod, Path: p}); errno != 0 {
		return nil, errno
	}
	return n.lookupPath(ctx, name, p, out)
}

var _ fs.NodeMknoder = (*node)(nil)

// Mknod makes a FIFO, socket (bind(2)), device node or empty regular file
// with the kernel's mode (type and permissions, umask applied) and device
// number; the bridges answer as their mounts do.
func (n *node) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.entry(ctx, name, &fsop.Op{Kind: fsop.Mknod, Mode: mode, Rdev: uint64(dev)}, out)
}

var _ fs.NodeSymlinker = (*node)(nil)

// Symlink makes a symbolic link holding target verbatim.
func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.entry(ctx, name, &fsop.Op{Kind: fsop.Symlink, Target: target}, out)
}

var _ fs.NodeLinker = (*node)(nil)

// Link gives target another name. The new name is a new node with its own
// inode number (see "Inode numbers" in the package documentation).
func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	from, ok := pathOf(target.EmbeddedInode())
	if !ok {
		return nil, errOrphan
	}
	if errno := checkLen(from); errno != 0 {
		return nil, errno
	}
	to, errno := n.childPath(name)
	if errno != 0 {
		return nil, errno
	}
	if _, errno := n.fsys.run(ctx, &fsop.Op{Kind: fsop.Link, Path: from, To: to}); errno != 0 {
		return nil, errno
	}
	if t := asNode(target.EmbeddedInode()); t != nil {
		t.update(func(a *fsop.Attr) { a.Nlink++ })
	}
	return n.lookupPath(ctx, name, to, out)
}

var _ fs.NodeUnlinker = (*node)(nil)

// Unlink removes a name. go-fuse then drops it from its tree.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.remove(ctx, fsop.Unlink, name)
}

var _ fs.NodeRmdirer = (*node)(nil)

// Rmdir removes an empty directory.
func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.remove(ctx, fsop.Rmdir, name)
}

func (n *node) remove(ctx context.Context, kind fsop.Kind, name string) syscall.Errno {
	p, errno := n.childPath(name)
	if errno != 0 {
		return errno
	}
	victim := asNode(n.GetChild(name))
	if _, errno := n.fsys.run(ctx, &fsop.Op{Kind: kind, Path: p}); errno != 0 {
		return errno
	}
	if victim != nil {
		victim.lostName()
	}
	return 0
}

var _ fs.NodeRenamer = (*node)(nil)

// Rename passes renameat2's flags (RENAME_NOREPLACE, RENAME_EXCHANGE) on;
// go-fuse moves the names in its tree after success.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	from, errno := n.childPath(name)
	if errno != 0 {
		return errno
	}
	to, errno := np.childPath(newName)
	if errno != 0 {
		return errno
	}
	source, victim := n.GetChild(name), np.GetChild(newName)
	if _, errno := n.fsys.run(ctx, &fsop.Op{Kind: fsop.Rename, Path: from, To: to, Flags: int(flags)}); errno != 0 {
		return errno
	}
	if flags&fsop.RenameExchange == 0 && victim != nil && victim != source {
		if v := asNode(victim); v != nil {
			v.lostName()
		}
	}
	return 0
}

var _ fs.NodeReadlinker = (*node)(nil)

// Readlink returns the link's target as the bridge stores it.
func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	p, errno := n.path()
	if errno != 0 {
		return nil, errno
	}
	res, errno := n.fsys.run(ctx, &fsop.Op{Kind: fsop.Readlink, Path: p})
	if errno != 0 {
		return nil, errno
	}
	return []byte(res.Target), 0
}

var _ fs.NodeStatfser = (*node)(nil)

// Statfs asks about the node's path, or the root for a node without one.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	p, ok := pathOf(n.EmbeddedInode())
	if !ok {
		p = "."
	}
	if errno := checkLen(p); errno != 0 {
		return errno
	}
	res, errno := n.fsys.run(ctx, &fsop.Op{Kind: fsop.Statfs, Path: p})
	if errno != 0 {
		return errno
	}
	if s := res.Statfs; s != nil {
		out.Blocks, out.Bfree, out.Bavail = s.Blocks, s.Bfree, s.Bavail
		out.Files, out.Ffree = s.Files, s.Ffree
		out.Bsize, out.Frsize = uint32(s.Bsize), uint32(s.Bsize)
		out.NameLen = uint32(s.Namelen)
	}
	return 0
}

// xattrPath is the path an xattr request works on. The xattr ops follow
// symlinks, so a request on a symlink itself cannot be expressed.
func (n *node) xattrPath() (string, syscall.Errno) {
	if n.isSymlink() {
		return "", syscall.EOPNOTSUPP
	}
	return n.path()
}

var _ fs.NodeGetxattrer = (*node)(nil)

// Getxattr passes the kernel's buffer size on as the op's Length: 0 is the
// size query, answered with the size; a short buffer is the bridge's
// ERANGE.
// A name found missing is remembered for the attribute timeout (xattrs.go).
func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	p, errno := n.xattrPath()
	if errno != 0 {
		return 0, errno
	}
	return n.getxattrCached(attr, func() (uint32, syscall.Errno) {
		res, errno := n.fsys.run(ctx, &fsop.Op{Kind: fsop.Getxattr, Path: p, Name: attr, Length: int64(len(dest))})
		if errno != 0 {
			return 0, errno
		}
		if len(dest) == 0 {
			return uint32(max(res.Size, int64(len(res.Value)))), 0
		}
		if len(res.Value) > len(dest) {
			return uint32(len(res.Value)), syscall.ERANGE
		}
		return uint32(copy(dest, res.Value)), 0
	})
}

var _ fs.NodeListxattrer = (*node)(nil)

// Listxattr writes the names NUL-terminated, with Getxattr's size rules.
func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	p, errno := n.xattrPath()
	if errno != 0 {
		return 0, errno
	}
	res, errno := n.fsys.run(ctx, &fsop.Op{Kind: fsop.Listxattr, Path: p, Length: int64(len(dest))})
	if errno != 0 {
		return 0, errno
	}
	var buf []byte
	for _, name := range res.Names {
		buf = append(buf, name...)
		buf = append(buf, 0)
	}
	if len(dest) == 0 {
		return uint32(max(res.Size, int64(len(buf)))), 0
	}
	if len(buf) > len(dest) {
		return uint32(len(buf)), syscall.ERANGE
	}
	return uint32(copy(dest, buf)), 0
}

var _ fs.NodeSetxattrer = (*node)(nil)

// Setxattr passes XATTR_CREATE and XATTR_REPLACE on. The value is copied:
// go-fuse reuses its buffer, and the proxy may keep the op.
func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	p, errno := n.xattrPath()
	if errno != 0 {
		return errno
	}
	value := append([]byte{}, data...)
	defer n.forgetXattrs()
	_, errno = n.fsys.run(ctx, &fsop.Op{Kind: fsop.Setxattr, Path: p, Name: attr, Value: value, Flags: int(flags)})
	return errno
}

var _ fs.NodeRemovexattrer = (*node)(nil)

// Removexattr removes one attribute.
func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	p, errno := n.xattrPath()
	if errno != 0 {
		return errno
	}
	defer n.forgetXattrs()
	_, errno = n.fsys.run(ctx, &fsop.Op{Kind: fsop.Removexattr, Path: p, Name: attr})
	return errno
}
