// Package shadow serves a store.Store as a FUSE filesystem through
// github.com/hanwen/go-fuse/v2, the library Lighthouse is migrating to. It
// has the same file set and behaviour as package primary (bazil.org/fuse),
// so one conformance suite runs on both.
//
// # Thin adapter
//
// All filesystem meaning lives in store/: every operation here translates
// a go-fuse request into one store call and the store's answer back. There
// is one node type, node, which embeds fs.Inode and implements the fs.Node*
// interfaces; open files are fs.FileHandle values (handle, dirHandle). The
// one error translation is Errno.
//
// # The store is the truth
//
// go-fuse keeps its own tree of Inodes with their children, but the store
// can change behind it (another mount, a Restore), and the kernel may hold
// children go-fuse has forgotten. So Lookup, Getattr and Readdir always ask
// the store and never trust go-fuse's cached children; go-fuse's tree is
// used only for what it must do, mapping kernel node IDs to nodes.
//
// # Inode numbers
//
// Every node's StableAttr.Ino is the store's inode number (the root is
// store.RootIno) and every attribute reply carries it, so stat and getdents
// report the store's numbering. go-fuse deduplicates Inodes by StableAttr,
// which gives a hard link's names one kernel inode.
//
// # Kernel caching
//
// go-fuse's defaults (1 s entry and attribute timeouts) are never used:
// Mount sets every fusemount.Options field explicitly, in fs.Options and in
// each reply filled here.
//
// # What go-fuse does differently
//
// Some answers come from go-fuse itself, not from the store:
//   - With fs.Options.NullPermissions false (go-fuse's default), a mode
//     with no permission bits is reported as 0644 (0755 for a directory):
//     Mount sets it true so that chmod 000 shows, as on a kernel filesystem.
//   - The name .go-fuse-epoll-hack in the root is go-fuse's (WaitMount
//     opens it to switch POLL off): it stats as a file with inode 2^64-1,
//     mkdir and symlink on it fail with EEXIST, unlink and write with ERANGE.
//   - Operations without a store counterpart fail with EOPNOTSUPP:
//     O_TMPFILE, fallocate. SEEK_DATA and SEEK_HOLE are
//     emulated from the size (no holes), and STATX falls back to GETATTR.
package shadow

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/store"
)

// blockSize is st_blksize. Setting it also stops go-fuse from replacing
// the store's st_blocks with its own estimate from the size.
const blockSize = 4096

// filesystem is what every node of one mount shares.
type filesystem struct {
	st   *store.Store
	opts fusemount.Options
}

// node is one inode of the store, as go-fuse sees it. Its inode number is
// its StableAttr().Ino.
type node struct {
	fs.Inode
	fsys *filesystem
}

var _ fs.InodeEmbedder = (*node)(nil)

// ino is the node's store inode number.
func (n *node) ino() uint64 { return n.StableAttr().Ino }

// newChild returns the Inode for a store node just looked up or created,
// with out filled in. go-fuse returns the Inode it already has for the
// same StableAttr, so a node known to the kernel keeps its node ID.
func (n *node) newChild(ctx context.Context, a store.Attr, out *fuse.EntryOut) *fs.Inode {
	n.fsys.fillEntry(a, out)
	child := &node{fsys: n.fsys}
	return n.NewInode(ctx, child, fs.StableAttr{Ino: a.Ino, Mode: a.Mode & syscall.S_IFMT})
}

// fillEntry fills a LOOKUP-style reply with a's attributes and the mount's
// timeouts.
func (f *filesystem) fillEntry(a store.Attr, out *fuse.EntryOut) {
	fillAttr(a, &out.Attr)
	out.SetEntryTimeout(f.opts.EntryTimeout)
	out.SetAttrTimeout(f.opts.AttrTimeout)
}

// fillAttrOut fills a GETATTR-style reply.
func (f *filesystem) fillAttrOut(a store.Attr, out *fuse.AttrOut) {
	fillAttr(a, &out.Attr)
	out.SetTimeout(f.opts.AttrTimeout)
}

func fillAttr(a store.Attr, out *fuse.Attr) {
	out.Ino = a.Ino
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Uid, out.Gid = a.UID, a.GID
	out.Size = uint64(a.Size)
	out.Blocks = uint64(a.Blocks)
	out.Blksize = blockSize
	out.Atime, out.Atimensec = splitNs(a.Atime)
	out.Mtime, out.Mtimensec = splitNs(a.Mtime)
	out.Ctime, out.Ctimensec = splitNs(a.Ctime)
	out.Rdev = uint32(a.Rdev) // FUSE carries a 32-bit device number, as the kernel keeps it
}

// splitNs splits nanoseconds since the epoch into FUSE's seconds (an s64
// carried in a u64) and nanoseconds (always 0..1e9-1, also before 1970).
func splitNs(ns int64) (uint64, uint32) {
	sec, nsec := ns/1e9, ns%1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	return uint64(sec), uint32(nsec)
}

// caller returns the uid and gid new nodes get: the calling process's.
func caller(ctx context.Context) (uid, gid uint32) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return 0, 0
}

var _ fs.NodeStatfser = (*node)(nil)

// Statfs reports the store's capacity; the kernel asks any node.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	s := n.fsys.st.Statfs()
	out.Blocks, out.Bfree, out.Bavail = s.Blocks, s.Bfree, s.Bavail
	out.Files, out.Ffree = s.Files, s.Ffree
	out.Bsize, out.Frsize = s.Bsize, s.Bsize
	out.NameLen = s.Namelen
	return 0
}
