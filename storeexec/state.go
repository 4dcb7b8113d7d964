package storeexec

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/store"
)

// stateBufs are State's read buffers: it hashes a file chunk by chunk.
var stateBufs = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

// MaxStateContent bounds the file content State hashes: a larger file's
// state is its attributes, symlink target and xattrs only.
const MaxStateContent = 16 << 20

// State is the abstract state of p, the name itself (not followed), for a
// read-back check: what a filesystem checker compares between two
// implementations. The result has
//   - Errno and Stat: lstat(2) of p as this executor's user;
//   - Value: the SHA-256 of a regular file's content (up to
//     MaxStateContent; N is the number of bytes hashed);
//   - Target: a symlink's target;
//   - Names and Data: the xattr names, sorted, and the SHA-256 of the
//     names and values together.
//
// It reads the store directly, not through a mount, and changes nothing:
// no handle is opened, no time is touched.
func (e *Executor) State(p string) (fsop.Result, error) {
	if e.closed.Load() {
		return fsop.Result{}, ErrClosed
	}
	return finish(e.state(p))
}

func (e *Executor) state(p string) (r fsop.Result, err error) {
	var a store.Attr
	err = e.atParent(p, func(dir store.Attr, base string) error {
		a, err = e.lookupAt(dir, base)
		r.Stat = fsopAttr(a)
		return err
	})
	if err != nil {
		return r, err
	}
	switch {
	case isReg(a) && a.Size <= MaxStateContent:
		h := sha256.New()
		bp := stateBufs.Get().(*[]byte)
		defer stateBufs.Put(bp)
		for {
			n, err := e.s.ReadAt(a.Ino, *bp, r.N)
			if err != nil {
				return r, err
			}
			h.Write((*bp)[:n])
			r.N += int64(n)
			if n < len(*bp) { // the store reads short only at end of file
				break
			}
		}
		r.Value = h.Sum(nil)
	case isLink(a):
		if r.Target, err = e.s.Readlink(a.Ino); err != nil {
			return r, err
		}
	}
	names, err := e.s.Listxattr(a.Ino)
	if err != nil || len(names) == 0 {
		return r, err
	}
	names = slices.Sorted(slices.Values(names))
	h := sha256.New()
	for _, n := range names {
		v, err := e.s.Getxattr(a.Ino, n)
		if err != nil {
			return r, fmt.Errorf("xattr %q listed but not read: %w", n, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(v))
		h.Write(v)
	}
	r.Names, r.Data = names, h.Sum(nil)
	return r, nil
}
