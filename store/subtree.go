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
// mode, uid, gid, size, atime, mtime and ctime, a symlink target, its data
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
	"slices"
	"strings"
	"sync"
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

// checkNode verifies what one node may hold given its kind.
func checkNode(n *node) error {
	switch n.mode & syscall.S_IFMT {
	case syscall.S_IFDIR, syscall.S_IFREG, syscall.S_IFLNK:
	default:
		return fmt.Errorf("file type %o", n.mode&syscall.S_IFMT)
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

// applySubtree replaces the contents of directory ev.ino with the subtree
// snapshot ev.data. The directory keeps its inode and its entry; nodes
// below get the numbers ev.off, ev.off+1, ... in the snapshot's order. Old
// nodes still open become orphans, like unlinked open files.
func (t *tree) applySubtree(ev *event) error {
	d, err := t.dir(ev.ino)
	if err != nil {
		return err
	}
	sub, err := decodeSubtree(ev.data)
	if err != nil {
		return syscall.EINVAL
	}
	old := t.indexSubtree(d, "")
	if err := t.crossLink(old); err != nil {
		return err
	}
	base := uint64(ev.off)
	if base < t.nextIno {
		return syscall.EIO // an inode number reused: the log and the tree disagree
	}
	for _, n := range old.nodes[1:] {
		t.orphan(n)
	}
	d = t.w(d)
	ino := func(i uint64) uint64 {
		if i == 0 {
			return d.ino
		}
		return base + i - 1
	}
	links := make([]uint32, len(sub))
	for _, n := range sub {
		for _, c := range n.children {
			links[c]++
		}
	}
	for i, sn := range sub {
		n := d
		if i > 0 {
			n = t.newNode(&node{ino: ino(uint64(i))})
		}
		n.mode, n.uid, n.gid = sn.mode, sn.uid, sn.gid
		n.size, n.atime, n.mtime, n.ctime = sn.size, sn.atime, sn.mtime, sn.ctime
		n.target, n.xattrs, n.chunks = sn.target, sn.xattrs, sn.chunks
		n.nlink = links[i]
		if sn.isDir() {
			n.nlink = 2
			n.children = make(map[string]uint64, len(sn.children))
			for name, c := range sn.children {
				n.children[name] = ino(c)
				if sub[c].isDir() {
					n.nlink++
				}
			}
		}
	}
	for i, sn := range sub {
		for _, c := range sn.children {
			if sub[c].isDir() {
				t.nodes[ino(c)].parent = ino(uint64(i))
			}
		}
	}
	if next := base + uint64(len(sub)) - 1; next > t.nextIno {
		t.nextIno = next
	}
	return nil
}

// orphan takes n out of the tree: gone, or kept with no name while a
// handle has it open (reads and writes work, as on an unlinked file).
func (t *tree) orphan(n *node) {
	if t.open[n.ino] == 0 {
		delete(t.nodes, n.ino)
		return
	}
	n = t.w(n)
	n.nlink = 0
	if n.isDir() {
		n.children = map[string]uint64{}
	}
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

// RestoreSubtree replaces the directory at path with the subtree snapshot
// snap (from SnapshotSubtree, of this store or another): the directory
// keeps its inode number and its entry in its parent; its attributes,
// xattrs and entries become the snapshot's; the nodes below get new inode
// numbers, never used before in this store. Old nodes that are open stay
// readable and writable as orphans until released.
//
// It is one logged event, acknowledged like any mutation under the sync
// policy (a snapshot too large for one record is made durable by a
// whole-store snapshot instead): after a crash the store has the old
// subtree or the new one. A refused snapshot (ErrBadSnapshot), a path that
// is not a directory, or a file inside with a name outside (ErrCrossLink)
// change nothing. Generation does not change: inode numbers outside the
// subtree stay valid, and the old ones inside are never reused.
func (s *Store) RestoreSubtree(path string, snap []byte) error {
	if _, err := decodeSubtree(snap); err != nil {
		return err
	}
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	s.mu.Lock()
	bySnapshot := s.wal != nil && len(snap) > subtreeRecordMax
	if bySnapshot {
		// Made durable by a whole-store snapshot: no group half applied.
		s.quiesceGroupsLocked()
	}
	unlock := func() {
		if bySnapshot {
			s.resumeGroupsLocked()
		}
		s.mu.Unlock()
	}
	d, err := s.t.resolveDir(path)
	if err == nil {
		err = s.t.crossLink(s.t.indexSubtree(d, path))
	}
	if err != nil {
		unlock()
		return err
	}
	change := SubtreeChange{Path: path, Dir: d.ino, Names: sortedKeys(d.children)}
	ev := &event{kind: evRestoreSubtree, ino: d.ino, off: int64(s.t.nextIno), data: snap, time: s.now()}
	var lsn, snapLSN uint64
	if bySnapshot {
		snapLSN, err = s.restoreBySnapshot(ev)
	} else {
		lsn, err = s.applyLocked(ev)
	}
	if err == nil {
		change.Names = mergeNames(change.Names, sortedKeys(s.t.nodes[d.ino].children))
	}
	w := s.wal
	unlock()
	if err != nil {
		return err
	}
	if snapLSN != 0 {
		s.dropCovered(w, snapLSN)
	}
	if w != nil && lsn != 0 {
		if err := w.wait(lsn); err != nil {
			return fmt.Errorf("%w: %v", syscall.EIO, err)
		}
	}
	s.watchers.notify(change)
	s.maybeCompact()
	return nil
}

// SubtreeChange tells a FUSE adapter what RestoreSubtree replaced, so it
// can drop what the kernel caches: the directory (at Path, inode Dir) has
// new attributes, and each of Names (its entries before and after, sorted)
// may now be another node or none.
type SubtreeChange struct {
	Path  string
	Dir   uint64
	Names []string
}

// OnSubtreeReplaced calls fn after every RestoreSubtree, once it is
// durable and before it returns; cancel stops it. A FUSE adapter uses it
// to invalidate the kernel's entries, which it may cache even with every
// timeout 0 (bazil gives mkdir, symlink and link replies a fixed minute).
func (s *Store) OnSubtreeReplaced(fn func(SubtreeChange)) (cancel func()) {
	return s.watchers.add(fn)
}

// watchers are the OnSubtreeReplaced callbacks.
type watchers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(SubtreeChange)
}

func (w *watchers) add(fn func(SubtreeChange)) func() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = map[int]func(SubtreeChange){}
	}
	id := w.next
	w.next++
	w.fns[id] = fn
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.fns, id)
	}
}

func (w *watchers) notify(c SubtreeChange) {
	w.mu.Lock()
	fns := make([]func(SubtreeChange), 0, len(w.fns))
	for _, fn := range w.fns {
		fns = append(fns, fn)
	}
	w.mu.Unlock()
	for _, fn := range fns {
		fn(c)
	}
}

// mergeNames returns the sorted union of two sorted lists.
func mergeNames(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// restoreBySnapshot applies ev to the tree and makes it durable with a
// whole-store snapshot (no log record), and returns the LSN the snapshot
// covers (its log segments go with dropCovered, after the lock): s.mu and
// compactMu are held. If the snapshot cannot be written the tree is ahead
// of the disk, so the log is failed: every later mutation fails until the
// store is reopened.
func (s *Store) restoreBySnapshot(ev *event) (uint64, error) {
	if s.closed {
		return 0, syscall.EIO
	}
	lsn, err := s.wal.rotate()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", syscall.EIO, err)
	}
	if err := s.t.apply(ev); err != nil {
		return 0, err
	}
	if err := s.installSnapshot(s.t, lsn); err != nil {
		s.wal.fail(err)
		return 0, fmt.Errorf("%w: %v", syscall.EIO, err)
	}
	return lsn, nil
}
