package front

import (
	"context"
	"fmt"
	"log"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/caps"
)

// Exec runs one op through the proxy (or anything else). Errors: the op
// could not be run (-> EIO to the kernel). Filesystem errors are in
// Result.Errno. The op is validated; Exec may keep it (and its Data and
// Value) after returning.
type Exec func(ctx context.Context, op *fsop.Op) (fsop.Result, error)

const (
	// maxWrite is the largest READ and WRITE request, 1 MiB, as in shadow.
	maxWrite = 1 << 20
	// rootIno is the root's inode number in go-fuse's table.
	rootIno = 1
	// firstAutomaticIno is the first number go-fuse gives a node whose
	// attributes carry no inode number (an Exec that reports none).
	firstAutomaticIno = 1 << 31
	// blockSize is st_blksize.
	blockSize = 4096
)

// Mount serves a FUSE mount on dir whose every request becomes ops through
// exec, until unmount is called or the kernel ends the connection. done
// receives the serve loop's result (nil after a clean unmount) and is then
// closed; unmount is idempotent. Every timeout in opts is applied
// explicitly (zero: nothing cached, every request reaches exec).
//
// With CAP_SYS_ADMIN it mounts with mount(2) itself, staged
// (fusemount.ServeGoFuseStaged: the front's root is a bind of a directory
// below go-fuse's root, so that every name reaches exec); otherwise go-fuse
// falls back to fusermount3 and answers .go-fuse-epoll-hack in the root
// itself. Mount returns once the mount is usable. The process that
// serves the mount must never make syscalls on it.
func Mount(dir string, exec Exec, opts fusemount.Options) (*Mounted, error) {
	if exec == nil {
		return nil, fmt.Errorf("mount %s: nil Exec", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	if err := fusemount.CleanStale(abs); err != nil {
		return nil, fmt.Errorf("mount %s: %w", abs, err)
	}
	entry, attr, negative := opts.EntryTimeout, opts.AttrTimeout, opts.NegativeTimeout
	fsOpts := &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName: opts.Name(),
			Name:   "lighthouse-front", // /proc/mounts shows fuse.lighthouse-front
			// The kernel checks mode bits itself; ACCESS is never sent.
			Options:     []string{"default_permissions"},
			DirectMount: true,
			MaxWrite:    maxWrite,
			Debug:       opts.Debug,
			AllowOther:  opts.AllowOther(),
			// One readdir op per listing, not an lstat op per name.
			DisableReadDirPlus: true,
		},
		EntryTimeout:    &entry,
		AttrTimeout:     &attr,
		NegativeTimeout: &negative,
		RootStableAttr:  &fs.StableAttr{Ino: rootIno, Mode: syscall.S_IFDIR},
		// Nodes are numbered with the bridges' inode numbers; one whose
		// attributes carry none gets a number from here, above the
		// store's (go-fuse's default starts at 2^63, which 32-bit
		// stat(2) cannot report).
		FirstAutomaticIno: firstAutomaticIno,
		// A mode without permission bits is shown as it is, not as
		// 0644/0755 (go-fuse's default).
		NullPermissions: true,
	}
	fsys := &filesystem{exec: exec, opts: opts}
	m := &Mounted{root: &node{fsys: fsys, top: true}, caches: opts.Caches()}
	if caps.Has(caps.SysAdmin) {
		// Staged, so that .go-fuse-epoll-hack in the root reaches the
		// primary like any other name (conformance reserved/go-fuse-epoll-hack).
		m.Unmount, m.Done, err = fusemount.ServeGoFuseStaged(abs, m.root, *fsOpts.RootStableAttr, fsOpts)
		if err == nil {
			return m, nil
		}
		log.Printf("front: %v; mounting directly instead (go-fuse then answers .go-fuse-epoll-hack in the root itself)", err)
		if err := fusemount.CleanStale(abs); err != nil {
			return nil, fmt.Errorf("mount %s: %w", abs, err)
		}
		m.root = &node{fsys: fsys, top: true}
	}
	if m.Unmount, m.Done, err = fusemount.ServeGoFuse(abs, m.root, fsOpts); err != nil {
		return nil, err
	}
	return m, nil
}

