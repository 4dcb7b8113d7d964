package primary

import (
	"context"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// handle is an open file or directory. It holds a store handle (Acquire)
// until the kernel releases it, so an unlinked open file stays readable and
// writable through it.
type handle struct {
	fs  *filesystem
	ino uint64
}

var _ fs.HandleReader = (*handle)(nil)

// Read reads at the kernel's offset; a short read means end of file.
func (h *handle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	buf := resp.Data[:req.Size] // bazil allocates req.Size bytes of capacity
	k, err := h.fs.st.ReadAt(h.ino, buf, req.Offset)
	if err != nil {
		return fuseErr(err)
	}
	resp.Data = buf[:k]
	return nil
}

var _ fs.HandleWriter = (*handle)(nil)

// Write writes at the kernel's offset (it has already resolved O_APPEND).
func (h *handle) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	k, err := h.fs.st.WriteAt(h.ino, req.Data, req.Offset)
	resp.Size = k
	return fuseErr(err)
}

var _ fs.HandleFlusher = (*handle)(nil)

// Flush has nothing to do: a write is in the store when it is acknowledged.
func (h *handle) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	return nil
}

var _ fs.HandleReleaser = (*handle)(nil)

// Release drops the store handle; an unlinked file goes with its last one.
func (h *handle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	h.fs.st.Release(h.ino)
	return nil
}

var _ fs.NodeFsyncer = node{}

// Fsync makes every acknowledged mutation durable. bazil routes fsync and
// fsyncdir to the node, not the handle; the store syncs as a whole anyway.
func (n node) Fsync(ctx context.Context, req *fuse.FsyncRequest) error {
	return fuseErr(n.fs.st.Sync())
}
