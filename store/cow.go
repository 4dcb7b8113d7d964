package store

// Copy-on-write: a frozen view of the tree (freeze) stays unchanged while
// the tree changes on, so a snapshot is encoded from it without the lock.

import (
	"maps"
	"slices"
)

// freeze returns a view of t as it is now, which stays unchanged and may
// be read without the store's lock while t changes on: the snapshot of a
// compaction is encoded from it while the log keeps appending. It costs a
// copy of the inode map; afterwards each node is copied on its first
// change (tree.w) and each data chunk on its first write.
func (t *tree) freeze() *tree {
	v := &tree{nodes: maps.Clone(t.nodes), nextIno: t.nextIno, gen: t.gen}
	t.gen++
	return v
}

// w returns node n (by its inode number) ready to be changed: n itself if
// no frozen view can hold it, else a copy, with its own maps, that
// replaces it in the tree. Every change to a node goes through w.
func (t *tree) w(n *node) *node {
	cur, ok := t.nodes[n.ino]
	if !ok {
		cur = n
	}
	if cur.gen == t.gen {
		return cur
	}
	c := *cur
	c.children, c.xattrs, c.chunks = maps.Clone(cur.children), maps.Clone(cur.xattrs), maps.Clone(cur.chunks)
	c.gen, c.sharedChunks, c.owned = t.gen, len(cur.chunks) > 0, nil
	if ok {
		t.nodes[c.ino] = &c
	}
	return &c
}

// newNode makes a node of the current generation.
func (t *tree) newNode(n *node) *node {
	n.gen = t.gen
	t.nodes[n.ino] = n
	return n
}

// chunkForWrite returns chunk idx of n (made writable by w) for an
// in-place change: copied first if a frozen view may share it.
func (n *node) chunkForWrite(idx int64) []byte {
	c := n.chunks[idx]
	if !n.sharedChunks || n.owned[idx] || c == nil {
		return c
	}
	if n.owned == nil {
		n.owned = map[int64]bool{}
	}
	n.owned[idx] = true
	return slices.Clone(c)
}
