// Package fsop is Lighthouse's vocabulary: one filesystem operation (Op), its
// outcome (Result), and the names both sides of the harness agree on.
//
// # Ops
//
// An Op is path-based (mkdir, write_file, stat, ...) or handle-based (open,
// pread, pwrite, ftruncate, close). Paths are relative to the mount root and
// are cleaned by CleanPath before any executor sees them; a path that would
// leave the mount is refused, never executed.
//
// # Results
//
// A filesystem error is part of the Result (Errno "ENOENT"), not a Go error:
// the harness compares errors exactly like data. Errno is "" on success.
package fsop

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Kind names an operation. The string values are the wire names.
type Kind string

// Path-based operations.
const (
	Mkdir       Kind = "mkdir"
	Rmdir       Kind = "rmdir"
	Create      Kind = "create"
	WriteFile   Kind = "write_file"
	Append      Kind = "append"
	Write       Kind = "write"
	ReadFile    Kind = "read_file"
	Read        Kind = "read"
	Truncate    Kind = "truncate"
	Stat        Kind = "stat"
	Lstat       Kind = "lstat"
	Readdir     Kind = "readdir"
	Unlink      Kind = "unlink"
	Rename      Kind = "rename"
	Link        Kind = "link"
	Symlink     Kind = "symlink"
	Readlink    Kind = "readlink"
	Chmod       Kind = "chmod"
	Chown       Kind = "chown"
	Utimens     Kind = "utimens"
	Setxattr    Kind = "setxattr"
	Getxattr    Kind = "getxattr"
	Listxattr   Kind = "listxattr"
	Removexattr Kind = "removexattr"
	Statfs      Kind = "statfs"
	Fsync       Kind = "fsync" // path-based, or handle-based when Handle != 0
	// Mknod makes a special file: Mode holds the file type (S_IFIFO,
	// S_IFSOCK, S_IFCHR, S_IFBLK, S_IFREG) and the permission bits, Rdev
	// the device number of a device node.
	Mknod Kind = "mknod"
)

// Handle-based operations. The caller chooses the handle id on open; each
// executor maps it to its own open file.
const (
	Open      Kind = "open"
	Pread     Kind = "pread"
	Pwrite    Kind = "pwrite"
	Ftruncate Kind = "ftruncate"
	Close     Kind = "close"
)

// Rename flags (renameat2), with Linux's values.
const (
	RenameNoReplace = unix.RENAME_NOREPLACE
	RenameExchange  = unix.RENAME_EXCHANGE
)

// NoFollow in the Flags of a chown or utimens makes it act on a final
// symlink itself (lchown, utimensat with AT_SYMLINK_NOFOLLOW) instead of
// following it. Linux's value.
const NoFollow = unix.AT_SYMLINK_NOFOLLOW

// Xattr flags (setxattr), with Linux's values.
const (
	XattrCreate  = unix.XATTR_CREATE
	XattrReplace = unix.XATTR_REPLACE
)

// Op is one filesystem operation. Only the fields its Kind uses are set;
// Spec (in spec.go) says which.
type Op struct {
	Kind      Kind   `json:"op"`
	Path      string `json:"path,omitempty"`
	To        string `json:"to,omitempty"`     // rename and link destination
	Target    string `json:"target,omitempty"` // symlink target (stored verbatim)
	Mode      uint32 `json:"mode,omitempty"`   // permission bits, e.g. 0o644
	Flags     int    `json:"flags,omitempty"`  // open(2), renameat2(2), setxattr(2) flags; NoFollow for chown and utimens
	Exclusive bool   `json:"exclusive,omitempty"`
	Data      []byte `json:"data,omitempty"` // base64 in JSON
	Offset    int64  `json:"offset,omitempty"`
	Length    int64  `json:"length,omitempty"` // read length; getxattr/listxattr buffer size (0: query, then read)
	Size      int64  `json:"size,omitempty"`   // truncate and ftruncate
	UID       int64  `json:"uid,omitempty"`    // chown; -1 leaves it unchanged
	GID       int64  `json:"gid,omitempty"`
	AtimeNs   int64  `json:"atime_ns,omitempty"`
	MtimeNs   int64  `json:"mtime_ns,omitempty"`
	Name      string `json:"name,omitempty"`  // xattr name
	Value     []byte `json:"value,omitempty"` // xattr value, base64 in JSON
	Handle    uint64 `json:"handle,omitempty"`
	Rdev      uint64 `json:"rdev,omitempty"` // mknod: the device number of a device node
	// Caller, if set, is the user the op is made for: the executor makes
	// its syscalls with these credentials (new nodes are theirs, and the
	// kernel checks their permissions). nil: the executor's own user.
	Caller *Caller `json:"caller,omitempty"`
}

// Caller is the user an op is made for: a FUSE request's uid and gid, and
// the supplementary groups of the process that made it.
type Caller struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

// MaxGroups is the most supplementary groups a Caller carries (Linux's
// NGROUPS_MAX).
const MaxGroups = 65536

// Result is the outcome of one Op. Errno is "" on success; only the fields
// the op produces are set.
type Result struct {
	Errno   string      `json:"errno"`
	Stat    *Attr       `json:"stat,omitempty"`
	Data    []byte      `json:"data,omitempty"`
	N       int64       `json:"n,omitempty"`    // bytes written
	Size    int64       `json:"size,omitempty"` // getxattr/listxattr size query answer
	Entries []Dirent    `json:"entries,omitempty"`
	Target  string      `json:"target,omitempty"` // readlink
	Value   []byte      `json:"value,omitempty"`  // getxattr
	Names   []string    `json:"names,omitempty"`  // listxattr
	Statfs  *StatfsInfo `json:"statfs,omitempty"`
}