// Mounted is a front mount being served.
type Mounted struct {
	// Unmount unmounts it; idempotent.
	Unmount func() error
	// Done receives the serve loop's result (nil after a clean unmount)
	// and is then closed.
	Done <-chan error

	root   *node
	caches bool // the kernel may keep names, attributes or pages
}

// Forget drops what the kernel may keep of paths (slash-separated, from the
// mount's root): their names, attributes and pages, and their parent
// directories' attributes; and the extended attributes the front remembers
// as missing (xattrs.go). Call it after each change made to the store by
// anything but this mount (a client of the proxy's API), so that programs
// in the mount see it at once whatever the cache timeouts; the kernel keeps
// its caches in step with changes made through the mount itself. Never call
// it while serving one of the mount's requests: the kernel takes the
// directory's lock, which the request may hold. Without timeouts or
// keep-cache nothing is kept, and Forget does nothing.
func (m *Mounted) Forget(paths []string) {
	if !m.caches {
		return
	}
	for _, p := range paths {
		dir, name := &m.root.Inode, ""
		if p != "." && p != "" {
			parts := strings.Split(p, "/")
			for _, c := range parts[:len(parts)-1] {
				if dir = dir.GetChild(c); dir == nil {
					break // the kernel knows nothing below it
				}
			}
			name = parts[len(parts)-1]
		}
		if dir == nil {
			continue
		}
		// Errors are ENOENT: the kernel had forgotten it already.
		if name != "" {
			dir.NotifyEntry(name) // the name, present or missing
			if child := dir.GetChild(name); child != nil {
				child.NotifyContent(0, 0) // its attributes and pages
				if nd := asNode(child); nd != nil {
					nd.forgetXattrs()
				}
			}
		} else if nd := asNode(dir); nd != nil {
			nd.forgetXattrs() // the root's own
		}
		dir.NotifyContent(0, 0)
	}
}

// filesystem is what every node of one mount shares.
type filesystem struct {
	exec    Exec
	opts    fusemount.Options
	handles atomic.Uint64 // the last handle id given out
	pending pendingWrites // handles with gathered writes (writes.go)
}

// newHandle returns a fresh handle id, never 0.
func (f *filesystem) newHandle() uint64 {
	for {
		if id := f.handles.Add(1); id != 0 {
			return id
		}
	}
}

// run sends the gathered writes (writes.go), then runs op with runNow. A
// getxattr or listxattr does not wait for them: it cannot see file data,
// and the kernel asks getxattr("security.capability") before every write.
func (f *filesystem) run(ctx context.Context, op *fsop.Op) (fsop.Result, syscall.Errno) {
	if op.Kind != fsop.Getxattr && op.Kind != fsop.Listxattr {
		f.pending.flushAll(ctx, nil)
	}
	return f.runNow(ctx, op)
}

// runNow validates op, runs it through exec and maps the outcome to an
// errno. An op on a path is made for the request's caller (caller.go);
// ops on a handle were checked when it was opened.
func (f *filesystem) runNow(ctx context.Context, op *fsop.Op) (fsop.Result, syscall.Errno) {
	if op.Path != "" && op.Caller == nil {
		op.Caller = caller(ctx)
	}
	if err := op.Validate(); err != nil {
		log.Printf("front: %s %q: invalid op: %v", op.Kind, op.Path, err)
		return fsop.Result{}, syscall.EIO
	}
	res, err := f.exec(ctx, op)
	if err != nil {
		log.Printf("front: %s %q: %v", op.Kind, op.Path, err)
		return fsop.Result{}, syscall.EIO
	}
	return res, resultErrno(res)
}

// resultErrno maps a result's errno name to its number: 0 on success, EIO
// for a name this platform does not know.
func resultErrno(res fsop.Result) syscall.Errno {
	if res.Errno == "" {
		return 0
	}
	if e := fsop.ErrnoValue(res.Errno); e != 0 {
		return e
	}
	return syscall.EIO
}

