package store

// Subtree snapshots: the copy mechanism of a resync that replaces one
// directory's contents instead of the whole store.
//
// # Format
//
// magic "LHSUBT01", the node count N, then N nodes, then a crc32c of
// everything before it. Node 0 is the directory itself; the others are
// numbered depth first in byte order of names, each when first met, so a
// hard link's second name refers back to an earlier number. A node is its
// mode, uid, gid, size, atime, mtime and ctime, a symlink target, a
// device's number (a character or block device only), its data
// chunks (index and bytes, trailing zeros trimmed), its entries (name and
// node number) and its xattrs, all in sorted order. No inode number, link
// count or log position is written, so equal subtrees give byte-identical
// snapshots in any two stores.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"strings"
	"syscall"
)

const subtreeMagic = "LHSUBT01"

// subtreeRecordMax is the largest subtree snapshot RestoreSubtree logs as
// one record; a larger one is made durable by a whole-store snapshot
// instead. A variable so that tests reach both paths.
var subtreeRecordMax = maxRecord - 4096

// ErrCrossLink means a file inside a subtree has a hard link outside it, so
// the subtree cannot be copied or replaced alone: widen it to a directory
// that holds both names. Errors wrapping it are *CrossLinkError.
var ErrCrossLink = errors.New("a hard link crosses the subtree's boundary")

// CrossLinkError names two names of one file, one inside the subtree and
// one outside, both relative to the store's root.
type CrossLinkError struct {
	Inside, Outside string
}

func (e *CrossLinkError) Error() string {
	return fmt.Sprintf("%v: %q inside, %q outside", ErrCrossLink, e.Inside, e.Outside)
}

func (e *CrossLinkError) Unwrap() error { return ErrCrossLink }

// resolveDir finds the directory at path, a cleaned relative path ("." is
// the root), following no symlink: EINVAL for a path that is not clean,
// ENOENT if a name is missing, ENOTDIR if a component or the end is not a
// directory.
func (t *tree) resolveDir(path string) (*node, error) {
	if !fs.ValidPath(path) {
		return nil, syscall.EINVAL
	}
	n := t.nodes[RootIno]
	if path == "." {
		return n, nil
	}
	for _, name := range strings.Split(path, "/") {
		if !n.isDir() {
			return nil, syscall.ENOTDIR
		}
		c, err := t.lookup(n, name)
		if err != nil {
			return nil, err
		}
		n = c
	}
	if !n.isDir() {
		return nil, syscall.ENOTDIR
	}
	return n, nil
}

// subtree is a directory and every node below it, numbered in the
// snapshot's order.
type subtree struct {
	nodes []*node           // by number; nodes[0] is the directory
	num   map[uint64]int    // inode -> number
	names map[uint64]int    // non-directories: names inside the subtree
	path  map[uint64]string // non-directories: the first name met, from the root
}

// indexSubtree numbers d (at path dpath) and everything below it.
func (t *tree) indexSubtree(d *node, dpath string) *subtree {
	s := &subtree{num: map[uint64]int{}, names: map[uint64]int{}, path: map[uint64]string{}}
	var walk func(n *node, p string)
	walk = func(n *node, p string) {
		s.num[n.ino] = len(s.nodes)
		s.nodes = append(s.nodes, n)
		for _, name := range sortedKeys(n.children) {
			c, ok := t.nodes[n.children[name]]
			if !ok {
				continue
			}
			cp := joinPath(p, name)
			if c.isDir() {
				walk(c, cp)
				continue
			}
			s.names[c.ino]++
			if _, seen := s.num[c.ino]; !seen {
				s.num[c.ino] = len(s.nodes)
				s.nodes = append(s.nodes, c)
				s.path[c.ino] = cp
			}
		}
	}
	walk(d, dpath)
	return s
}

func joinPath(dir, name string) string {
	if dir == "." || dir == "" {
		return name
	}
	return dir + "/" + name
}

// crossLink returns a *CrossLinkError if a file in s has a name outside
// it; root is the subtree's directory.
func (t *tree) crossLink(s *subtree) error {
	for _, n := range s.nodes[1:] {
		if n.isDir() || uint32(s.names[n.ino]) >= n.nlink {
			continue
		}
		return &CrossLinkError{Inside: s.path[n.ino], Outside: t.nameOutside(n.ino, s.nodes[0].ino)}
	}
	return nil
}

