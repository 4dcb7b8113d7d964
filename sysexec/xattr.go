package sysexec

import (
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// xattrMax is XATTR_SIZE_MAX and XATTR_LIST_MAX (64 KiB). The kernel clamps
// a larger getxattr/listxattr buffer size to it, so allocating more would
// change nothing but the allocation.
const xattrMax = 64 << 10

// maxXattrRetries bounds the query-then-read loop when a value keeps growing
// between the two calls (ERANGE on the read).
const maxXattrRetries = 8

// xattr runs the four xattr ops on "/proc/self/fd/N" (they follow a final
// symlink, and refuse an O_PATH fd).
func (e *Executor) xattr(op *fsop.Op) (fsop.Result, error) {
	var r fsop.Result
	err := e.withPath(op.Path, func(p string) error {
		switch op.Kind {
		case fsop.Setxattr:
			return eintr(func() error { return unix.Setxattr(p, op.Name, op.Value, op.Flags) })
		case fsop.Removexattr:
			return eintr(func() error { return unix.Removexattr(p, op.Name) })
		case fsop.Getxattr:
			buf, size, err := sized(op.Length, func(b []byte) (int, error) {
				return unix.Getxattr(p, op.Name, b)
			})
			r.Value, r.Size = buf, size
			return err
		default: // fsop.Listxattr
			buf, size, err := sized(op.Length, func(b []byte) (int, error) {
				return unix.Listxattr(p, b)
			})
			r.Names, r.Size = splitNames(buf), size
			return err
		}
	})
	if err != nil {
		return outcome(err)
	}
	return r, nil
}

// sized runs a getxattr-style call. With length > 0 it makes ONE call with a
// buffer of exactly length bytes (so a small buffer gives ERANGE) and returns
// the bytes and the returned size. With length 0 it first asks for the size
// (zero-size buffer), then reads with a buffer of that size, asking again if
// the value grew in between (ERANGE); size is then the size query's answer.
func sized(length int64, call func([]byte) (int, error)) ([]byte, int64, error) {
	one := func(b []byte) (int, error) { return eintrN(func() (int, error) { return call(b) }) }
	if length > 0 {
		buf := make([]byte, min(length, xattrMax))
		n, err := one(buf)
		if err != nil {
			return nil, 0, err
		}
		return buf[:n], int64(n), nil
	}
	for try := 0; ; try++ {
		size, err := one(nil)
		if err != nil {
			return nil, 0, err
		}
		if size == 0 {
			return []byte{}, 0, nil
		}
		buf := make([]byte, min(size, xattrMax))
		n, err := one(buf)
		if err == unix.ERANGE && try < maxXattrRetries {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		return buf[:n], int64(size), nil
	}
}

// splitNames splits a listxattr buffer ("a\x00b\x00") into names.
func splitNames(b []byte) []string {
	var names []string
	for _, s := range strings.Split(string(b), "\x00") {
		if s != "" {
			names = append(names, s)
		}
	}
	return names
}
