package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// SyncPolicy says when a mutation counts as durable, and so when the store
// acknowledges it. Every policy writes the record to the log file before
// the ack, so a killed process never loses an acknowledged mutation; the
// policies differ in surviving a power cut.
type SyncPolicy string

const (
	// SyncAlways fdatasyncs before every ack. Concurrent mutations that
	// arrive while a sync runs share the next one.
	SyncAlways SyncPolicy = "always"
	// SyncBatch is group commit: the committer waits BatchWindow to gather
	// more mutations, then writes and fdatasyncs them together.
	SyncBatch SyncPolicy = "batch"
	// SyncNone writes before the ack but never syncs (only on snapshot and
	// close): safe against a crash of the process, not of the machine.
	SyncNone SyncPolicy = "none"
)

// ParseSyncPolicy checks a policy name from a flag or config file.
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch p := SyncPolicy(s); p {
	case SyncAlways, SyncBatch, SyncNone:
		return p, nil
	}
	return "", fmt.Errorf("unknown fsync policy %q (want always, batch or none)", s)
}

// Record framing: [u32 payload length][u32 crc32c(lsn+payload)][u64 lsn][payload].
const (
	recHeader    = 16
	maxRecord    = 64 << 20
	segPrefix    = "wal-"
	segSuffix    = ".log"
	defaultBatch = time.Millisecond
)

func segName(start uint64) string { return fmt.Sprintf("%s%020d%s", segPrefix, start, segSuffix) }

// wal is the append-only event log, written by one committer goroutine
// (group commit). Appends are ordered by the caller (the store appends
// under its tree lock, so log order is apply order).
type wal struct {
	dir    string
	policy SyncPolicy
	window time.Duration

	io sync.Mutex // held while writing to f; taken before mu

	mu       sync.Mutex
	cond     *sync.Cond
	f        *os.File
	curStart uint64 // first LSN of the current segment
	segBytes int64  // bytes in the current segment
	oldBytes int64  // bytes in the earlier segments still on disk (not yet covered by a snapshot)
	pending  []byte // records not yet written
	spare    []byte
	last     uint64 // last appended LSN
	durable  uint64 // last LSN acknowledged as durable
	err      error  // sticky: once the log fails, every later mutation fails
	closed   bool

	kick chan struct{}
	done chan struct{}
}

func openWAL(dir string, policy SyncPolicy, window time.Duration, last uint64) (*wal, error) {
	if window <= 0 {
		window = defaultBatch
	}
	w := &wal{dir: dir, policy: policy, window: window, last: last, durable: last,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	if err := w.openSegment(last + 1); err != nil {
		return nil, err
	}
	if err := w.recount(); err != nil {
		w.f.Close()
		return nil, err
	}
	go w.commitLoop()
	return w, nil
}

// recount sets oldBytes from the segments on disk: a store restarted
// before its log reached the compaction size still counts the segments of
// its earlier runs.
func (w *wal) recount() error {
	segs, err := listSegments(w.dir)
	if err != nil {
		return err
	}
	var old int64
	for _, seg := range segs {
		if seg.start == w.curStart {
			continue
		}
		if st, err := os.Stat(seg.path); err == nil {
			old += st.Size()
		}
	}
	w.mu.Lock()
	w.oldBytes = old
	w.mu.Unlock()
	return nil
}

// openSegment starts a new segment whose first record will be start.
func (w *wal) openSegment(start uint64) error {
	f, err := os.OpenFile(filepath.Join(w.dir, segName(start)), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log segment: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return err
	}
	w.f, w.segBytes, w.curStart = f, st.Size(), start
	return nil
}

// append queues one record and returns its LSN. The caller waits for
// durability with wait, after releasing its own locks.
func (w *wal) append(payload []byte) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, ErrClosed
	}
	w.last++
	var h [recHeader]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint64(h[8:], w.last)
	crc := crc32.Update(0, castagnoli, h[8:16])
	crc = crc32.Update(crc, castagnoli, payload)
	binary.LittleEndian.PutUint32(h[4:], crc)
	w.pending = append(append(w.pending, h[:]...), payload...)
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return w.last, nil
}

// wait blocks until lsn is durable under the policy.
func (w *wal) wait(lsn uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.durable < lsn && w.err == nil {
		w.cond.Wait()
	}
	if w.durable >= lsn {
		return nil
	}
	return w.err
}

