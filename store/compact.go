package store

// Compaction and whole-store snapshots: the tree lock is held only to
// rotate the log and freeze a view; the snapshot is written from the view
// and the log it covers removed while mutations go on.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// maybeCompact starts a background compaction when the log is large.
func (s *Store) maybeCompact() {
	if s.opts.CompactBytes < 0 || s.compacting.Load() {
		return
	}
	s.mu.RLock()
	w := s.wal
	s.mu.RUnlock()
	if w == nil || w.size() < s.opts.CompactBytes {
		return
	}
	if s.compacting.CompareAndSwap(false, true) {
		go func() {
			defer s.compacting.Store(false)
			if err := s.Compact(); err != nil && !errors.Is(err, ErrClosed) {
				s.logf("store: compaction: %v", err)
			}
		}()
	}
}

// Compact writes a snapshot of the tree and deletes the log it covers.
func (s *Store) Compact() error {
	if s.dir == "" {
		return nil
	}
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	// Under the lock only the log's rotation and a frozen view of the
	// tree: the snapshot is encoded and written from the view while
	// mutations go on.
	// Open atomic groups end first: a view with half a group would keep
	// that half after a crash.
	s.mu.Lock()
	s.quiesceGroupsLocked()
	locked := time.Now()
	if s.wal == nil {
		s.resumeGroupsLocked()
		s.mu.Unlock()
		return ErrClosed
	}
	lsn, err := s.wal.rotate()
	if err != nil {
		s.resumeGroupsLocked()
		s.mu.Unlock()
		return err
	}
	view, w := s.t.freeze(), s.wal
	s.resumeGroupsLocked()
	s.mu.Unlock()
	s.compactLock.Store(int64(time.Since(locked)))
	if err := s.installSnapshot(view, lsn); err != nil {
		return err
	}
	s.dropCovered(w, lsn)
	return nil
}

// installSnapshot makes the snapshot of t (covering lsn) the on-disk
// base. t is not changed meanwhile (a frozen view, or the tree under the
// store's lock). The segments it covers stay until dropCovered.
func (s *Store) installSnapshot(t *tree, lsn uint64) error {
	if err := writeFileAtomic(filepath.Join(s.dir, snapshotFile), func(f io.Writer) error {
		return writeSnapshot(&syncingWriter{w: f}, t, lsn)
	}); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// dropCovered deletes the log segments that a durable snapshot covering
// lsn made redundant (removeCovered: slowly, so the log's own fdatasync
// does not wait for it) and recounts w's size. It runs without the
// store's lock. A segment it fails to delete only takes disk space
// (replay skips what a snapshot covers) and is tried again at the next
// compaction, so a failure is logged, not returned: the snapshot is in.
func (s *Store) dropCovered(w *wal, lsn uint64) {
	if err := removeCovered(s.dir, lsn); err != nil {
		s.logf("store: removing log segments a snapshot covers: %v (tried again at the next compaction)", err)
	}
	if err := w.recount(); err != nil {
		s.logf("store: counting the log: %v", err)
	}
}

// syncingWriter writes a snapshot file and flushes it to disk every
// syncEvery bytes, so the kernel never holds a large store's snapshot as
// dirty pages to write back at once: the log's own fdatasync would wait
// behind that.
type syncingWriter struct {
	w       io.Writer
	pending int
}

const syncEvery = 16 << 20

func (s *syncingWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.pending += n
	if f, ok := s.w.(*os.File); ok && err == nil && s.pending >= syncEvery {
		s.pending = 0
		err = unix.Fdatasync(int(f.Fd()))
	}
	return n, err
}

// CompactLockHeld is how long the last compaction held the tree lock:
// the longest a mutation waited for it.
func (s *Store) CompactLockHeld() time.Duration { return time.Duration(s.compactLock.Load()) }

// Snapshot returns the whole tree in snapshot form, for export; its last
// four bytes are its checksum (see Checksum).
//
// It is encoded from a frozen view of the tree, so mutations do not wait
// for it.
func (s *Store) Snapshot() []byte {
	s.mu.Lock()
	var lsn uint64
	if s.wal != nil {
		s.wal.mu.Lock()
		lsn = s.wal.last
		s.wal.mu.Unlock()
	}
	view := s.t.freeze()
	s.mu.Unlock()
	return encodeSnapshot(view, lsn)
}

// Restore replaces the whole tree with snap (from Snapshot) atomically: on
// error nothing changed. Every inode number and open handle of the old tree
// is invalid afterwards; Generation tells.
func (s *Store) Restore(snap []byte) error {
	t, _, err := decodeSnapshot(snap)
	if err != nil {
		return err
	}
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	w, lsn, err := s.replaceTree(t)
	if lsn != 0 {
		s.dropCovered(w, lsn) // after the lock
	}
	return err
}

// replaceTree makes t the tree, durable first as a snapshot covering the
// log so far (lsn; 0 if it was not written): Restore's part under s.mu.
func (s *Store) replaceTree(t *tree) (w *wal, lsn uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w = s.wal
	if w != nil {
		if lsn, err = w.rotate(); err != nil {
			return nil, 0, err
		}
		// Re-encode under our own LSN so replay skips the old log.
		if err := s.installSnapshot(t, lsn); err != nil {
			return nil, 0, err
		}
	}
	s.t = t
	s.gen.Add(1)
	// The tree came from a good copy: a repaired loss no longer shows.
	return w, lsn, s.clearDataLossLocked()
}