// Attr is the portable part of struct stat. Mode includes the file type bits.
type Attr struct {
	Mode    uint32 `json:"mode"`
	Size    int64  `json:"size"`
	Nlink   uint32 `json:"nlink"`
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	AtimeNs int64  `json:"atime_ns"`
	MtimeNs int64  `json:"mtime_ns"`
	CtimeNs int64  `json:"ctime_ns"`
	Ino     uint64 `json:"ino"`
	// Rdev is st_rdev: a character or block device's number (0 for any
	// other file, and from a bridge older than the field).
	Rdev uint64 `json:"rdev,omitempty"`
}

// Dirent is one directory entry as getdents(2) reports it, "." and ".."
// included when the filesystem reports them.
type Dirent struct {
	Name string `json:"name"`
	Type string `json:"type"` // file, dir, symlink, fifo, socket, char, block, unknown
	// Off is the entry's d_off: the filesystem's cookie for the position
	// after the entry, which seekdir(3) takes to resume there. Its value is
	// the filesystem's own (bazil.org/fuse: the byte offset of the next
	// entry, 32, 64, ...; go-fuse: the entry's index+1; ext4: a name hash).
	// 0 means unknown (a bridge from before the field).
	Off uint64 `json:"off,omitempty"`
}

// StatfsInfo is the portable part of struct statfs.
type StatfsInfo struct {
	Bsize   int64  `json:"bsize"`
	Blocks  uint64 `json:"blocks"`
	Bfree   uint64 `json:"bfree"`
	Bavail  uint64 `json:"bavail"`
	Files   uint64 `json:"files"`
	Ffree   uint64 `json:"ffree"`
	Namelen int64  `json:"namelen"`
}

// Failed reports whether r carries a filesystem error.
func (r *Result) Failed() bool { return r.Errno != "" }

// Err returns the result's errno as a syscall.Errno, or nil on success.
func (r *Result) Err() error {
	if r.Errno == "" {
		return nil
	}
	if e := ErrnoValue(r.Errno); e != 0 {
		return e
	}
	return fmt.Errorf("unknown errno %q", r.Errno)
}

var errnoByName = func() map[string]syscall.Errno {
	m := make(map[string]syscall.Errno)
	for e := syscall.Errno(1); e < 200; e++ {
		if name := unix.ErrnoName(e); name != "" {
			if _, dup := m[name]; !dup {
				m[name] = e
			}
		}
	}
	return m
}()

// ErrnoValue maps an errno name ("ENOENT") to its number, or 0 if unknown.
func ErrnoValue(name string) syscall.Errno { return errnoByName[name] }

// ErrnoResult is the Result of an op that failed with err. A nil err gives
// success; an error that is not a syscall.Errno is reported as EIO.
func ErrnoResult(err error) Result {
	return Result{Errno: ErrnoName(err)}
}

// ErrnoName maps err to its errno name ("ENOENT"). nil maps to "", and an
// error with no errno inside maps to "EIO".
func ErrnoName(err error) string {
	if err == nil {
		return ""
	}
	var e syscall.Errno
	if !errors.As(err, &e) {
		return "EIO"
	}
	if e == 0 {
		return ""
	}
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return fmt.Sprintf("E%d", int(e))
}

// DirentType names the file type in mode (a full st_mode, or a d_type
// shifted into S_IFMT position).
func DirentType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "char"
	case unix.S_IFBLK:
		return "block"
	}
	return "unknown"
}

// BridgeInfo is what a bridge's GET /v1/info answers (docs/protocol.md).
type BridgeInfo struct {
	ActiveBackend string `json:"active_backend"` // bazil, gofuse or degraded
	Backend       string `json:"backend"`
	Fallback      string `json:"fallback"`
	Role          string `json:"role"`
	Mount         string `json:"mount"`
	Degraded      bool   `json:"degraded"`
	Inodes        int    `json:"inodes"`
	Generation    uint64 `json:"generation"`
	UptimeSeconds int64  `json:"uptime_seconds"`
	PID           int    `json:"pid"`
	Nice          int    `json:"nice"` // 0 serving; DefaultMirrorNice while only mirroring
	// RecoveryCutBytes is the torn log tail the store cut when the bridge
	// started (no acknowledged record in it).
	RecoveryCutBytes int64 `json:"recovery_cut_bytes"`
	// DataLoss is set while the store reports that a repair of its damaged
	// log moved acknowledged records aside: such a bridge is not ready and
	// must never be a resync's source.
	DataLoss *DataLoss `json:"data_loss,omitempty"`
}

// DataLoss describes a repair of a damaged log (store.DataLoss).
type DataLoss struct {
	Time       time.Time `json:"time"`
	Segment    string    `json:"segment"`    // the damaged log segment
	Offset     int64     `json:"offset"`     // where the damage started in it
	AfterLSN   uint64    `json:"after_lsn"`  // the last record kept
	Bytes      int64     `json:"bytes"`      // log bytes moved aside
	Quarantine string    `json:"quarantine"` // where they are kept
}