// lstat returns the attributes of p; a successful result without them is
// an I/O error.
func (f *filesystem) lstat(ctx context.Context, p string) (fsop.Attr, syscall.Errno) {
	res, errno := f.run(ctx, &fsop.Op{Kind: fsop.Lstat, Path: p})
	if errno != 0 {
		return fsop.Attr{}, errno
	}
	if res.Stat == nil {
		log.Printf("front: lstat %q: result without attributes", p)
		return fsop.Attr{}, syscall.EIO
	}
	return *res.Stat, 0
}

// openFlags are the FOPEN_* flags of every OPEN and CREATE reply.
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

// fillEntry fills a LOOKUP-style reply with a and the mount's timeouts.
func (f *filesystem) fillEntry(a fsop.Attr, ino uint64, out *fuse.EntryOut) {
	fillAttr(a, ino, &out.Attr)
	out.SetEntryTimeout(f.opts.EntryTimeout)
	out.SetAttrTimeout(f.opts.AttrTimeout)
}

// fillAttrOut fills a GETATTR-style reply.
func (f *filesystem) fillAttrOut(a fsop.Attr, ino uint64, out *fuse.AttrOut) {
	fillAttr(a, ino, &out.Attr)
	out.SetTimeout(f.opts.AttrTimeout)
}

// fillAttr converts op attributes. The inode number is the bridge's (a.Ino)
// when it reports one, else the node's (go-fuse's); st_blocks is estimated
// from the size, as go-fuse does when a filesystem reports none.
func fillAttr(a fsop.Attr, ino uint64, out *fuse.Attr) {
	out.Ino = ino
	if a.Ino != 0 {
		out.Ino = a.Ino
	}
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Uid, out.Gid = a.UID, a.GID
	out.Size = uint64(max(a.Size, 0))
	out.Blksize = blockSize
	out.Blocks = (out.Size + blockSize - 1) / blockSize * (blockSize / 512)
	out.Atime, out.Atimensec = splitNs(a.AtimeNs)
	out.Mtime, out.Mtimensec = splitNs(a.MtimeNs)
	out.Ctime, out.Ctimensec = splitNs(a.CtimeNs)
	out.Rdev = uint32(a.Rdev) // a device's number: FUSE carries 32 bits, as the kernel keeps it
}

// splitNs splits nanoseconds since the epoch into FUSE's seconds and
// nanoseconds (always 0..1e9-1, also before 1970).
func splitNs(ns int64) (uint64, uint32) {
	sec, nsec := ns/1e9, ns%1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	return uint64(sec), uint32(nsec)
}

// joinNs is splitNs's inverse.
func joinNs(sec uint64, nsec uint32) int64 {
	return int64(sec)*1e9 + int64(nsec)
}

// errOrphan is the answer for a path-based request on a node that has no
// path any more (unlinked, or renamed over, through the mount).
const errOrphan = syscall.ENOENT

// isTop reports whether in is the front's root: go-fuse's root, or the
// directory below it that is bound onto the mount point
// (fusemount.ServeGoFuseStaged).
func isTop(in *fs.Inode) bool {
	n, ok := in.Operations().(*node)
	return in.IsRoot() || ok && n.top
}

// pathOf returns in's path relative to the front's root ("." for the root),
// from go-fuse's tree. ok is false if in is no longer in the tree.
func pathOf(in *fs.Inode) (p string, ok bool) {
	var names []string
	for !isTop(in) {
		name, parent := in.Parent()
		if parent == nil {
			return "", false
		}
		names = append(names, name)
		in = parent
	}
	if len(names) == 0 {
		return ".", true
	}
	var b strings.Builder
	for i := len(names) - 1; i >= 0; i-- {
		b.WriteString(names[i])
		if i > 0 {
			b.WriteByte('/')
		}
	}
	return b.String(), true
}

// checkLen refuses a path longer than an op can carry. The kernel never
// sends one longer than a name, so depth alone decides: a program walking
// down with *at calls reaches fsop.MaxPathLen bytes below the root, 16
// PATH_MAXes (the primary's own mount, which names nodes by id, has no
// such limit; docs/compatibility.md, paths/deep-relative).
func checkLen(p string) syscall.Errno {
	if len(p) > fsop.MaxPathLen {
		return syscall.ENAMETOOLONG
	}
	return 0
}
