// Package store is the bridge's file store: an event-sourced filesystem.
//
// # Two layers
//
// The speed layer is an in-memory tree of inodes (directories, regular
// files with sparse chunked data, symlinks, special files: FIFOs, sockets
// and devices with their device number; hard links, xattrs). The event
// store is an append-only log of every mutation, each record checksummed,
// plus a snapshot that compacts it. On Open the tree is rebuilt from the
// snapshot and the log; a torn or corrupt tail is cut, never fatal.
//
// # Durability
//
// A mutation is applied to the tree and appended to the log under one
// lock (so log order is apply order), and acknowledged, by returning, only
// when its record is durable under the SyncPolicy. Reads take a shared lock
// that is never held across I/O, so they do not wait for fsync.
//
// # Errors
//
// Filesystem errors are syscall.Errno values (syscall.ENOENT, ...), so each
// FUSE adapter translates them the same way.
//
// # Inode numbers
//
// The root is RootIno; new nodes get increasing numbers that are never
// reused and are recorded in the log, so a replayed store has the numbers
// the live one had. Both adapters report these numbers to the kernel.
package store

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RootIno is the root directory's inode number.
const RootIno uint64 = 1

// Rename and xattr flags, with Linux's values.
const (
	RenameNoReplace = 1 << 0
	RenameExchange  = 1 << 1
	XattrCreate     = 1
	XattrReplace    = 2
)

// Setattr fields (SetAttr.Valid).
const (
	SetMode uint32 = 1 << iota
	SetUID
	SetGID
	SetSize
	SetAtime
	SetMtime
	SetAtimeNow
	SetMtimeNow
)

var (
	// ErrClosed is returned by mutations after Close.
	ErrClosed = errors.New("store closed")
	// ErrLocked means another process has the data directory open.
	ErrLocked = errors.New("data directory in use by another process")
)

// Attr is what stat reports about a node. Times are nanoseconds since the
// Unix epoch.
type Attr struct {
	Ino                 uint64
	Mode                uint32 // file type and permission bits, as st_mode
	Nlink               uint32
	UID, GID            uint32
	Size                int64
	Blocks              int64 // 512-byte blocks allocated
	Atime, Mtime, Ctime int64
	Rdev                uint64 // character and block devices: the device number (st_rdev); 0 for others
}

// SetAttr is a setattr request: only the fields named in Valid change.
type SetAttr struct {
	Valid        uint32
	Mode         uint32 // permission bits; the file type never changes
	UID, GID     uint32
	Size         int64
	Atime, Mtime int64 // ns; SetAtimeNow and SetMtimeNow use the store's clock
}

// Entry is one directory entry. Mode holds only the file type bits.
type Entry struct {
	Name string
	Ino  uint64
	Mode uint32
}

// Statfs describes the store's capacity.
type Statfs struct {
	Bsize                uint32
	Blocks, Bfree        uint64
	Bavail, Files, Ffree uint64
	Namelen              uint32
}

// Options configure a Store. The zero value is valid.
type Options struct {
	// Sync is the fsync policy; empty means SyncAlways.
	Sync SyncPolicy
	// BatchWindow is how long SyncBatch gathers mutations; 0 means 1 ms.
	BatchWindow time.Duration
	// CompactBytes: when the log passes this size, a snapshot replaces it.
	// 0 means 64 MiB; negative never compacts automatically.
	CompactBytes int64
	// Logf reports recovery and compaction; nil means log.Printf.
	Logf func(format string, args ...any)
	// Warnf reports what recovery cut, skipped or repaired; nil means Logf.
	Warnf func(format string, args ...any)
	// Repair lets Open move a damaged log, from the damage on, to the
	// quarantine directory (a copy of every byte) and record the data
	// loss, instead of refusing with a *DamageError.
	Repair bool
	// Now is the clock for timestamps; nil means time.Now.
	Now func() time.Time
	// NameMax is the longest name a new entry or a lookup may use (longer
	// is ENAMETOOLONG, and statfs reports it); 0 means MaxNameLen, ext4's
	// 255. At most NameMaxLimit. The conformance suite raises it above the
	// kernel's FUSE limit so that each library's own limit shows.
	NameMax int
}

// nameMax is the name cap in force.
func (s *Store) nameMax() int {
	if s.opts.NameMax <= 0 {
		return MaxNameLen
	}
	return min(s.opts.NameMax, NameMaxLimit)
}

