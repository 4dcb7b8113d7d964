package store

// File data: writes, truncation and reads of the sparse 64 KiB chunks.

import (
	"slices"
	"syscall"
)

// truncate sets a file's size, dropping whole chunks past it and cutting
// the last partial one, so growing again reads zeros.
func (n *node) truncate(size int64) {
	if size < n.size {
		last, keep := size/chunkSize, int(size%chunkSize)
		for idx := range n.chunks {
			if idx > last || (idx == last && keep == 0) {
				delete(n.chunks, idx)
			}
		}
		if c, ok := n.chunks[last]; ok && len(c) > keep {
			n.chunks[last] = c[:keep]
		}
	}
	n.size = size
}

func (t *tree) applyWrite(ev *event) error {
	n, err := t.get(ev.ino)
	if err != nil {
		return err
	}
	if n.isDir() {
		return syscall.EISDIR
	}
	if !n.isReg() {
		return syscall.EINVAL
	}
	end := ev.off + int64(len(ev.data))
	if ev.off < 0 || end > MaxFileSize {
		return syscall.EFBIG
	}
	n = t.w(n)
	if n.chunks == nil {
		n.chunks = map[int64][]byte{}
	}
	for off, p := ev.off, ev.data; len(p) > 0; {
		idx, in := off/chunkSize, int(off%chunkSize)
		k := min(len(p), chunkSize-in)
		n.chunks[idx] = writeChunk(n.chunkForWrite(idx), in, p[:k])
		p, off = p[k:], off+int64(k)
	}
	if end > n.size {
		n.size = end
	}
	n.mtime, n.ctime = ev.time, ev.time
	return nil
}

// writeChunk writes p at in of chunk c, which holds only the bytes up to
// the last one written (the rest of the chunk reads as zeros), growing it
// as needed, and returns it.
func writeChunk(c []byte, in int, p []byte) []byte {
	if need := in + len(p); need > len(c) {
		old := len(c)
		c = slices.Grow(c, need-old)[:need]
		clear(c[old:max(in, old)])
	}
	copy(c[in:], p)
	return c
}

// readAt copies file data at off into p and returns the count, zeros for
// holes, stopping at end of file.
func (n *node) readAt(p []byte, off int64) int {
	if off >= n.size {
		return 0
	}
	if rest := n.size - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	total := len(p)
	for len(p) > 0 {
		idx, in := off/chunkSize, off%chunkSize
		k := min(len(p), int(chunkSize-in))
		m := 0
		if c := n.chunks[idx]; int(in) < len(c) {
			m = copy(p[:k], c[in:])
		}
		clear(p[m:k])
		p, off = p[k:], off+int64(k)
	}
	return total
}
