package conformance

import (
	"bytes"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Short constructors keep the case table readable: one op per call.

func mkdir(p string) fsop.Op { return fsop.Op{Kind: fsop.Mkdir, Path: p, Mode: 0o755} }
func mkdirMode(p string, m uint32) fsop.Op {
	return fsop.Op{Kind: fsop.Mkdir, Path: p, Mode: m}
}
func rmdir(p string) fsop.Op  { return fsop.Op{Kind: fsop.Rmdir, Path: p} }
func create(p string) fsop.Op { return fsop.Op{Kind: fsop.Create, Path: p, Mode: 0o644} }
func createExcl(p string) fsop.Op {
	return fsop.Op{Kind: fsop.Create, Path: p, Mode: 0o644, Exclusive: true}
}
func createMode(p string, m uint32) fsop.Op {
	return fsop.Op{Kind: fsop.Create, Path: p, Mode: m}
}
func writeFile(p, data string) fsop.Op {
	return fsop.Op{Kind: fsop.WriteFile, Path: p, Data: []byte(data)}
}
func writeFileBytes(p string, data []byte) fsop.Op {
	return fsop.Op{Kind: fsop.WriteFile, Path: p, Data: data}
}
func appendTo(p, data string) fsop.Op { return fsop.Op{Kind: fsop.Append, Path: p, Data: []byte(data)} }
func writeAt(p string, off int64, data []byte) fsop.Op {
	return fsop.Op{Kind: fsop.Write, Path: p, Offset: off, Data: data}
}
func readFile(p string) fsop.Op { return fsop.Op{Kind: fsop.ReadFile, Path: p} }
func readAt(p string, off, n int64) fsop.Op {
	return fsop.Op{Kind: fsop.Read, Path: p, Offset: off, Length: n}
}
func truncate(p string, size int64) fsop.Op { return fsop.Op{Kind: fsop.Truncate, Path: p, Size: size} }
func stat(p string) fsop.Op                 { return fsop.Op{Kind: fsop.Stat, Path: p} }
func lstat(p string) fsop.Op                { return fsop.Op{Kind: fsop.Lstat, Path: p} }
func readdir(p string) fsop.Op              { return fsop.Op{Kind: fsop.Readdir, Path: p} }
func unlink(p string) fsop.Op               { return fsop.Op{Kind: fsop.Unlink, Path: p} }
func rename(p, to string) fsop.Op           { return fsop.Op{Kind: fsop.Rename, Path: p, To: to} }
func renameFlags(p, to string, flags int) fsop.Op {
	return fsop.Op{Kind: fsop.Rename, Path: p, To: to, Flags: flags}
}
func mknodOp(p string, mode uint32, rdev uint64) fsop.Op {
	return fsop.Op{Kind: fsop.Mknod, Path: p, Mode: mode, Rdev: rdev}
}
func link(p, to string) fsop.Op        { return fsop.Op{Kind: fsop.Link, Path: p, To: to} }
func symlink(target, p string) fsop.Op { return fsop.Op{Kind: fsop.Symlink, Target: target, Path: p} }
func readlink(p string) fsop.Op        { return fsop.Op{Kind: fsop.Readlink, Path: p} }
func chmod(p string, m uint32) fsop.Op { return fsop.Op{Kind: fsop.Chmod, Path: p, Mode: m} }
func chown(p string, uid, gid int64) fsop.Op {
	return fsop.Op{Kind: fsop.Chown, Path: p, UID: uid, GID: gid}
}
func utimens(p string, atime, mtime int64) fsop.Op {
	return fsop.Op{Kind: fsop.Utimens, Path: p, AtimeNs: atime, MtimeNs: mtime}
}
func setxattr(p, name, value string, flags int) fsop.Op {
	return fsop.Op{Kind: fsop.Setxattr, Path: p, Name: name, Value: []byte(value), Flags: flags}
}
func getxattr(p, name string, length int64) fsop.Op {
	return fsop.Op{Kind: fsop.Getxattr, Path: p, Name: name, Length: length}
}
func listxattr(p string, length int64) fsop.Op {
	return fsop.Op{Kind: fsop.Listxattr, Path: p, Length: length}
}
func removexattr(p, name string) fsop.Op { return fsop.Op{Kind: fsop.Removexattr, Path: p, Name: name} }
func statfs(p string) fsop.Op            { return fsop.Op{Kind: fsop.Statfs, Path: p} }
func fsyncPath(p string) fsop.Op         { return fsop.Op{Kind: fsop.Fsync, Path: p} }

func open(h uint64, p string, flags int) fsop.Op {
	return fsop.Op{Kind: fsop.Open, Path: p, Flags: flags, Mode: 0o644, Handle: h}
}
func pread(h uint64, off, n int64) fsop.Op {
	return fsop.Op{Kind: fsop.Pread, Handle: h, Offset: off, Length: n}
}
func pwrite(h uint64, off int64, data string) fsop.Op {
	return fsop.Op{Kind: fsop.Pwrite, Handle: h, Offset: off, Data: []byte(data)}
}
func ftruncate(h uint64, size int64) fsop.Op {
	return fsop.Op{Kind: fsop.Ftruncate, Handle: h, Size: size}
}
func fsyncHandle(h uint64) fsop.Op { return fsop.Op{Kind: fsop.Fsync, Handle: h} }
func closeH(h uint64) fsop.Op      { return fsop.Op{Kind: fsop.Close, Handle: h} }

// pattern is n bytes of a recognisable, non-repeating-by-page sequence.
func pattern(n int) []byte {
	var b bytes.Buffer
	b.Grow(n)
	for i := 0; b.Len() < n; i++ {
		b.WriteByte(byte(i*7 + i/4096))
	}
	return b.Bytes()
}

const (
	rdonly = unix.O_RDONLY
	wronly = unix.O_WRONLY
	rdwr   = unix.O_RDWR
)
