// Package store is the bridge's file store: an event-sourced filesystem.
//
// # Two layers
//
// The speed layer is an in-memory tree of inodes (directories, regular
// files with sparse chunked data, symlinks, hard links, xattrs). The event
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
	"io"
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

// checkNameLen refuses, before it is logged, an event naming an entry
// longer than the cap (xattr events name an attribute, not an entry).
func (s *Store) checkNameLen(ev *event) error {
	switch ev.kind {
	case evMkdir, evCreate, evSymlink, evUnlink, evRmdir, evLink, evRename:
		if len(ev.name) > s.nameMax() || len(ev.newName) > s.nameMax() {
			return syscall.ENAMETOOLONG
		}
	}
	return nil
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

// mutate applies ev and waits until it is durable.
func (s *Store) mutate(ev *event) error {
	s.busy.Add(1)
	defer func() {
		s.progress.Add(1)
		s.busy.Add(-1)
	}()
	s.mu.Lock()
	lsn, err := s.applyLocked(ev)
	w := s.wal
	s.mu.Unlock()
	if err != nil || w == nil {
		return err
	}
	if err := w.wait(lsn); err != nil {
		return fmt.Errorf("%w: %v", syscall.EIO, err)
	}
	s.maybeCompact()
	return nil
}

// applyLocked applies ev and appends it to the log; s.mu is held.
func (s *Store) applyLocked(ev *event) (uint64, error) {
	if s.closed {
		return 0, syscall.EIO
	}
	if s.wal != nil {
		s.wal.mu.Lock()
		err := s.wal.err
		s.wal.mu.Unlock()
		if err != nil {
			return 0, syscall.EIO
		}
	}
	if err := s.checkNameLen(ev); err != nil {
		return 0, err
	}
	if err := s.t.apply(ev); err != nil {
		return 0, err
	}
	if len(s.groups) > 0 {
		ev.group = s.groupOf(ev)
	}
	if s.wal == nil {
		return 0, nil
	}
	e := enc{b: make([]byte, 0, 64+len(ev.data)+len(ev.name)+len(ev.newName))}
	ev.encode(&e)
	lsn, err := s.wal.append(e.b)
	if err != nil {
		return 0, syscall.EIO
	}
	return lsn, nil
}

// create makes a new node of kind (evMkdir, evCreate or evSymlink).
func (s *Store) create(kind evKind, parent uint64, name string, mode, uid, gid uint32, target string) (Attr, error) {
	ev := &event{kind: kind, parent: parent, name: name, mode: mode, uid: uid, gid: gid, data: []byte(target), time: s.now()}
	s.mu.Lock()
	ev.ino = s.t.nextIno
	lsn, err := s.applyLocked(ev)
	var a Attr
	if err == nil {
		a = s.t.nodes[ev.ino].attr()
	}
	w := s.wal
	s.mu.Unlock()
	if err != nil {
		return Attr{}, err
	}
	if w != nil {
		if err := w.wait(lsn); err != nil {
			return Attr{}, fmt.Errorf("%w: %v", syscall.EIO, err)
		}
		s.maybeCompact()
	}
	return a, nil
}

// Mkdir creates directory name in parent.
func (s *Store) Mkdir(parent uint64, name string, mode, uid, gid uint32) (Attr, error) {
	return s.create(evMkdir, parent, name, mode, uid, gid, "")
}

// Create creates an empty regular file; EEXIST if name exists.
func (s *Store) Create(parent uint64, name string, mode, uid, gid uint32) (Attr, error) {
	return s.create(evCreate, parent, name, mode, uid, gid, "")
}

// Symlink creates a symbolic link to target (stored verbatim).
func (s *Store) Symlink(parent uint64, name, target string, uid, gid uint32) (Attr, error) {
	return s.create(evSymlink, parent, name, 0o777, uid, gid, target)
}

// Link gives node ino another name.
func (s *Store) Link(ino, newParent uint64, newName string) (Attr, error) {
	if err := s.mutate(&event{kind: evLink, ino: ino, newParent: newParent, newName: newName, time: s.now()}); err != nil {
		return Attr{}, err
	}
	return s.Getattr(ino)
}

// Unlink removes a non-directory name.
func (s *Store) Unlink(parent uint64, name string) error {
	return s.mutate(&event{kind: evUnlink, parent: parent, name: name, time: s.now()})
}

// Rmdir removes an empty directory.
func (s *Store) Rmdir(parent uint64, name string) error {
	return s.mutate(&event{kind: evRmdir, parent: parent, name: name, time: s.now()})
}

// Rename moves parent/name to newParent/newName with renameat2 semantics.
func (s *Store) Rename(parent uint64, name string, newParent uint64, newName string, flags uint32) error {
	return s.mutate(&event{kind: evRename, parent: parent, name: name, newParent: newParent, newName: newName, flags: flags, time: s.now()})
}

// Setattr changes the fields named in a.Valid and returns the new attributes.
func (s *Store) Setattr(ino uint64, a SetAttr) (Attr, error) {
	now := s.now()
	ev := &event{kind: evSetattr, ino: ino, valid: a.Valid &^ (SetAtimeNow | SetMtimeNow),
		mode: a.Mode, uid: a.UID, gid: a.GID, size: a.Size, atime: a.Atime, mtime: a.Mtime, time: now}
	if a.Valid&SetAtimeNow != 0 {
		ev.valid |= SetAtime
		ev.atime = now
	}
	if a.Valid&SetMtimeNow != 0 {
		ev.valid |= SetMtime
		ev.mtime = now
	}
	if err := s.mutate(ev); err != nil {
		return Attr{}, err
	}
	return s.Getattr(ino)
}

// OwnRoot gives the root directory to uid:gid unless it is theirs
// already: a new store's root belongs to uid 0, and a server that runs as
// another user mounts with default_permissions, so the kernel would refuse
// its users (and its own probes) every write in the root. The change is an
// event in the log like any chown, so it happens once per store.
func (s *Store) OwnRoot(uid, gid uint32) error {
	a, err := s.Getattr(RootIno)
	if err != nil || (a.UID == uid && a.GID == gid) {
		return err
	}
	_, err = s.Setattr(RootIno, SetAttr{Valid: SetUID | SetGID, UID: uid, GID: gid})
	return err
}

// WriteAt writes p at off in file ino.
func (s *Store) WriteAt(ino uint64, p []byte, off int64) (int, error) {
	if len(p) == 0 {
		_, err := s.Getattr(ino)
		return 0, err
	}
	if err := s.mutate(&event{kind: evWrite, ino: ino, off: off, data: p, time: s.now()}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Setxattr sets xattr name on ino (flags: XattrCreate, XattrReplace).
func (s *Store) Setxattr(ino uint64, name string, value []byte, flags uint32) error {
	return s.mutate(&event{kind: evSetxattr, ino: ino, name: name, data: value, flags: flags, time: s.now()})
}

// Removexattr removes xattr name; ENODATA if it is not set.
func (s *Store) Removexattr(ino uint64, name string) error {
	return s.mutate(&event{kind: evRemovexattr, ino: ino, name: name, time: s.now()})
}

// Lookup finds name in directory parent.
func (s *Store) Lookup(parent uint64, name string) (Attr, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, err := s.t.dir(parent)
	if err != nil {
		return Attr{}, err
	}
	if len(name) > s.nameMax() {
		return Attr{}, syscall.ENAMETOOLONG
	}
	n, err := s.t.lookup(p, name)
	if err != nil {
		return Attr{}, err
	}
	return n.attr(), nil
}

// Getattr returns the attributes of ino.
func (s *Store) Getattr(ino uint64) (Attr, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.t.get(ino)
	if err != nil {
		return Attr{}, err
	}
	return n.attr(), nil
}

// ReadAt reads from file ino at off into p; a short count means end of file.
func (s *Store) ReadAt(ino uint64, p []byte, off int64) (int, error) {
	defer s.progress.Add(1)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.t.get(ino)
	if err != nil {
		return 0, err
	}
	if n.isDir() {
		return 0, syscall.EISDIR
	}
	if !n.isReg() || off < 0 {
		return 0, syscall.EINVAL
	}
	return n.readAt(p, off), nil
}

// Readlink returns a symlink's target.
func (s *Store) Readlink(ino uint64) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.t.get(ino)
	if err != nil {
		return "", err
	}
	if !n.isLink() {
		return "", syscall.EINVAL
	}
	return n.target, nil
}

// Readdir lists directory ino: ".", "..", then the names in byte order.
func (s *Store) Readdir(ino uint64) ([]Entry, error) {
	defer s.progress.Add(1)
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, err := s.t.dir(ino)
	if err != nil {
		return nil, err
	}
	return s.t.entries(d), nil
}

// Getxattr returns the value of xattr name; ENODATA if it is not set.
func (s *Store) Getxattr(ino uint64, name string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.t.get(ino)
	if err != nil {
		return nil, err
	}
	if err := checkXattrName(name); err != nil {
		return nil, err
	}
	v, ok := n.xattrs[name]
	if !ok {
		return nil, syscall.ENODATA
	}
	return append([]byte{}, v...), nil
}

// Listxattr returns the xattr names of ino in byte order.
func (s *Store) Listxattr(ino uint64) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.t.get(ino)
	if err != nil {
		return nil, err
	}
	return sortedKeys(n.xattrs), nil
}

// Capacity the store reports through statfs: fixed, so both mounts and
// every replica report the same numbers for the same tree.
const (
	statfsBlocks = 1 << 28 // 1 TiB of 4 KiB blocks
	statfsFiles  = 1 << 24
)

// Statfs reports capacity and use.
func (s *Store) Statfs() Statfs {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var used int64
	for _, n := range s.t.nodes {
		used += (n.allocated() + 4095) / 4096
	}
	free := uint64(max(statfsBlocks-used, 0))
	files := uint64(len(s.t.nodes))
	return Statfs{Bsize: 4096, Blocks: statfsBlocks, Bfree: free, Bavail: free,
		Files: statfsFiles, Ffree: statfsFiles - min(files, statfsFiles), Namelen: uint32(s.nameMax())}
}

// Acquire records an open handle on ino, keeping its data after its last
// name is unlinked until Release.
func (s *Store) Acquire(ino uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.t.get(ino); err != nil {
		return err
	}
	s.t.open[ino]++
	return nil
}

// Release ends a handle taken with Acquire.
func (s *Store) Release(ino uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t.open[ino] <= 1 {
		delete(s.t.open, ino)
		if n, ok := s.t.nodes[ino]; ok && n.nlink == 0 {
			delete(s.t.nodes, ino)
		}
		return
	}
	s.t.open[ino]--
}

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

// Inodes returns the number of live nodes (for tests and metrics).
func (s *Store) Inodes() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.t.nodes)
}
