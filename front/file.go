package front

import (
	"context"
	"log"
	"slices"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// openDone are the open flags the kernel has acted on before OPEN: it has
// created the file or found it (O_CREAT, O_EXCL) and dealt with the
// controlling terminal (O_NOCTTY). It strips them itself; clearing them
// again keeps an op from re-creating a file that vanished meanwhile.
const openDone = syscall.O_CREAT | syscall.O_EXCL | syscall.O_NOCTTY

var _ fs.NodeOpener = (*node)(nil)

// Open opens a regular file (directories go through OpendirHandle) under a
// new handle id. go-fuse does not negotiate atomic O_TRUNC, so the kernel
// strips O_TRUNC and truncates with a SETATTR after OPEN; should a kernel
// send O_TRUNC anyway it has not truncated, and the flag is passed on.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	p, errno := n.path()
	if errno != 0 {
		return nil, 0, errno
	}
	h := &handle{fsys: n.fsys, node: n, id: n.fsys.newHandle()}
	op := &fsop.Op{Kind: fsop.Open, Path: p, Flags: int(flags) &^ openDone, Handle: h.id}
	if _, errno := n.fsys.run(ctx, op); errno != 0 {
		return nil, 0, errno
	}
	return h, n.fsys.openFlags(), 0
}

var _ fs.NodeCreater = (*node)(nil)

// Create creates and opens a regular file: an open with O_CREAT|O_EXCL (the
// kernel sends CREATE only for a name it found absent), the kernel's flags
// and the mode, umask applied by the kernel; then an lstat for the entry.
func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	p, errno := n.childPath(name)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	h := &handle{fsys: n.fsys, id: n.fsys.newHandle()}
	op := &fsop.Op{Kind: fsop.Open, Path: p, Flags: int(flags) | syscall.O_CREAT | syscall.O_EXCL,
		Mode: mode & 0o7777, Handle: h.id}
	if _, errno := n.fsys.run(ctx, op); errno != 0 {
		return nil, nil, 0, errno
	}
	child, errno := n.lookupPath(ctx, name, p, out)
	if errno != 0 {
		h.close(ctx)
		return nil, nil, 0, errno
	}
	h.node = asNode(child)
	if h.node != nil {
		h.node.createdWithoutCapability()
	}
	return child, h, n.fsys.openFlags(), 0
}

// handle is an open regular file: an id in the ops, chosen by the front.
type handle struct {
	fsys *filesystem
	node *node // nil only while Create sets it up
	id   uint64

	wmu   sync.Mutex
	batch batch // gathered writes (writes.go)
}

// close sends the gathered writes and closes the handle. An error of the
// writes has nobody to go to any more (close(2) got it from Flush): it is
// logged.
func (h *handle) close(ctx context.Context) syscall.Errno {
	if errno := h.flushWrites(ctx); errno != 0 {
		log.Printf("front: handle %d: writes sent at release failed: %v", h.id, errno)
	}
	_, errno := h.fsys.run(ctx, &fsop.Op{Kind: fsop.Close, Handle: h.id})
	return errno
}

var _ fs.FileReader = (*handle)(nil)

// Read is a pread of len(dest) bytes; a short read means end of file.
func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	res, errno := h.fsys.run(ctx, &fsop.Op{Kind: fsop.Pread, Handle: h.id, Offset: off, Length: int64(len(dest))})
	if errno != 0 {
		return nil, errno
	}
	data := res.Data
	if len(data) > len(dest) {
		data = data[:len(dest)]
	}
	return fuse.ReadResultData(data), 0
}

var _ fs.FileWriter = (*handle)(nil)

// Write is a pwrite at the offset the kernel gives, gathered with the
// writes that follow it on the handle into one op (writes.go). The data is
// copied: go-fuse reuses its buffer, and the proxy may keep the op. The
// remembered size grows with it (see "Open files").
func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	return h.write(ctx, data, off)
}

var _ fs.FileFlusher = (*handle)(nil)

// Flush (at every close of a descriptor) sends the gathered writes, and
// returns the error of any that failed: close(2) reports it.
func (h *handle) Flush(ctx context.Context) syscall.Errno { return h.flushWrites(ctx) }

var _ fs.FileFsyncer = (*handle)(nil)

// Fsync (and fdatasync) sends the gathered writes, then is an fsync of
// the handle.
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if errno := h.flushWrites(ctx); errno != 0 {
		return errno
	}
	_, errno := h.fsys.run(ctx, &fsop.Op{Kind: fsop.Fsync, Handle: h.id})
	return errno
}

var _ fs.FileReleaser = (*handle)(nil)

// Release closes the handle, once the last descriptor sharing it is gone.
func (h *handle) Release(ctx context.Context) syscall.Errno { return h.close(ctx) }

var _ fs.NodeOpendirHandler = (*node)(nil)

// OpendirHandle opens a directory for reading. The listing is read at the
// first READDIR, not here, as a kernel filesystem does. No FOPEN_CACHE_DIR:
// every getdents from the start reaches the proxy.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return &dirHandle{node: n}, 0, 0
}

