package shadow

import (
	"context"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/lighthouse-fs/lighthouse/store"
)

var _ fs.NodeGetattrer = (*node)(nil)

// Getattr reads the store. An unlinked file held open is still there (the
// store keeps it until Release), so fstat works on it.
func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, err := n.fsys.st.Getattr(n.ino())
	if err != nil {
		return Errno(err)
	}
	n.fsys.fillAttrOut(a, out)
	return 0
}

var _ fs.NodeSetattrer = (*node)(nil)

// Setattr translates chmod, chown, truncate (ftruncate too: the inode is
// the same whether or not a handle came with it) and utimensat. A
// UTIME_NOW time is the store's clock, not this process's. go-fuse never
// negotiates atomic O_TRUNC, so open(O_TRUNC) also arrives here, as a size
// of 0 after OPEN.
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	var sa store.SetAttr
	if m, ok := in.GetMode(); ok {
		sa.Valid |= store.SetMode
		sa.Mode = m
	}
	if uid, ok := in.GetUID(); ok {
		sa.Valid |= store.SetUID
		sa.UID = uid
	}
	if gid, ok := in.GetGID(); ok {
		sa.Valid |= store.SetGID
		sa.GID = gid
	}
	if size, ok := in.GetSize(); ok {
		sa.Valid |= store.SetSize
		sa.Size = int64(size)
	}
	switch {
	case in.Valid&fuse.FATTR_ATIME_NOW != 0:
		sa.Valid |= store.SetAtimeNow
	case in.Valid&fuse.FATTR_ATIME != 0:
		sa.Valid |= store.SetAtime
		sa.Atime = int64(in.Atime)*1e9 + int64(in.Atimensec)
	}
	switch {
	case in.Valid&fuse.FATTR_MTIME_NOW != 0:
		sa.Valid |= store.SetMtimeNow
	case in.Valid&fuse.FATTR_MTIME != 0:
		sa.Valid |= store.SetMtime
		sa.Mtime = int64(in.Mtime)*1e9 + int64(in.Mtimensec)
	}
	var a store.Attr
	var err error
	if sa.Valid == 0 {
		// Only fields the store does not keep (a lock owner, a handle).
		a, err = n.fsys.st.Getattr(n.ino())
	} else {
		a, err = n.fsys.st.Setattr(n.ino(), sa)
	}
	if err != nil {
		return Errno(err)
	}
	n.fsys.fillAttrOut(a, out)
	return 0
}

var _ fs.NodeOpener = (*node)(nil)

// Open opens a regular file (directories go through OpendirHandle). The
// kernel strips O_TRUNC from OPEN because go-fuse does not negotiate
// FUSE_ATOMIC_O_TRUNC, and truncates with a SETATTR instead; honour the
// flag anyway should a kernel send it.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_TRUNC != 0 {
		if _, err := n.fsys.st.Setattr(n.ino(), store.SetAttr{Valid: store.SetSize}); err != nil {
			return nil, 0, Errno(err)
		}
	}
	h, errno := n.fsys.open(n.ino())
	if errno != 0 {
		return nil, 0, errno
	}
	return h, n.fsys.openFlags(), 0
}

var _ fs.NodeReadlinker = (*node)(nil)

// Readlink returns the target as stored.
func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	t, err := n.fsys.st.Readlink(n.ino())
	if err != nil {
		return nil, Errno(err)
	}
	return []byte(t), 0
}

var _ fs.NodeGetxattrer = (*node)(nil)

// Getxattr copies the value into dest. If dest is too small it returns
// the value's size with ERANGE; for a size-0 query (dest empty) go-fuse
// turns that into the size reply getxattr(2) expects.
func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	v, err := n.fsys.st.Getxattr(n.ino(), attr)
	if err != nil {
		return 0, Errno(err)
	}
	if len(v) > len(dest) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

var _ fs.NodeListxattrer = (*node)(nil)

// Listxattr writes the names NUL-terminated, with the same size rules as
// Getxattr.
func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	names, err := n.fsys.st.Listxattr(n.ino())
	if err != nil {
		return 0, Errno(err)
	}
	var b strings.Builder
	for _, name := range names {
		b.WriteString(name)
		b.WriteByte(0)
	}
	if b.Len() > len(dest) {
		return uint32(b.Len()), syscall.ERANGE
	}
	return uint32(copy(dest, b.String())), 0
}

var _ fs.NodeSetxattrer = (*node)(nil)

// Setxattr passes XATTR_CREATE and XATTR_REPLACE to the store.
func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return Errno(n.fsys.st.Setxattr(n.ino(), attr, data, flags))
}

var _ fs.NodeRemovexattrer = (*node)(nil)

// Removexattr removes one attribute; ENODATA if it is not set.
func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return Errno(n.fsys.st.Removexattr(n.ino(), attr))
}
