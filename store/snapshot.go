package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"slices"
	"sort"
)

// Snapshot format: magic, then the LSN it covers and the next inode number,
// then every node in inode order, then a crc32c of everything before it.
// Nodes, names and xattrs are written in sorted order, so two equal trees
// give byte-identical snapshots and equal checksums.
const snapMagic = "LHSNAP01"

// ErrBadSnapshot means a snapshot failed its checksum or its structure.
var ErrBadSnapshot = errors.New("bad snapshot")

func encodeSnapshot(t *tree, lsn uint64) []byte {
	e := &enc{b: make([]byte, 0, 4096)}
	e.b = append(e.b, snapMagic...)
	e.u64(lsn)
	e.u64(t.nextIno)
	inos := make([]uint64, 0, len(t.nodes))
	for ino, n := range t.nodes {
		if n.nlink == 0 { // kept alive only by an open handle
			continue
		}
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	e.u64(uint64(len(inos)))
	for _, ino := range inos {
		n := t.nodes[ino]
		e.u64(n.ino)
		e.u32(n.mode)
		e.u32(n.uid)
		e.u32(n.gid)
		e.u32(n.nlink)
		e.i64(n.size)
		e.i64(n.atime)
		e.i64(n.mtime)
		e.i64(n.ctime)
		e.u64(n.parent)
		e.str(n.target)
		idx := sortedChunkIndexes(n.chunks)
		e.u32(uint32(len(idx)))
		for _, i := range idx {
			e.i64(i)
			e.bytes(n.chunks[i])
		}
		names := sortedKeys(n.children)
		e.u32(uint32(len(names)))
		for _, name := range names {
			e.str(name)
			e.u64(n.children[name])
		}
		xnames := sortedKeys(n.xattrs)
		e.u32(uint32(len(xnames)))
		for _, name := range xnames {
			e.str(name)
			e.bytes(n.xattrs[name])
		}
	}
	e.u32(crc32.Checksum(e.b, castagnoli))
	return e.b
}

func sortedChunkIndexes(chunks map[int64][]byte) []int64 {
	idx := make([]int64, 0, len(chunks))
	for i := range chunks {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	return idx
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func decodeSnapshot(b []byte) (*tree, uint64, error) {
	if len(b) < len(snapMagic)+4 || string(b[:len(snapMagic)]) != snapMagic {
		return nil, 0, fmt.Errorf("%w: no snapshot header", ErrBadSnapshot)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, 0, fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	d := &dec{b: body[len(snapMagic):]}
	lsn := d.u64()
	t := &tree{nodes: map[uint64]*node{}, nextIno: d.u64(), open: map[uint64]int{}}
	count := d.u64()
	for i := uint64(0); i < count && d.err == nil; i++ {
		n := &node{ino: d.u64(), mode: d.u32(), uid: d.u32(), gid: d.u32(), nlink: d.u32(),
			size: d.i64(), atime: d.i64(), mtime: d.i64(), ctime: d.i64(), parent: d.u64(), target: d.str()}
		if nc := d.u32(); nc > 0 {
			n.chunks = make(map[int64][]byte, nc)
			for j := uint32(0); j < nc && d.err == nil; j++ {
				idx := d.i64()
				n.chunks[idx] = d.bytes()
			}
		}
		nch := d.u32()
		if n.isDir() {
			n.children = make(map[string]uint64, nch)
		}
		for j := uint32(0); j < nch && d.err == nil; j++ {
			name := d.str()
			if n.children != nil {
				n.children[name] = d.u64()
			} else {
				d.u64()
			}
		}
		if nx := d.u32(); nx > 0 {
			n.xattrs = make(map[string][]byte, nx)
			for j := uint32(0); j < nx && d.err == nil; j++ {
				name := d.str()
				n.xattrs[name] = d.bytes()
			}
		}
		t.nodes[n.ino] = n
	}
	if d.err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrBadSnapshot, d.err)
	}
	if len(d.b) != 0 {
		return nil, 0, fmt.Errorf("%w: %d trailing bytes", ErrBadSnapshot, len(d.b))
	}
	if err := t.check(); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	return t, lsn, nil
}

// check verifies the tree's invariants: a root directory, every entry
// pointing at a node, chunk sizes, and file link counts equal to the
// number of names. A snapshot that passes its checksum but not this was
// made by a different program; refusing it beats serving it.
func (t *tree) check() error {
	root, ok := t.nodes[RootIno]
	if !ok || !root.isDir() {
		return errors.New("no root directory")
	}
	names := map[uint64]uint32{}
	for _, n := range t.nodes {
		if n.ino >= t.nextIno {
			return fmt.Errorf("inode %d not below next inode %d", n.ino, t.nextIno)
		}
		for idx, c := range n.chunks {
			if len(c) != chunkSize || idx < 0 {
				return fmt.Errorf("inode %d: bad chunk %d", n.ino, idx)
			}
		}
		for name, c := range n.children {
			child, ok := t.nodes[c]
			if !ok || checkName(name) != nil {
				return fmt.Errorf("inode %d: bad entry %q", n.ino, name)
			}
			if child.isDir() && child.parent != n.ino {
				return fmt.Errorf("directory %d: parent is %d, entry in %d", c, child.parent, n.ino)
			}
			names[c]++
		}
	}
	for ino, n := range t.nodes {
		if !n.isDir() && names[ino] != n.nlink {
			return fmt.Errorf("inode %d: nlink %d, %d names", ino, n.nlink, names[ino])
		}
	}
	return nil
}

// loadSnapshot reads the snapshot file, or returns an empty tree if none.
func loadSnapshot(path string, now int64) (*tree, uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return newTree(now), 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	return decodeSnapshot(b)
}

// Checksum is the crc32c that ends a snapshot: equal trees have equal
// checksums.
func Checksum(snapshot []byte) (uint32, error) {
	if len(snapshot) < 4 {
		return 0, ErrBadSnapshot
	}
	return binary.LittleEndian.Uint32(snapshot[len(snapshot)-4:]), nil
}