// dirHandle is an open directory: one readdir op's entries and a position
// in them. go-fuse serializes calls on one handle.
type dirHandle struct {
	node    *node
	entries []fsop.Dirent
	cookies []uint64 // each entry's d_off as the kernel gets it (cookies)
	loaded  bool
	pos     int // index of the next entry
}

func (d *dirHandle) load(ctx context.Context) syscall.Errno {
	p, errno := d.node.path()
	if errno != 0 {
		return errno
	}
	res, errno := d.node.fsys.run(ctx, &fsop.Op{Kind: fsop.Readdir, Path: p})
	if errno != 0 {
		return errno
	}
	d.entries, d.cookies, d.loaded = res.Entries, cookies(res.Entries), true
	return 0
}

// cookies are the d_off values the front gives a listing's entries: the
// serving bridge's own, as getdents reported them on its mount (the
// primary's: bazil.org/fuse's byte offsets), so a program sees the d_off
// the primary's mount gives. If any entry has none (0: a bridge from
// before fsop.Dirent.Off), every entry gets its index+1, go-fuse's own
// cookie: one listing never mixes the two.
func cookies(ents []fsop.Dirent) []uint64 {
	out := make([]uint64, len(ents))
	for i, e := range ents {
		if e.Off == 0 {
			for j := range out {
				out[j] = uint64(j + 1)
			}
			return out
		}
		out[i] = e.Off
	}
	return out
}

// after is the index of the entry that follows cookie off: the one after
// the entry whose cookie it is, else (a value lseek made up) the first
// entry whose cookie is larger, as both libraries' cookies increase; the
// end of the listing if none is.
func (d *dirHandle) after(off uint64) int {
	if i := slices.Index(d.cookies, off); i >= 0 {
		return i + 1
	}
	if i := slices.IndexFunc(d.cookies, func(c uint64) bool { return c > off }); i >= 0 {
		return i
	}
	return len(d.cookies)
}

var _ fs.FileReaddirenter = (*dirHandle)(nil)

// Readdirent returns the next entry, or nil at the end, with its cookie as
// d_off. The inode number is the node's own for ".", its parent's for "..",
// and a child's if go-fuse knows the name; 0 otherwise (go-fuse sends
// FUSE_UNKNOWN_INO).
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if !d.loaded {
		if errno := d.load(ctx); errno != 0 {
			return nil, errno
		}
	}
	if d.pos >= len(d.entries) {
		return nil, 0
	}
	e, off := d.entries[d.pos], d.cookies[d.pos]
	d.pos++
	mode := direntMode(e.Type)
	return &fuse.DirEntry{Name: e.Name, Ino: d.inoOf(e.Name, mode), Mode: mode, Off: off}, 0
}

// inoOf is the inode number go-fuse has for name in the directory, or 0.
func (d *dirHandle) inoOf(name string, mode uint32) uint64 {
	in := d.node.EmbeddedInode()
	switch name {
	case ".":
		return in.StableAttr().Ino
	case "..":
		if isTop(in) {
			return in.StableAttr().Ino
		}
		if _, parent := in.Parent(); parent != nil {
			return parent.StableAttr().Ino
		}
		return 0
	}
	if c := in.GetChild(name); c != nil && c.StableAttr().Mode == mode {
		return c.StableAttr().Ino
	}
	return 0
}

var _ fs.FileSeekdirer = (*dirHandle)(nil)

// Seekdir moves to the entry after the one whose cookie off is (go-fuse
// calls it when a READDIR's offset is not where the last one ended:
// seekdir(3), or lseek on the directory). Offset 0 (rewinddir) reads the
// directory again, so a rewound listing shows current names; another
// offset resumes in the listing already read, as on the primary's mount
// (bazil.org/fuse serves a handle's listing from its first READDIR).
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if off == 0 {
		d.loaded, d.entries, d.cookies, d.pos = false, nil, nil, 0
		return 0
	}
	if !d.loaded {
		if errno := d.load(ctx); errno != 0 {
			return errno
		}
	}
	d.pos = d.after(off)
	return 0
}

var _ fs.FileFsyncdirer = (*dirHandle)(nil)

// Fsyncdir is a path fsync of the directory (go-fuse would otherwise fail
// fsync on a directory with EOPNOTSUPP).
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return d.node.pathOp(ctx, &fsop.Op{Kind: fsop.Fsync})
}

// direntMode is the file type bits of a Dirent type name; 0 (DT_UNKNOWN)
// for "unknown" or a name this package does not know.
func direntMode(typ string) uint32 {
	switch typ {
	case "file":
		return syscall.S_IFREG
	case "dir":
		return syscall.S_IFDIR
	case "symlink":
		return syscall.S_IFLNK
	case "fifo":
		return syscall.S_IFIFO
	case "socket":
		return syscall.S_IFSOCK
	case "char":
		return syscall.S_IFCHR
	case "block":
		return syscall.S_IFBLK
	}
	return 0
}
