// Package front serves the front proxy's FUSE mount (`lighthouse proxy
// --mount DIR`): ordinary programs run in DIR, and every request the kernel
// sends for them becomes one or more fsop ops run through an Exec, usually
// proxy.Proxy.Exec. Real programs thereby generate the shadow traffic the
// proxy mirrors and compares.
//
// # Why go-fuse
//
// The front mount is served by github.com/hanwen/go-fuse/v2, through its
// fs API (one InodeEmbedder node type implementing the fs.Node* and
// fs.File* interfaces), for these reasons:
//
//   - The op vocabulary is path-based, and go-fuse keeps the tree of names
//     the kernel knows: a node's path is computed at request time by walking
//     Inode.Parent to the root, and go-fuse itself updates the tree after a
//     successful RENAME (MvChild, ExchangeChild) and UNLINK/RMDIR (RmChild).
//     bazil.org/fuse hands out nodes with no tree, so the front would have
//     to keep its own name bookkeeping in step with the kernel's.
//   - go-fuse implements FUSE_RENAME2, so renameat2's RENAME_NOREPLACE and
//     RENAME_EXCHANGE reach the op's Flags; bazil answers EINVAL (see
//     conformance/expected-differences.yaml).
//   - It can express everything the harness sets explicitly: a negative
//     entry timeout, attribute and entry timeouts per reply, and
//     NullPermissions (a mode of 000 is shown as 000).
//   - It is the library Lighthouse is migrating to (package shadow), so the
//     front adds no third FUSE library to the project.
//
// The walk uses Inode.Parent rather than Inode.Path because Path replaces
// a deleted node's missing ancestry with a made-up ".go-fuse.N/deleted"
// name; the front must recognise a deleted node instead (see below).
//
// One thing go-fuse does that no node can change: its protocol server
// answers every request for .go-fuse-epoll-hack in the mount's root itself
// (the name it opens once at mount time to switch POLL off). So where it
// can mount(2), the front mounts staged (fusemount.ServeGoFuseStaged): its
// root is the one directory below go-fuse's root, bound onto DIR, and the
// staging mount is detached; the name is then an ordinary one, forwarded
// to the primary (conformance reserved/go-fuse-epoll-hack: the front
// answers as bazil). The walk to the root stops at that directory (isTop).
// Without CAP_SYS_ADMIN the front mounts through fusermount3, unstaged.
//
// # Translation
//
// Each request is translated into ops on the node's current path:
//
//   - LOOKUP and GETATTR: lstat. GETATTR with a file handle (go-fuse passes
//     one whenever the node has an open file) is the same lstat, since the
//     op vocabulary has no fstat; see "Open files" for what happens when the
//     path is gone.
//   - SETATTR: ftruncate on the handle when the kernel gives one (ftruncate),
//     truncate otherwise (truncate(2) and open(O_TRUNC): go-fuse does not
//     negotiate atomic O_TRUNC, so the kernel strips O_TRUNC from OPEN and
//     truncates with a SETATTR without a handle); then chown, chmod and
//     utimens (UTIME_NOW as this process's clock; a time the kernel leaves
//     out is read back by an lstat first, as the op sets both). chown and
//     utimens carry fsop.NoFollow, since a SETATTR is about the node
//     itself: on a symlink they are lchown and utimensat with
//     AT_SYMLINK_NOFOLLOW, answered by the bridge. The
//     mtime-now the kernel adds to a truncate is not sent: the truncate
//     changes mtime itself. The reply's attributes come from an lstat.
//   - MKDIR, RMDIR, UNLINK, RENAME (flags passed through), LINK, SYMLINK,
//     MKNOD (mknod, mkfifo, bind of a Unix socket: the mode with its file
//     type, and the device number; the store keeps the node, and the
//     kernel running the front keeps a FIFO's data and a socket's
//     connections, as for a FIFO on ext4), READLINK, STATFS, SETXATTR,
//     REMOVEXATTR: the op of the same name,
//     followed by an lstat of the new name where the kernel wants an entry.
//     A mkdir with mode 0 is followed by a chmod 0, as the ops read mode 0
//     as "the default" (0755).
//   - GETXATTR and LISTXATTR: the op with Length set to the kernel's buffer
//     size, so the kernel's size-0 query is a size query op and a short
//     buffer gets ERANGE from the bridge.
//   - OPEN: open with a handle id the front allocates (an atomic counter,
//     never 0) and the kernel's flags minus O_CREAT, O_EXCL and O_NOCTTY,
//     which the kernel has already acted on. O_TRUNC is passed on if it
//     arrives: it only would with atomic O_TRUNC, where the kernel has not
//     truncated. CREATE: open with O_CREAT|O_EXCL, the kernel's flags and
//     the mode (the kernel has applied the umask), then an lstat.
//   - READ, WRITE, FSYNC, RELEASE: pread, pwrite, fsync and close on the
//     handle. Consecutive WRITEs on one handle, each where the previous one
//     ended, are gathered into one pwrite of up to 1 MiB (see "Write
//     batching"); FLUSH (every close(2)) sends what was gathered. A
//     directory's FSYNCDIR is a path fsync.
//   - READDIR: one readdir op at the first READDIR of an open directory (and
//     again after a rewind), its entries passed on as the bridge reports
//     them, "." and ".." included, each with the d_off the bridge's mount
//     gave it (the primary's cookies: bazil.org/fuse's byte offsets; index+1
//     for a listing from a bridge that reports none). A READDIR at another
//     offset (seekdir) resumes after the entry with that cookie.
//     READDIRPLUS is switched off, so a listing costs one op and not an
//     lstat per name.
//
// An op that could not run (Exec returned an error) is EIO to the kernel,
// and logged;
// an errno name in Result.Errno is mapped with fsop.ErrnoValue, an unknown
// one to EIO. A path from the root longer than fsop.MaxPathLen (64 KiB, 16
// PATH_MAXes) is ENAMETOOLONG.
//
// # Inode numbers
//
// A node's identity in go-fuse's table (StableAttr) is the serving
// bridge's st_ino and the file type, from the lstat that looked it up, and
// every reply carries the bridge's st_ino: the front shows the primary's
// inode numbers. Two names of one file (a hard link) are one node, so a
// change made through one name shows through the other at once, whatever
// the AttrTimeout. A path whose lstat now reports another inode number
// (or another type) answers GETATTR with ESTALE, so the kernel looks the
// name up again; with an open handle the node keeps answering. The root is
// node 1 in go-fuse's table and shows the bridge's root number. Caveats:
//
//   - During a canary the candidate serves some paths: their numbers are
//     the candidate's. Both bridges' stores apply the same ops in the same
//     order, so they normally number files alike, but a resync renumbers
//     the copy it restores. A directory whose number is its own parent's
//     or an ancestor's then gets a number of its own (newChild: otherwise
//     the kernel refuses the loop with ELOOP); two files with one number
//     and type would still share a node.
//   - An op result without an inode number (an Exec that reports none) gets
//     one of go-fuse's, from 2^31 up.
//   - getdents reports a name's d_ino only if the kernel has looked the name
//     up already; otherwise FUSE_UNKNOWN_INO (0xffffffff): the readdir op
//     carries no inode numbers.
//
// # Open files
//
// The front remembers each node's last attributes. When a node has been
// unlinked or renamed over through the mount (it has no path any more), or
// its path has gone while a handle is open, GETATTR answers from them, with
// the link count lowered by the unlink and the size kept up to date by the
// writes and ftruncates made through the front, so fstat and reads of an
// open, unlinked file keep working (the kernel asks GETATTR before reads).
// Path-based ops (fchmod, re-opening through /proc/self/fd) on such a node
// fail with ENOENT.
//
// # Limits of the op vocabulary
//
//   - The mount is allow_other (unless fusemount.Options.OwnerOnly) with
//     default_permissions, so the kernel checks every user's access at the
//     front. An op on a path carries its request's caller (caller.go) and
//     a bridge's executor running as root makes it as that user; a bridge
//     that is not root makes it as itself, and new nodes are then its own.
//   - The xattr ops follow symlinks and have no no-follow variant yet, so
//     xattr requests on a symlink fail with EOPNOTSUPP rather than reach
//     the link's target.
//   - st_blocks is estimated from the size (the ops carry no block count).
//   - O_TMPFILE, fallocate, copy_file_range and locks
//     are not translated (EOPNOTSUPP, or the kernel's local fallback).
//
// # Write batching
//
// A WRITE is answered at once and its data gathered with the WRITEs that
// follow it on the handle at the next offset, up to 1 MiB: a program
// writing in 10 KiB blocks costs one pwrite op per MiB instead of one per
// block (each a round trip through the proxy and both bridges, and an
// fsync on each with --sync always). Every other op the front runs first
// sends what is gathered (getxattr and listxattr excepted: they cannot see
// file data, and the kernel asks getxattr("security.capability") before
// every write), so the bridges get every op after the writes made before
// it, as unbatched; a batch is also sent once no write has joined it for
// 100 ms, or when its first write is a second old. A gathered write that
// the bridge refuses is reported by the handle's next WRITE, FSYNC or
// FLUSH: close(2) or fsync(2) returns it, as with a kernel filesystem's
// write-back errors.
//
// # Kernel traffic
//
// The ops are what the kernel asks, not what the program called: an lstat
// before most path operations (nothing is cached by default), a getxattr of
// security.capability before every write(2) and chown (once per attribute
// timeout with the cache on), two getxattr ops (size, then value)
// per getxattr(2), an open, an lstat and a close for a creat(2). A SETATTR
// (chmod, chown, utimes, truncate) is its ops alone: its answer is the
// remembered attributes with the changes made, never cached by the kernel
// (their times are the front's clock), so a stat after it is an lstat.
//
// # Kernel caches
//
// By default the kernel keeps nothing (every timeout 0, no keep-cache):
// each lookup and getattr is an op, mirrored and compared. With cache
// timeouts or keep-cache (`lighthouse proxy --front-cache`), the kernel
// answers repeated lookups, getattrs, missing names and reads of pages it
// holds by itself, and the front answers a getxattr of a name it found
// missing within the attribute timeout (xattrs.go: the kernel cannot keep
// that answer, and asks before every write): programs run faster and those
// answers are neither sent to the bridges nor compared. The kernel keeps
// its caches in step with changes made through the mount; a change made by
// anything else (a client of the proxy's API) is dropped from them by
// Mounted.Forget before the API answers: the changed names (present or
// missing), the nodes' and their directories' attributes and pages, the
// nodes' missing extended attributes. A change the API makes through a
// symbolic link (chmod, setxattr and the like follow it) is dropped for the
// link's path, not its target's: the target's cached attributes may lag for
// up to the timeout.
package front