// nameOutside finds a name of ino that is not below directory skip.
func (t *tree) nameOutside(ino, skip uint64) string {
	var find func(d *node, p string) string
	find = func(d *node, p string) string {
		for _, name := range sortedKeys(d.children) {
			c := d.children[name]
			if c == ino {
				return joinPath(p, name)
			}
			if n, ok := t.nodes[c]; ok && n.isDir() && c != skip {
				if found := find(n, joinPath(p, name)); found != "" {
					return found
				}
			}
		}
		return ""
	}
	return find(t.nodes[RootIno], ".")
}

// encodeSubtree writes s in the subtree format.
func encodeSubtree(s *subtree) []byte {
	e := &enc{b: make([]byte, 0, 4096)}
	e.b = append(e.b, subtreeMagic...)
	e.u64(uint64(len(s.nodes)))
	for _, n := range s.nodes {
		encodeNode(e, n, func(ino uint64) uint64 { return uint64(s.num[ino]) })
	}
	e.u32(crc32.Checksum(e.b, castagnoli))
	return e.b
}

// decodeSubtree checks a subtree snapshot and returns its nodes, entries
// still in the snapshot's numbering.
func decodeSubtree(b []byte) ([]*node, error) {
	if len(b) < len(subtreeMagic)+4 || string(b[:len(subtreeMagic)]) != subtreeMagic {
		return nil, fmt.Errorf("%w: no subtree snapshot header", ErrBadSnapshot)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	d := &dec{b: body[len(subtreeMagic):]}
	count := d.u64()
	if count == 0 || count > uint64(len(d.b)) {
		return nil, fmt.Errorf("%w: %d nodes", ErrBadSnapshot, count)
	}
	nodes := make([]*node, 0, count)
	for i := uint64(0); i < count && d.err == nil; i++ {
		nodes = append(nodes, decodeNode(d))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadSnapshot, len(d.b))
	}
	if err := checkSubtree(nodes); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	return nodes, nil
}

// checkSubtree verifies a decoded subtree: node 0 a directory, every other
// node reached from it, each directory by exactly one entry, valid names,
// chunks and kinds.
func checkSubtree(nodes []*node) error {
	if !nodes[0].isDir() {
		return errors.New("node 0 is not a directory")
	}
	refs := make([]int, len(nodes))
	for i, n := range nodes {
		if err := checkNode(n); err != nil {
			return fmt.Errorf("node %d: %v", i, err)
		}
		for name, c := range n.children {
			if c == 0 || c >= uint64(len(nodes)) || checkName(name) != nil {
				return fmt.Errorf("node %d: bad entry %q", i, name)
			}
			refs[c]++
			if nodes[c].isDir() && refs[c] > 1 {
				return fmt.Errorf("directory %d has two entries", c)
			}
		}
	}
	// Reached from node 0: with one entry per directory, this also rules
	// out cycles.
	seen := make([]bool, len(nodes))
	stack := []uint64{0}
	seen[0] = true
	for len(stack) > 0 {
		n := nodes[stack[len(stack)-1]]
		stack = stack[:len(stack)-1]
		for _, c := range n.children {
			if !seen[c] {
				seen[c] = true
				stack = append(stack, c)
			}
		}
	}
	for i := range nodes {
		if !seen[i] {
			return fmt.Errorf("node %d is not reached from the directory", i)
		}
	}
	return nil
}

// SnapshotSubtree returns the directory at path ("." is the root) and
// everything below it in the subtree format: checksummed, byte-identical
// for equal subtrees. ENOENT if path is missing, ENOTDIR if it is not a
// directory, EINVAL if it is not a clean relative path; a *CrossLinkError
// (ErrCrossLink) if a file inside has a name outside.
func (s *Store) SnapshotSubtree(path string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, err := s.t.resolveDir(path)
	if err != nil {
		return nil, err
	}
	sub := s.t.indexSubtree(d, path)
	if err := s.t.crossLink(sub); err != nil {
		return nil, err
	}
	return encodeSubtree(sub), nil
}
