package shadow

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/lighthouse-fs/lighthouse/store"
)

// handle is an open regular file. It holds a store.Acquire on its inode
// from open to release, so the file stays readable and writable through
// the handle after its last name is unlinked.
type handle struct {
	st  *store.Store
	ino uint64
}

// open acquires ino for a new handle.
func (f *filesystem) open(ino uint64) (*handle, syscall.Errno) {
	if err := f.st.Acquire(ino); err != nil {
		return nil, Errno(err)
	}
	return &handle{st: f.st, ino: ino}, 0
}

// openFlags are the FOPEN_* flags for every OPEN and CREATE reply.
func (f *filesystem) openFlags() uint32 {
	var flags uint32
	if f.opts.KeepCache {
		flags |= fuse.FOPEN_KEEP_CACHE
	}
	if f.opts.DirectIO {
		flags |= fuse.FOPEN_DIRECT_IO
	}
	return flags
}

var _ fs.FileReader = (*handle)(nil)

// Read reads at off; a short read means end of file, holes read as zeros.
func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.st.ReadAt(h.ino, dest, off)
	if err != nil {
		return nil, Errno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

var _ fs.FileWriter = (*handle)(nil)

// Write writes at the offset the kernel gives (it has resolved O_APPEND).
// go-fuse reuses data after the call; the store copies what it keeps.
func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := h.st.WriteAt(h.ino, data, off)
	if err != nil {
		return 0, Errno(err)
	}
	return uint32(n), 0
}

var _ fs.FileFlusher = (*handle)(nil)

// Flush (on every close of a descriptor) has nothing to push: the store
// acknowledges a write only once it is durable under its sync policy.
func (h *handle) Flush(ctx context.Context) syscall.Errno { return 0 }

var _ fs.FileReleaser = (*handle)(nil)

// Release ends the handle's hold on the inode; the kernel sends it once,
// after the last descriptor sharing the handle is closed.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.st.Release(h.ino)
	return 0
}

var _ fs.FileFsyncer = (*handle)(nil)

// Fsync makes every acknowledged mutation durable, whatever the policy.
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return Errno(h.st.Sync())
}
