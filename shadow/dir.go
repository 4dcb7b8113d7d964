package shadow

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/lighthouse-fs/lighthouse/store"
)

var _ fs.NodeLookuper = (*node)(nil)

// Lookup asks the store every time, never go-fuse's cached children. A
// missing name is returned as ENOENT without a timeout: go-fuse turns that
// into the negative entry fs.Options.NegativeTimeout asks for, and would
// not if out carried a timeout already.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	a, err := n.fsys.st.Lookup(n.ino(), name)
	if err != nil {
		return nil, Errno(err)
	}
	return n.newChild(ctx, a, out), 0
}

var _ fs.NodeMkdirer = (*node)(nil)

// Mkdir creates a directory owned by the caller. The kernel has applied
// the umask to mode already.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	uid, gid := caller(ctx)
	a, err := n.fsys.st.Mkdir(n.ino(), name, mode&0o7777, uid, gid)
	if err != nil {
		return nil, Errno(err)
	}
	return n.newChild(ctx, a, out), 0
}

var _ fs.NodeCreater = (*node)(nil)

// Create creates a regular file owned by the caller and opens it. The
// kernel sends CREATE only for a name it believes absent, so the store's
// EEXIST is right even without O_EXCL.
func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	uid, gid := caller(ctx)
	a, err := n.fsys.st.Create(n.ino(), name, mode&0o7777, uid, gid)
	if err != nil {
		return nil, nil, 0, Errno(err)
	}
	h, errno := n.fsys.open(a.Ino)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return n.newChild(ctx, a, out), h, n.fsys.openFlags(), 0
}

var _ fs.NodeMknoder = (*node)(nil)

// Mknod makes a FIFO, a socket, a device or (S_IFREG) an empty regular
// file owned by the caller. The kernel sends it for mknod(2), mkfifo(3)
// and bind(2) of a Unix socket, and keeps a FIFO's data and a socket's
// connections itself: only the node is the store's.
func (n *node) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	uid, gid := caller(ctx)
	a, err := n.fsys.st.Mknod(n.ino(), name, mode, uint64(dev), uid, gid)
	if err != nil {
		return nil, Errno(err)
	}
	return n.newChild(ctx, a, out), 0
}

var _ fs.NodeSymlinker = (*node)(nil)

// Symlink creates a symbolic link owned by the caller.
func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	uid, gid := caller(ctx)
	a, err := n.fsys.st.Symlink(n.ino(), name, target, uid, gid)
	if err != nil {
		return nil, Errno(err)
	}
	return n.newChild(ctx, a, out), 0
}

var _ fs.NodeLinker = (*node)(nil)

// Link gives target another name. It returns target's own Inode, so both
// names are one kernel inode.
func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t := target.EmbeddedInode()
	a, err := n.fsys.st.Link(t.StableAttr().Ino, n.ino(), name)
	if err != nil {
		return nil, Errno(err)
	}
	n.fsys.fillEntry(a, out)
	return t, 0
}

var _ fs.NodeUnlinker = (*node)(nil)

// Unlink removes a name; an open file's data stays until its last handle
// is released (see handle).
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return Errno(n.fsys.st.Unlink(n.ino(), name))
}

var _ fs.NodeRmdirer = (*node)(nil)

// Rmdir removes an empty directory.
func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return Errno(n.fsys.st.Rmdir(n.ino(), name))
}

var _ fs.NodeRenamer = (*node)(nil)

// Rename passes renameat2's flags (RENAME_NOREPLACE, RENAME_EXCHANGE) to
// the store, which implements them; nothing is emulated here.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np := newParent.EmbeddedInode().StableAttr().Ino
	return Errno(n.fsys.st.Rename(n.ino(), name, np, newName, flags))
}

var _ fs.NodeOpendirHandler = (*node)(nil)

// OpendirHandle opens a directory for reading. The listing is read from
// the store at the first READDIR, not here, as a kernel filesystem does.
// No FOPEN_CACHE_DIR: every getdents reaches the store.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return &dirHandle{st: n.fsys.st, ino: n.ino()}, 0, 0
}

// dirHandle is an open directory: a listing from store.Readdir, "." and
// ".." included (go-fuse adds neither), and a position in it. go-fuse
// serializes calls on one handle.
type dirHandle struct {
	st      *store.Store
	ino     uint64
	entries []store.Entry
	loaded  bool
	pos     int // index of the next entry; an entry's offset is its index+1
}

func (d *dirHandle) load() syscall.Errno {
	ents, err := d.st.Readdir(d.ino)
	if err != nil {
		return Errno(err)
	}
	d.entries, d.loaded = ents, true
	return 0
}

var _ fs.FileReaddirenter = (*dirHandle)(nil)

// Readdirent returns the next entry, or nil at the end. For READDIRPLUS
// go-fuse resolves each name through node.Lookup, so attributes come from
// the store too.
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if !d.loaded {
		if errno := d.load(); errno != 0 {
			return nil, errno
		}
	}
	if d.pos >= len(d.entries) {
		return nil, 0
	}
	e := d.entries[d.pos]
	d.pos++
	return &fuse.DirEntry{Name: e.Name, Ino: e.Ino, Mode: e.Mode, Off: uint64(d.pos)}, 0
}

var _ fs.FileSeekdirer = (*dirHandle)(nil)

// Seekdir moves to an offset from an earlier entry. Offset 0 (rewinddir)
// reads the directory again, so a rewound listing shows current names as
// on a kernel filesystem.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if off == 0 {
		d.loaded, d.entries, d.pos = false, nil, 0
		return 0
	}
	if !d.loaded {
		if errno := d.load(); errno != 0 {
			return errno
		}
	}
	d.pos = int(min(off, uint64(len(d.entries))))
	return 0
}

var _ fs.FileFsyncdirer = (*dirHandle)(nil)

// Fsyncdir makes the directory's changes durable; go-fuse would otherwise
// fail fsync on a directory with EOPNOTSUPP.
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return Errno(d.st.Sync())
}
