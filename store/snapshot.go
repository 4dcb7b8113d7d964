package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
)

// Snapshot format (version 2): magic "LHSNAP02", the LSN it covers, the
// next inode number, the node count, then every node in inode order (its
// inode number, link count and parent, then encodeNode: attributes, a
// character or block device's number (only those nodes carry it, so a
// snapshot without devices is what it was before devices existed), data
// chunks with trailing zeros left out, entries and xattrs, all sorted),
// then a crc32c of everything before it. Two equal trees give
// byte-identical snapshots and equal checksums, and a file costs what its
// data costs, not a 64 KiB chunk. Version 1 ("LHSNAP01", whole chunks, a
// different field order) is still read.
const (
	snapMagic   = "LHSNAP02"
	snapMagicV1 = "LHSNAP01"
)

// ErrBadSnapshot means a snapshot failed its checksum or its structure.
var ErrBadSnapshot = errors.New("bad snapshot")

// encodeSnapshot returns the snapshot of t covering lsn.
func encodeSnapshot(t *tree, lsn uint64) []byte {
	var b bytes.Buffer
	writeSnapshot(&b, t, lsn) // a bytes.Buffer does not fail
	return b.Bytes()
}

// writeSnapshot streams the snapshot of t covering lsn to w, in pieces of
// about 1 MiB, so a large store never sits in memory twice.
func writeSnapshot(w io.Writer, t *tree, lsn uint64) error {
	var crc uint32
	e := &enc{b: make([]byte, 0, 2<<20)}
	e.sink = func(p []byte) error {
		crc = crc32.Update(crc, castagnoli, p)
		_, err := w.Write(p)
		return err
	}
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
	slices.Sort(inos)
	e.u64(uint64(len(inos)))
	identity := func(ino uint64) uint64 { return ino }
	for _, ino := range inos {
		n := t.nodes[ino]
		e.u64(n.ino)
		e.u32(n.nlink)
		e.u64(n.parent)
		encodeNode(e, n, identity)
		e.spillOver(1 << 20)
	}
	e.spillOver(0)
	if e.err != nil {
		return e.err
	}
	e.u32(crc)
	e.sink = nil
	_, err := w.Write(e.b)
	return err
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
	slices.Sort(keys)
	return keys
}

func decodeSnapshot(b []byte) (*tree, uint64, error) {
	if len(b) < len(snapMagic)+4 {
		return nil, 0, fmt.Errorf("%w: no snapshot header", ErrBadSnapshot)
	}
	version := string(b[:len(snapMagic)])
	if version != snapMagic && version != snapMagicV1 {
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
		var n *node
		if version == snapMagicV1 {
			n = decodeNodeV1(d)
		} else {
			ino, nlink, parent := d.u64(), d.u32(), d.u64()
			n = decodeNode(d)
			n.ino, n.nlink, n.parent = ino, nlink, parent
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

// decodeNodeV1 reads one node of a version 1 snapshot.
func decodeNodeV1(d *dec) *node {
	n := &node{ino: d.u64(), mode: d.u32(), uid: d.u32(), gid: d.u32(), nlink: d.u32(),
		size: d.i64(), atime: d.i64(), mtime: d.i64(), ctime: d.i64(), parent: d.u64(), target: d.str()}
	decodeContent(d, n)
	for idx, c := range n.chunks {
		n.chunks[idx] = trimZeros(c) // version 1 stored whole chunks
	}
	return n
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
		if err := checkNode(n); err != nil {
			return fmt.Errorf("inode %d: %v", n.ino, err)
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
