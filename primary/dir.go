package primary

import (
	"context"
	"syscall"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// Directory operations. New nodes belong to the caller (req.Uid, req.Gid).
// Modes arrive with the umask already applied: bazil does not negotiate
// FUSE_DONT_MASK, so the kernel masks before sending.

var _ fs.NodeRequestLookuper = node{}

// Lookup finds a name and sets the entry timeout explicitly (bazil presets
// one minute).
func (n node) Lookup(ctx context.Context, req *fuse.LookupRequest, resp *fuse.LookupResponse) (fs.Node, error) {
	a, err := n.fs.st.Lookup(n.ino, req.Name)
	if err != nil {
		return nil, fuseErr(err) // ENOENT: never cached, see the package doc
	}
	resp.EntryValid = n.fs.opts.EntryTimeout
	return n.child(a.Ino), nil
}

var _ fs.NodeMkdirer = node{}

// Mkdir creates a directory. Its reply's entry timeout is bazil's minute:
// NodeMkdirer has no response to set it on.
func (n node) Mkdir(ctx context.Context, req *fuse.MkdirRequest) (fs.Node, error) {
	a, err := n.fs.st.Mkdir(n.ino, req.Name, unixPerm(req.Mode), req.Uid, req.Gid)
	if err != nil {
		return nil, fuseErr(err)
	}
	return n.child(a.Ino), nil
}

var _ fs.NodeCreater = node{}

// Create makes and opens a new regular file in one request. A name that
// exists is EEXIST from the store, O_EXCL or not: the kernel only sends
// create after a lookup found nothing.
func (n node) Create(ctx context.Context, req *fuse.CreateRequest, resp *fuse.CreateResponse) (fs.Node, fs.Handle, error) {
	a, err := n.fs.st.Create(n.ino, req.Name, unixPerm(req.Mode), req.Uid, req.Gid)
	if err != nil {
		return nil, nil, fuseErr(err)
	}
	if err := n.fs.st.Acquire(a.Ino); err != nil {
		return nil, nil, fuseErr(err) // unlinked before we could open it
	}
	resp.EntryValid = n.fs.opts.EntryTimeout
	resp.Flags = n.fs.openFlags()
	return n.child(a.Ino), &handle{fs: n.fs, ino: a.Ino}, nil
}

var _ fs.NodeMknoder = node{}

// Mknod makes a FIFO, a socket, a device or (S_IFREG) an empty regular
// file; entry timeout as for Mkdir. The kernel sends it for mknod(2),
// mkfifo(3) and bind(2) of a Unix socket, and keeps a FIFO's data and a
// socket's connections itself: only the node is the store's.
func (n node) Mknod(ctx context.Context, req *fuse.MknodRequest) (fs.Node, error) {
	a, err := n.fs.st.Mknod(n.ino, req.Name, unixType(req.Mode)|unixPerm(req.Mode), uint64(req.Rdev), req.Uid, req.Gid)
	if err != nil {
		return nil, fuseErr(err)
	}
	return n.child(a.Ino), nil
}

var _ fs.NodeSymlinker = node{}

// Symlink creates a symlink; entry timeout as for Mkdir.
func (n node) Symlink(ctx context.Context, req *fuse.SymlinkRequest) (fs.Node, error) {
	a, err := n.fs.st.Symlink(n.ino, req.NewName, req.Target, req.Uid, req.Gid)
	if err != nil {
		return nil, fuseErr(err)
	}
	return n.child(a.Ino), nil
}

var _ fs.NodeLinker = node{}

// Link gives old a new name in n; entry timeout as for Mkdir.
func (n node) Link(ctx context.Context, req *fuse.LinkRequest, old fs.Node) (fs.Node, error) {
	o, ok := old.(node)
	if !ok {
		return nil, syscall.EIO
	}
	a, err := n.fs.st.Link(o.ino, n.ino, req.NewName)
	if err != nil {
		return nil, fuseErr(err)
	}
	return n.child(a.Ino), nil
}

var _ fs.NodeRemover = node{}

// Remove is unlink, or rmdir when req.Dir.
func (n node) Remove(ctx context.Context, req *fuse.RemoveRequest) error {
	if req.Dir {
		return fuseErr(n.fs.st.Rmdir(n.ino, req.Name))
	}
	return fuseErr(n.fs.st.Unlink(n.ino, req.Name))
}

var _ fs.NodeRenamer = node{}

// Rename is a plain rename(2): bazil's request has no renameat2 flags.
func (n node) Rename(ctx context.Context, req *fuse.RenameRequest, newDir fs.Node) error {
	d, ok := newDir.(node)
	if !ok {
		return syscall.EIO
	}
	return fuseErr(n.fs.st.Rename(n.ino, req.OldName, d.ino, req.NewName, 0))
}

var _ fs.HandleReadDirAller = (*handle)(nil)

// ReadDirAll lists the directory with "." and ".." first, as getdents does
// on a real filesystem. bazil calls it again when a reader seeks to 0.
func (h *handle) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	ents, err := h.fs.st.Readdir(h.ino)
	if err != nil {
		return nil, fuseErr(err)
	}
	out := make([]fuse.Dirent, len(ents))
	for i, e := range ents {
		// DirentType is the S_IFMT value shifted by 12, as DT_* is.
		out[i] = fuse.Dirent{Inode: e.Ino, Type: fuse.DirentType((e.Mode & syscall.S_IFMT) >> 12), Name: e.Name}
	}
	return out, nil
}
