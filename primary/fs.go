// Package primary serves a store.Store through bazil.org/fuse, the library
// the migration starts from. shadow/ serves the same store through go-fuse
// with the same file set and the same behaviour, so any difference between
// the two mounts is a difference between the libraries.
//
// # Thin adapter
//
// Every filesystem decision (permissions of new nodes, rename rules, xattr
// limits, what an unlinked open file keeps) lives in store/. This package
// only translates bazil requests into store calls and store results into
// bazil responses; errors go through fuseErr (fusemount.Errno) alone.
//
// # Nodes and inode numbers
//
// One node type serves every kind of inode: a node is just (filesystem,
// store inode number), a comparable value, so bazil's node table maps the
// same inode to the same kernel node ID on every lookup. Attributes report
// the store's inode numbers; the root is store.RootIno.
//
// # Cache settings
//
// Every fusemount.Options field is applied explicitly, never a bazil
// default: Attr.Valid is AttrTimeout in every attribute reply, EntryValid is
// EntryTimeout in Lookup and Create replies, and KeepCache and DirectIO
// become OpenKeepCache and OpenDirectIO on file opens and creates.
//
// # What bazil cannot express
//
//   - NegativeTimeout: bazil answers a missing name with ENOENT, which the
//     kernel never caches, so negative lookups are never cached.
//   - EntryValid after mkdir, mknod, symlink and link: NodeMkdirer,
//     NodeMknoder, NodeSymlinker and NodeLinker get no response to set it
//     on, so those replies carry bazil's fixed one minute.
//   - renameat2 flags: RenameRequest has no flags and bazil does not know
//     FUSE_RENAME2. It answers ENOSYS, and the kernel turns that into EINVAL
//     for RENAME_NOREPLACE and RENAME_EXCHANGE (only NOREPLACE onto an
//     existing name still gets EEXIST: the VFS checks that before asking
//     FUSE). We do not emulate the flags.
//   - The sticky bit: bazil's Attr encoding drops os.ModeSticky, so stat
//     never shows S_ISVTX although chmod stores it.
//   - Times before 1970 with a fraction of a second: bazil's Attr encoding
//     (unixTime) divides the nanoseconds toward zero and wraps the
//     remainder into an unsigned field, so 1 s before 1970 plus 500 ns
//     stats as 0.999999999 s after (the store keeps the time it was given).
//   - Max write: fixed at 128 KiB by bazil (big writes negotiated); there is
//     no option to change it.
//
// # Never touch the mount from here
//
// The process that serves a mount must not make syscalls on it (the Go
// runtime can deadlock, e.g. a fork waiting on a page fault the server is
// meant to answer). Tests drive the mount from another process through
// internal/mounttest.
package primary

import (
	"context"
	"os"
	"syscall"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/store"
)

// filesystem is the bazil FS: the store and the cache settings every reply
// applies.
type filesystem struct {
	st   *store.Store
	opts fusemount.Options
}

var _ fs.FS = (*filesystem)(nil)

// Root returns the node of store.RootIno.
func (f *filesystem) Root() (fs.Node, error) {
	return node{fs: f, ino: store.RootIno}, nil
}

var _ fs.FSStatfser = (*filesystem)(nil)

// Statfs reports the store's capacity.
func (f *filesystem) Statfs(ctx context.Context, req *fuse.StatfsRequest, resp *fuse.StatfsResponse) error {
	s := f.st.Statfs()
	resp.Blocks = s.Blocks
	resp.Bfree = s.Bfree
	resp.Bavail = s.Bavail
	resp.Files = s.Files
	resp.Ffree = s.Ffree
	resp.Bsize = s.Bsize
	resp.Frsize = s.Bsize // blocks are counted in units of Bsize
	resp.Namelen = s.Namelen
	return nil
}

// openFlags are the response flags of every file open and create.
func (f *filesystem) openFlags() fuse.OpenResponseFlags {
	var fl fuse.OpenResponseFlags
	if f.opts.KeepCache {
		fl |= fuse.OpenKeepCache
	}
	if f.opts.DirectIO {
		fl |= fuse.OpenDirectIO
	}
	return fl
}

// node is any inode: directory, regular file, symlink or special file
// (FIFO, socket, device). It is a value so that equal nodes are equal map
// keys in bazil's node table.
type node struct {
	fs  *filesystem
	ino uint64
}

func (n node) child(ino uint64) node { return node{fs: n.fs, ino: ino} }

// fileTypes pairs each st_mode file type but S_IFREG (no bit) with the
// os.FileMode bits bazil uses for it; a character device's bits include
// a block device's, so it comes first.
var fileTypes = []struct {
	unix uint32
	mode os.FileMode
}{
	{syscall.S_IFDIR, os.ModeDir},
	{syscall.S_IFLNK, os.ModeSymlink},
	{syscall.S_IFIFO, os.ModeNamedPipe},
	{syscall.S_IFSOCK, os.ModeSocket},
	{syscall.S_IFCHR, os.ModeDevice | os.ModeCharDevice},
	{syscall.S_IFBLK, os.ModeDevice},
	{syscall.S_IFMT, os.ModeIrregular}, // a type bazil did not know: the store refuses it
}

// fileMode converts a store st_mode to the os.FileMode bazil encodes.
func fileMode(mode uint32) os.FileMode {
	m := os.FileMode(mode & 0o777)
	for _, ft := range fileTypes {
		if mode&syscall.S_IFMT == ft.unix {
			m |= ft.mode
			break
		}
	}
	if mode&syscall.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if mode&syscall.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if mode&syscall.S_ISVTX != 0 {
		m |= os.ModeSticky // bazil drops it on the wire; set for when it does not
	}
	return m
}

// unixType converts the file type of a request's os.FileMode (as bazil
// decoded it) back to st_mode's S_IFMT bits; a regular file is S_IFREG.
func unixType(m os.FileMode) uint32 {
	for _, ft := range fileTypes {
		if m&ft.mode == ft.mode {
			return ft.unix
		}
	}
	return syscall.S_IFREG
}

// unixPerm converts the permission part of a request's os.FileMode back to
// st_mode bits, special bits included; the file type is dropped.
func unixPerm(m os.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		p |= syscall.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		p |= syscall.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		p |= syscall.S_ISVTX
	}
	return p
}