// Recovery says what Open found on disk.
type Recovery struct {
	SnapshotLSN uint64 // the LSN the snapshot covered (0: no snapshot)
	Replayed    int    // log records applied on top of it
	LastLSN     uint64
	// CutBytes: a torn tail cut (a bad record with nothing intact after
	// it, so no acknowledged record: under every policy a record is
	// acknowledged only after it was written whole).
	CutBytes int64
	// SkippedBytes: damaged bytes passed over because the records after
	// them continue the sequence (the snapshot covers what they held).
	SkippedBytes int64
	// RepairedBytes: log moved to the quarantine by this Open (Repair).
	RepairedBytes int64
	// RolledBack: records of atomic groups with no end record (an op
	// the process died in) that replay did not apply.
	RolledBack int
	// GroupsEnded: atomic groups (write_files) whose end record the log
	// since the snapshot holds.
	GroupsEnded int
	// DataLoss is a repair's record, this Open's or an earlier one's,
	// until the tree is restored from a good copy (nil: none).
	DataLoss *DataLoss
}

// Store is an event-sourced filesystem tree. It is safe for concurrent use.
type Store struct {
	opts Options
	dir  string // "" for a memory-only store
	lock *os.File

	mu  sync.RWMutex
	t   *tree
	wal *wal

	closed     bool // guarded by mu
	compactMu  sync.Mutex
	compacting atomic.Bool
	gen        atomic.Uint64
	// progress counts the calls that moved data (mutations once durable or
	// failed, reads of file data and directories): Progress.
	progress atomic.Uint64
	busy     atomic.Int64 // mutations running (waiting on the disk included)
	recovery Recovery
	watchers watchers // OnSubtreeReplaced
	// Open atomic groups (group.go), guarded by mu; groupsPaused keeps
	// new ones from beginning while a snapshot is taken; gcond signals.
	groups       []*Group
	groupsPaused int
	gcond        sync.Cond
	// compactLock is how long the last compaction held the tree lock
	// (ns): writes wait at most that long for it.
	compactLock atomic.Int64
}

const snapshotFile = "snapshot"

// OpenMemory returns a store with no log: nothing survives the process.
func OpenMemory(opts Options) *Store {
	s := &Store{opts: opts}
	s.t = newTree(s.now())
	return s
}

// Open opens (or creates) the store kept in dir, replaying its snapshot and
// log. Only one process may have dir open at a time.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Sync == "" {
		opts.Sync = SyncAlways
	}
	if _, err := ParseSyncPolicy(string(opts.Sync)); err != nil {
		return nil, err
	}
	if opts.CompactBytes == 0 {
		opts.CompactBytes = 64 << 20
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, ErrLocked)
	}
	s := &Store{opts: opts, dir: dir, lock: lock}
	if err := s.recover(); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	w, err := openWAL(dir, opts.Sync, opts.BatchWindow, s.recovery.LastLSN)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s.wal = w
	// A removal of covered segments cut short by a crash left files that
	// replay already ignores: finish it.
	if err := removeCovered(dir, 0); err != nil {
		s.logf("store: removing log segments a snapshot covers: %v", err)
	}
	if s.recovery.LastLSN == 0 {
		// A new store: log the root's times, which no other event carries,
		// so a replayed root is the root that was served.
		now := s.now()
		if _, err := s.Setattr(RootIno, SetAttr{Valid: SetAtime | SetMtime, Atime: now, Mtime: now}); err != nil {
			s.Close()
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	}
	s.maybeCompact() // the log of earlier runs may be over the size already
	return s, nil
}

func (s *Store) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
		return
	}
	log.Printf(format, args...)
}

func (s *Store) warnf(format string, args ...any) {
	if s.opts.Warnf != nil {
		s.opts.Warnf(format, args...)
		return
	}
	s.logf(format, args...)
}

func (s *Store) now() int64 {
	if s.opts.Now != nil {
		return s.opts.Now().UnixNano()
	}
	return time.Now().UnixNano()
}

// Recovery reports what Open replayed.
func (s *Store) Recovery() Recovery {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.recovery
}

// Generation changes whenever Restore replaces the whole tree: inode numbers
// from an older generation mean nothing.
func (s *Store) Generation() uint64 { return s.gen.Load() }

// Close flushes the log and releases the data directory, after a
// compaction that is running.
func (s *Store) Close() error {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var err error
	if s.wal != nil {
		err = s.wal.close()
		s.wal = nil
	}
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
	return err
}

// Progress is a counter that grows whenever a mutation finishes (durable
// or failed) or file data or a directory is read: a caller waiting on an
// op through a mount over this store tells a slow mount (the counter
// moves) from a stuck one (it does not).
func (s *Store) Progress() uint64 { return s.progress.Load() }

// Busy says whether a mutation is running, waiting for the disk included:
// the store is working, so an op waiting on it is slow, not stuck.
func (s *Store) Busy() bool { return s.busy.Load() > 0 }

// Sync makes every acknowledged mutation durable on disk, whatever the
// policy (fsync(2) on a file in the store).
func (s *Store) Sync() error {
	s.mu.RLock()
	w := s.wal
	s.mu.RUnlock()
	if w == nil {
		return nil
	}
	w.flush(true)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return fmt.Errorf("%w: %v", syscall.EIO, w.err)
	}
	return nil
}

// Inodes returns the number of live nodes (for tests and metrics).
func (s *Store) Inodes() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.t.nodes)
}
