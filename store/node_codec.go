package store

// One node's encoding, shared by whole-store and subtree snapshots, and
// the checks a decoded node must pass.

import (
	"errors"
	"fmt"
	"syscall"
)

// encodeNode writes what a node is, apart from its identity: entries are
// written through ref, which names the child in the snapshot's numbering.
func encodeNode(e *enc, n *node, ref func(ino uint64) uint64) {
	e.u32(n.mode)
	e.u32(n.uid)
	e.u32(n.gid)
	e.i64(n.size)
	e.i64(n.atime)
	e.i64(n.mtime)
	e.i64(n.ctime)
	e.str(n.target)
	if n.isDev() {
		e.u64(n.rdev) // a device's number: no other node has this field
	}
	idx := sortedChunkIndexes(n.chunks)
	e.u32(uint32(len(idx)))
	for _, i := range idx {
		e.i64(i)
		e.bytes(trimZeros(n.chunks[i]))
		e.spillOver(1 << 20)
	}
	names := sortedKeys(n.children)
	e.u32(uint32(len(names)))
	for _, name := range names {
		e.str(name)
		e.u64(ref(n.children[name]))
	}
	xnames := sortedKeys(n.xattrs)
	e.u32(uint32(len(xnames)))
	for _, name := range xnames {
		e.str(name)
		e.bytes(n.xattrs[name])
	}
}

// decodeNode reads what encodeNode wrote; entries keep the snapshot's
// numbering (the caller maps them).
func decodeNode(d *dec) *node {
	n := &node{mode: d.u32(), uid: d.u32(), gid: d.u32(), size: d.i64(),
		atime: d.i64(), mtime: d.i64(), ctime: d.i64(), target: d.str()}
	if n.isDev() {
		n.rdev = d.u64()
	}
	decodeContent(d, n)
	return n
}

// decodeContent reads a node's chunks, entries and xattrs, the end of a
// node in every format.
func decodeContent(d *dec, n *node) {
	if nc := d.u32(); nc > 0 && d.err == nil {
		n.chunks = make(map[int64][]byte, min(nc, 1<<16))
		for j := uint32(0); j < nc && d.err == nil; j++ {
			idx := d.i64()
			n.chunks[idx] = d.bytes()
		}
	}
	nch := d.u32()
	if n.isDir() {
		n.children = make(map[string]uint64, min(nch, 1<<16))
	}
	for j := uint32(0); j < nch && d.err == nil; j++ {
		name := d.str()
		ref := d.u64()
		if n.children != nil {
			n.children[name] = ref
		}
	}
	if nx := d.u32(); nx > 0 && d.err == nil {
		n.xattrs = make(map[string][]byte, min(nx, 1<<10))
		for j := uint32(0); j < nx && d.err == nil; j++ {
			name := d.str()
			n.xattrs[name] = d.bytes()
		}
	}
}

// trimZeros drops a chunk's trailing zeros: they read the same as absent
// bytes, and a snapshot should not carry them.
func trimZeros(c []byte) []byte {
	end := len(c)
	for end > 0 && c[end-1] == 0 {
		end--
	}
	return c[:end]
}

// checkNode verifies what one node may hold given its kind.
func checkNode(n *node) error {
	switch n.mode & syscall.S_IFMT {
	case syscall.S_IFDIR, syscall.S_IFREG, syscall.S_IFLNK:
	default:
		if !isSpecialMode(n.mode) {
			return fmt.Errorf("file type %o", n.mode&syscall.S_IFMT)
		}
		if n.size != 0 || n.target != "" || len(n.chunks) > 0 {
			return errors.New("a special file with data")
		}
	}
	if n.size < 0 || n.size > MaxFileSize {
		return fmt.Errorf("size %d", n.size)
	}
	for idx, c := range n.chunks {
		if !n.isReg() || idx < 0 || idx > MaxFileSize/chunkSize || len(c) > chunkSize || idx*chunkSize+int64(len(c)) > n.size {
			return fmt.Errorf("bad chunk %d", idx)
		}
	}
	if n.isLink() && (n.target == "" || len(n.target) > maxSymlink || n.size != int64(len(n.target))) {
		return errors.New("bad symlink target")
	}
	for name, v := range n.xattrs {
		if checkXattrName(name) != nil || len(v) > MaxXattrSize {
			return fmt.Errorf("bad xattr %q", name)
		}
	}
	return nil
}
