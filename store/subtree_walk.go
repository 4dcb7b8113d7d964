package store

import (
	"crypto/sha256"
	"sort"
)

// SubtreeEntry is one name in a subtree snapshot, as an audit compares two
// of them: what lstat, readlink, listxattr and a read of the content would
// show, with no inode number.
type SubtreeEntry struct {
	// Path is relative to the store's root: the subtree's root joined with
	// the name's path inside it.
	Path     string
	Mode     uint32 // type and permission bits
	UID, GID uint32
	// Nlink counts the names of a file within the snapshot (a link to a
	// name outside cannot be in one); a directory's is 2 plus its
	// subdirectories.
	Nlink   uint32
	Size    int64
	MtimeNs int64
	Target  string
	Rdev    uint64 // character and block devices: the device number
	Xattrs  map[string][]byte
	node    *node
}

// IsDir reports whether the entry is a directory.
func (e *SubtreeEntry) IsDir() bool { return e.node.isDir() }

// ReadAt reads the content of a regular file as the store would, holes and
// trimmed chunk tails as zeros, and returns the bytes read.
func (e *SubtreeEntry) ReadAt(p []byte, off int64) int {
	if off < 0 {
		return 0
	}
	return e.node.readAt(p, off)
}

// Digest is the SHA-256 of the file's content (of nothing, for others).
func (e *SubtreeEntry) Digest() [sha256.Size]byte {
	h := sha256.New()
	buf := make([]byte, chunkSize)
	for off := int64(0); off < e.node.size; {
		n := e.ReadAt(buf, off)
		h.Write(buf[:n])
		off += int64(n)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// WalkSubtree checks a subtree snapshot of the directory at root (what
// SnapshotSubtree(root) returned) and calls fn for every name in it, the
// root first, then in byte order of paths. A file with several names in
// the snapshot is met once per name.
func WalkSubtree(root string, snap []byte, fn func(e *SubtreeEntry) error) error {
	nodes, err := decodeSubtree(snap)
	if err != nil {
		return err
	}
	links := make([]uint32, len(nodes))
	for _, n := range nodes {
		for _, c := range n.children {
			links[c]++
		}
	}
	var walk func(num uint64, path string) error
	walk = func(num uint64, path string) error {
		n := nodes[num]
		e := &SubtreeEntry{Path: path, Mode: n.mode, UID: n.uid, GID: n.gid, Nlink: links[num], Size: n.size,
			MtimeNs: n.mtime, Target: n.target, Rdev: n.rdev, Xattrs: n.xattrs, node: n}
		if n.isDir() {
			e.Nlink = 2
			for _, c := range n.children {
				if nodes[c].isDir() {
					e.Nlink++
				}
			}
		}
		if err := fn(e); err != nil {
			return err
		}
		names := make([]string, 0, len(n.children))
		for name := range n.children {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if err := walk(n.children[name], joinPath(path, name)); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(0, root)
}

// Same reports whether e and o are the same apart from their modification
// times: type, mode, owner, size, content, target, device number and xattrs. It compares
// the stored bytes directly, without hashing.
func (e *SubtreeEntry) Same(o *SubtreeEntry) bool {
	if e.Mode != o.Mode || e.UID != o.UID || e.GID != o.GID || e.Nlink != o.Nlink || e.Target != o.Target || e.Rdev != o.Rdev ||
		len(e.Xattrs) != len(o.Xattrs) || (!e.IsDir() && e.Size != o.Size) {
		return false
	}
	for name, v := range e.Xattrs {
		if w, ok := o.Xattrs[name]; !ok || string(v) != string(w) {
			return false
		}
	}
	if e.IsDir() {
		return true
	}
	for idx, c := range e.node.chunks {
		if string(trimZeros(c)) != string(trimZeros(o.node.chunks[idx])) {
			return false
		}
	}
	for idx, c := range o.node.chunks {
		if _, ok := e.node.chunks[idx]; !ok && len(trimZeros(c)) > 0 {
			return false
		}
	}
	return true
}