func (w *wal) commitLoop() {
	defer close(w.done)
	for range w.kick {
		if w.policy == SyncBatch {
			time.Sleep(w.window)
		}
		if w.flush(w.policy != SyncNone) {
			return
		}
	}
}

// flush writes what is pending (and syncs if asked) and reports whether the
// log is closed.
func (w *wal) flush(sync bool) (closed bool) {
	w.io.Lock()
	defer w.io.Unlock()
	w.mu.Lock()
	buf, upto, f := w.pending, w.last, w.f
	w.pending, w.spare = w.spare[:0], nil
	closed = w.closed
	w.mu.Unlock()
	var err error
	if len(buf) > 0 {
		if _, err = f.Write(buf); err == nil && sync {
			err = unix.Fdatasync(int(f.Fd()))
		}
	}
	w.mu.Lock()
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("write log: %w", err)
	}
	if err == nil {
		w.durable = upto
		w.segBytes += int64(len(buf))
	}
	w.spare = buf[:0]
	w.cond.Broadcast()
	w.mu.Unlock()
	return closed
}

// rotate makes everything appended so far durable and starts a new segment,
// returning the last LSN of the old one. The caller holds the store lock,
// so nothing is appended meanwhile.
func (w *wal) rotate() (uint64, error) {
	w.flush(true)
	w.io.Lock()
	defer w.io.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
		return 0, err
	}
	old, oldBytes := w.f, w.segBytes
	if err := w.openSegment(w.last + 1); err != nil {
		w.err = err
		return 0, err
	}
	old.Close()
	w.oldBytes += oldBytes
	return w.last, nil
}

// fail makes the log fail every later append (the tree is ahead of the
// disk and cannot be made durable any more).
func (w *wal) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
	w.cond.Broadcast()
}

// size is the bytes of log a snapshot would cover, every segment still on
// disk, to decide on compaction.
func (w *wal) size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.oldBytes + w.segBytes + int64(len(w.pending))
}

func (w *wal) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	w.flush(true)
	close(w.kick)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		w.cond.Broadcast()
	}
	err := w.f.Close()
	if w.err != nil {
		return w.err
	}
	return err
}

// segment is one log file found on disk.
type segment struct {
	start uint64
	path  string
}

func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix), 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, segment{start: n, path: filepath.Join(dir, name)})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].start < segs[j].start })
	return segs, nil
}

// coveredSuffix marks a segment a snapshot covers whose removal has begun:
// listSegments no longer sees it, so replay ignores it from the rename on.
const coveredSuffix = ".covered"

// shrinkStep is how much of a covered segment one truncation frees.
const shrinkStep = 32 << 20

// removeCovered deletes the segments that start at or before lsn (a
// durable snapshot covers them: segments start after a rotation, so each
// of those ends at or before lsn), and those an earlier removal cut short
// left. Each is renamed out of the log, then shrunk shrinkStep at a time,
// each step made durable before the next, then unlinked. Unlinking a 1 GiB
// segment at once frees all its blocks in one journal commit, and the
// log's own fdatasync, which needs the next commit, waited behind it for
// 100-200 ms (docs/performance.md, "Compaction never blocks writes").
func removeCovered(dir string, lsn uint64) error {
	segs, err := listSegments(dir)
	if err != nil {
		return err
	}
	var errs []error
	renamed := false
	for _, seg := range segs {
		if seg.start > lsn {
			continue
		}
		if err := os.Rename(seg.path, seg.path+coveredSuffix); err != nil {
			errs = append(errs, err)
			continue
		}
		renamed = true
	}
	if renamed {
		// Durable before any shrinking, so a crash never brings a shrunk
		// segment back under its log name.
		if err := syncDir(dir); err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
	covered, err := filepath.Glob(filepath.Join(dir, segPrefix+"*"+segSuffix+coveredSuffix))
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, path := range covered {
		if err := shrinkAndRemove(path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// shrinkAndRemove truncates the file at path shrinkStep at a time, each
// step synced, and unlinks it once empty.
func shrinkAndRemove(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	for size := st.Size(); size > 0; {
		size = max(size-shrinkStep, 0)
		if err := f.Truncate(size); err != nil {
			return err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return err
		}
	}
	return os.Remove(path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}

// writeFileAtomic writes data to path through a synced temporary file and
// a rename, so a crash leaves the old file or the new one, never half.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}
