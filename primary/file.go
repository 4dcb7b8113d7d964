package primary

import (
	"context"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/lighthouse-fs/lighthouse/store"
)

// The methods here serve every node kind; the kernel only sends Readlink
// to symlinks, and the store refuses what does not fit the kind.

var _ fs.Node = node{}

// Attr fills a from the store. bazil calls it for getattr and after every
// lookup-like reply and setattr, having preset Valid to one minute: it is
// overridden here with AttrTimeout.
func (n node) Attr(ctx context.Context, a *fuse.Attr) error {
	sa, err := n.fs.st.Getattr(n.ino)
	if err != nil {
		return fuseErr(err)
	}
	*a = fuse.Attr{
		Valid:  n.fs.opts.AttrTimeout,
		Inode:  sa.Ino,
		Size:   uint64(sa.Size),
		Blocks: uint64(sa.Blocks),
		Atime:  time.Unix(0, sa.Atime),
		Mtime:  time.Unix(0, sa.Mtime),
		Ctime:  time.Unix(0, sa.Ctime),
		Mode:   fileMode(sa.Mode),
		Nlink:  sa.Nlink,
		Uid:    sa.UID,
		Gid:    sa.GID,
		Rdev:   uint32(sa.Rdev), // FUSE carries a 32-bit device number, as the kernel keeps it
		// BlockSize 0: the kernel reports its own st_blksize (4096).
	}
	return nil
}

var _ fs.NodeSetattrer = node{}

// Setattr applies the fields the kernel marked valid. Truncation arrives
// here too: from truncate(2), from ftruncate(2) on a handle (the same inode,
// so the handle is not needed), and from open(O_TRUNC), which the kernel
// turns into a setattr because bazil does not negotiate atomic O_TRUNC.
// bazil fills resp from Attr afterwards.
func (n node) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	var sa store.SetAttr
	v := req.Valid
	if v.Mode() {
		sa.Valid |= store.SetMode
		sa.Mode = unixPerm(req.Mode)
	}
	if v.Uid() {
		sa.Valid |= store.SetUID
		sa.UID = req.Uid
	}
	if v.Gid() {
		sa.Valid |= store.SetGID
		sa.GID = req.Gid
	}
	if v.Size() {
		sa.Valid |= store.SetSize
		sa.Size = int64(req.Size)
	}
	switch {
	case v.AtimeNow():
		sa.Valid |= store.SetAtimeNow
	case v.Atime():
		sa.Valid |= store.SetAtime
		sa.Atime = req.Atime.UnixNano()
	}
	switch {
	case v.MtimeNow():
		sa.Valid |= store.SetMtimeNow
	case v.Mtime():
		sa.Valid |= store.SetMtime
		sa.Mtime = req.Mtime.UnixNano()
	}
	if sa.Valid == 0 {
		return nil // only handle, lock owner or ctime: nothing to change
	}
	_, err := n.fs.st.Setattr(n.ino, sa)
	return fuseErr(err)
}

var _ fs.NodeOpener = node{}

// Open takes a store handle so that the inode outlives its last name while
// open (for directories too: fstat on a removed open directory works).
func (n node) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	if err := n.fs.st.Acquire(n.ino); err != nil {
		return nil, fuseErr(err)
	}
	if !req.Dir {
		resp.Flags = n.fs.openFlags()
	}
	return &handle{fs: n.fs, ino: n.ino}, nil
}

var _ fs.NodeReadlinker = node{}

// Readlink returns the stored target verbatim.
func (n node) Readlink(ctx context.Context, req *fuse.ReadlinkRequest) (string, error) {
	target, err := n.fs.st.Readlink(n.ino)
	return target, fuseErr(err)
}

var _ fs.NodeGetxattrer = node{}

// Getxattr answers a size-0 query with the value's length (bazil's Respond
// does that) and ERANGE when the caller's buffer is too small.
func (n node) Getxattr(ctx context.Context, req *fuse.GetxattrRequest, resp *fuse.GetxattrResponse) error {
	v, err := n.fs.st.Getxattr(n.ino, req.Name)
	if err != nil {
		return fuseErr(err)
	}
	if req.Size != 0 && uint64(len(v)) > uint64(req.Size) {
		return syscall.ERANGE
	}
	resp.Xattr = v
	return nil
}

var _ fs.NodeListxattrer = node{}

// Listxattr returns the names NUL-terminated, with Getxattr's size rules.
func (n node) Listxattr(ctx context.Context, req *fuse.ListxattrRequest, resp *fuse.ListxattrResponse) error {
	names, err := n.fs.st.Listxattr(n.ino)
	if err != nil {
		return fuseErr(err)
	}
	resp.Append(names...)
	if req.Size != 0 && uint64(len(resp.Xattr)) > uint64(req.Size) {
		return syscall.ERANGE
	}
	return nil
}

var _ fs.NodeSetxattrer = node{}

// Setxattr passes XATTR_CREATE and XATTR_REPLACE through: the store uses
// Linux's values.
func (n node) Setxattr(ctx context.Context, req *fuse.SetxattrRequest) error {
	return fuseErr(n.fs.st.Setxattr(n.ino, req.Name, req.Xattr, req.Flags))
}

var _ fs.NodeRemovexattrer = node{}

// Removexattr removes one xattr; ENODATA if it is not set.
func (n node) Removexattr(ctx context.Context, req *fuse.RemovexattrRequest) error {
	return fuseErr(n.fs.st.Removexattr(n.ino, req.Name))
}
