package sysexec

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// create is open(O_CREAT|O_WRONLY[|O_EXCL], mode) then close. Like creat(2)
// it follows a final symlink (a dangling one inside the root creates its
// target); with O_EXCL a final symlink gives EEXIST.
func (e *Executor) create(op *fsop.Op) (fsop.Result, error) {
	mode := op.Mode & 0o7777
	if op.Mode == 0 {
		mode = 0o644
	}
	flags := unix.O_CREAT | unix.O_WRONLY
	if op.Exclusive {
		flags |= unix.O_EXCL
	}
	fd, err := e.openFile(op.Path, flags, mode)
	if err != nil {
		return outcome(err)
	}
	return outcome(unix.Close(fd))
}

// writePath opens p with flags, writes all of data (at off, or at the file
// offset when off < 0), and closes. N is the count written, also when a
// write fails part way (then Errno is set too).
func (e *Executor) writePath(p string, flags int, mode uint32, off int64, data []byte) (fsop.Result, error) {
	fd, err := e.openFile(p, flags, mode)
	if err != nil {
		return outcome(err)
	}
	n, err := writeAll(fd, off, data)
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	r, rerr := outcome(err)
	r.N = n
	return r, rerr
}

// writeAll writes data to fd, with pwrite at off when off >= 0 and write
// otherwise, looping over short writes. It always makes at least one call,
// so that an empty write still gets the kernel's verdict (EBADF on a
// read-only fd, for instance). A call that writes 0 bytes without an error
// ends the loop: N then says how much the filesystem accepted.
func writeAll(fd int, off int64, data []byte) (int64, error) {
	var done int64
	for {
		var n int
		var err error
		if off >= 0 {
			n, err = eintrN(func() (int, error) { return unix.Pwrite(fd, data, off+done) })
		} else {
			n, err = eintrN(func() (int, error) { return unix.Write(fd, data) })
		}
		if n > 0 {
			done += int64(n)
			data = data[n:]
		}
		if err != nil || n <= 0 || len(data) == 0 {
			return done, err
		}
	}
}

// readAt reads up to length bytes from fd at off (pread), looping until
// length bytes or EOF. The buffer grows as data arrives, so a large length on
// a small file costs little. Like writeAll it always makes at least one call.
func readAt(fd int, off, length int64) ([]byte, error) {
	buf := make([]byte, 0, min(length, 64<<10))
	for {
		if len(buf) == cap(buf) && int64(len(buf)) < length {
			nb := make([]byte, len(buf), min(int64(cap(buf))*2, length))
			copy(nb, buf)
			buf = nb
		}
		n, err := eintrN(func() (int, error) {
			return unix.Pread(fd, buf[len(buf):cap(buf)], off+int64(len(buf)))
		})
		if err != nil {
			return buf, err
		}
		if n <= 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
		if int64(len(buf)) >= length {
			return buf, nil
		}
	}
}

// checkLength refuses a read length above MaxRead.
func (e *Executor) checkLength(length int64) error {
	if length > e.maxRead {
		return fmt.Errorf("sysexec: %w: read length %d above MaxRead %d", fsop.ErrBadValue, length, e.maxRead)
	}
	return nil
}

// readPath is the path-based read: open O_RDONLY, pread, close.
func (e *Executor) readPath(op *fsop.Op) (fsop.Result, error) {
	if err := e.checkLength(op.Length); err != nil {
		return fsop.Result{}, err
	}
	fd, err := e.openFile(op.Path, unix.O_RDONLY, 0)
	if err != nil {
		return outcome(err)
	}
	defer unix.Close(fd)
	data, err := readAt(fd, op.Offset, op.Length)
	if err != nil {
		return outcome(err)
	}
	return fsop.Result{Data: data}, nil
}

// readFile reads a whole file. A file larger than MaxRead (by its size, or
// by what reading it returns) gives EFBIG.
func (e *Executor) readFile(op *fsop.Op) (fsop.Result, error) {
	fd, err := e.openFile(op.Path, unix.O_RDONLY, 0)
	if err != nil {
		return outcome(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := eintr(func() error { return unix.Fstat(fd, &st) }); err != nil {
		return outcome(err)
	}
	if st.Size > e.maxRead {
		return fsop.ErrnoResult(unix.EFBIG), nil
	}
	// Read at most MaxRead+1 bytes: one byte more than allowed proves the
	// file is too large even when its size said otherwise.
	limit := e.maxRead + 1
	hint := max(st.Size+1, 512)
	buf := make([]byte, 0, min(hint, limit))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= limit {
				break
			}
			nb := make([]byte, len(buf), min(int64(cap(buf))*2, limit))
			copy(nb, buf)
			buf = nb
		}
		n, err := eintrN(func() (int, error) { return unix.Read(fd, buf[len(buf):cap(buf)]) })
		if err != nil {
			return outcome(err)
		}
		if n == 0 {
			break
		}
		buf = buf[:len(buf)+n]
	}
	if int64(len(buf)) > e.maxRead {
		return fsop.ErrnoResult(unix.EFBIG), nil
	}
	return fsop.Result{Data: buf}, nil
}

// fsyncPath opens p O_RDONLY (which works for directories too), fsyncs and
// closes it.
func (e *Executor) fsyncPath(op *fsop.Op) (fsop.Result, error) {
	fd, err := e.openFile(op.Path, unix.O_RDONLY, 0)
	if err != nil {
		return outcome(err)
	}
	err = eintr(func() error { return unix.Fsync(fd) })
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	return outcome(err)
}

// direntBufSize is the getdents buffer: large enough for hundreds of
// entries per call.
const direntBufSize = 32 << 10

// readdir lists a directory with raw getdents64: every entry the filesystem
// returns, "." and ".." included, in its order, each with the d_off the
// filesystem gave it (on a FUSE mount: the library's cookie, which the
// front hands on to its own readers).
func (e *Executor) readdir(op *fsop.Op) (fsop.Result, error) {
	fd, err := e.openFile(op.Path, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return outcome(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, direntBufSize)
	entries := []fsop.Dirent{}
	for {
		n, err := eintrN(func() (int, error) { return unix.Getdents(fd, buf) })
		if err != nil {
			return outcome(err)
		}
		if n <= 0 {
			break
		}
		entries = parseDirents(buf[:n], entries)
	}
	return fsop.Result{Entries: entries}, nil
}

// linux_dirent64: u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, name.
const (
	direntOff    = 8
	direntReclen = 16
	direntType   = 18
	direntName   = 19
)

// parseDirents appends the linux_dirent64 records in b to out.
func parseDirents(b []byte, out []fsop.Dirent) []fsop.Dirent {
	for len(b) >= direntName {
		reclen := int(binary.NativeEndian.Uint16(b[direntReclen:]))
		if reclen < direntName || reclen > len(b) {
			break // malformed; the kernel never does this
		}
		name := b[direntName:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		out = append(out, fsop.Dirent{
			Name: string(name),
			Type: fsop.DirentType(uint32(b[direntType]) << 12),
			Off:  binary.NativeEndian.Uint64(b[direntOff:]),
		})
		b = b[reclen:]
	}
	return out
}
