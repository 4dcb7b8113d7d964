package store

// RestoreSubtree: the subtree replaced in the tree, made durable as one log
// record or a whole-store snapshot, and the FUSE adapters told.

import (
	"fmt"
	"slices"
	"sync"
	"syscall"
)

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
		n.target, n.xattrs, n.chunks, n.rdev = sn.target, sn.xattrs, sn.chunks, sn.rdev
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
