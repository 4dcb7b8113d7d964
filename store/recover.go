package store

// Recovery: the tree rebuilt from the snapshot and the log, telling a torn
// tail (cut: it holds no acknowledged record) from damage before the end
// (refused, or moved aside by a repair that keeps a copy and says so).

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"
)

// ErrLogDamaged means a log record before the end of the log is damaged
// while intact records follow it: replaying past it is impossible, and
// cutting there would drop acknowledged records. Errors wrapping it are
// *DamageError.
var ErrLogDamaged = errors.New("log damaged before its end")

// DamageError says where the log is damaged and how to repair it.
type DamageError struct {
	Dir      string // the store's directory
	Segment  string // the damaged segment's file name
	Offset   int64  // where the damage starts in it
	AfterLSN uint64 // the last record replayed before the damage
	NextLSN  uint64 // the first intact record after it
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("%v: log segment %s is damaged at offset %d: records up to lsn %d are intact and intact records from lsn %d follow the damage, "+
		"so opening would drop acknowledged records; the store refuses to open. "+
		"To keep what precedes the damage and move everything after it aside (a copy is kept in %s): lighthouse store repair --dir %s",
		ErrLogDamaged, e.Segment, e.Offset, e.AfterLSN, e.NextLSN, filepath.Join(e.Dir, quarantineDir), e.Dir)
}

func (e *DamageError) Unwrap() error { return ErrLogDamaged }

// DataLoss records a repair that moved acknowledged records aside: kept in
// the store's directory (dataloss.json) until the tree is replaced from a
// good copy (Restore) or an operator clears it (ClearDataLoss).
type DataLoss struct {
	Time       time.Time `json:"time"`
	Segment    string    `json:"segment"`    // the damaged segment
	Offset     int64     `json:"offset"`     // where the damage started
	AfterLSN   uint64    `json:"after_lsn"`  // the last record kept
	Bytes      int64     `json:"bytes"`      // bytes of log moved aside
	Quarantine string    `json:"quarantine"` // the directory holding them
}

const (
	dataLossFile  = "dataloss.json"
	quarantineDir = "quarantine"
)

// errTorn marks a record that is cut short or fails its checksum.
var errTorn = errors.New("torn or corrupt record")

// readRecords calls fn for each intact record of data from off on. It
// returns the offset just past the last intact record, and errTorn if
// something that is not a record follows it (or fn's error).
func readRecords(data []byte, off int64, fn func(lsn uint64, payload []byte) error) (int64, error) {
	for int64(len(data)) > off {
		n, ok := recordAt(data, off)
		if !ok {
			return off, errTorn
		}
		rest := data[off:]
		if err := fn(binary.LittleEndian.Uint64(rest[8:]), rest[recHeader:recHeader+n]); err != nil {
			return off, err
		}
		off += recHeader + int64(n)
	}
	return off, nil
}

// recordAt reports whether an intact record starts at off, and its
// payload length.
func recordAt(data []byte, off int64) (uint32, bool) {
	rest := data[off:]
	if len(rest) < recHeader {
		return 0, false
	}
	n := binary.LittleEndian.Uint32(rest[0:])
	if n > maxRecord || int64(len(rest)) < recHeader+int64(n) {
		return 0, false
	}
	return n, crc32.Checksum(rest[8:recHeader+n], castagnoli) == binary.LittleEndian.Uint32(rest[4:])
}

// nextIntact finds the first intact record at or after off.
func nextIntact(data []byte, off int64) (at int64, lsn uint64, ok bool) {
	for ; off+recHeader <= int64(len(data)); off++ {
		if _, ok := recordAt(data, off); ok {
			return off, binary.LittleEndian.Uint64(data[off+8:]), true
		}
	}
	return 0, 0, false
}

// damage is where replay stopped: segment i at offset off.
type damage struct {
	i   int
	off int64
}

// recover rebuilds the tree from the snapshot and the log segments after
// it. A bad record with nothing intact after it is a torn tail: cut. A bad
// record followed by intact records that continue the sequence (the
// damaged bytes held only records the snapshot covers) is skipped. Any
// other bad record is a *DamageError, unless opts.Repair: then everything
// from it on is moved to the quarantine directory and recorded as data
// loss.
func (s *Store) recover() error {
	t, snapLSN, err := loadSnapshot(filepath.Join(s.dir, snapshotFile), s.now())
	if err != nil {
		return err
	}
	segs, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	rec := Recovery{SnapshotLSN: snapLSN, LastLSN: snapLSN}
	ended, err := groupEnds(segs)
	if err != nil {
		return err
	}
	rec.GroupsEnded = len(ended)
	replay := func(lsn uint64, payload []byte) error {
		if lsn <= rec.LastLSN {
			return nil // covered by the snapshot
		}
		if lsn != rec.LastLSN+1 {
			return fmt.Errorf("%w: lsn %d follows %d", errTorn, lsn, rec.LastLSN)
		}
		ev, err := decodeEvent(payload)
		if err != nil {
			return fmt.Errorf("%w: %v", errTorn, err)
		}
		if ev.group != 0 && !ended[ev.group] {
			// Part of an op the process died in the middle of (never
			// acknowledged): the op is undone as a whole.
			rec.LastLSN = lsn
			rec.RolledBack++
			return nil
		}
		if err := t.apply(&ev); err != nil {
			// Applied once live, so it cannot fail now unless the log is
			// not this tree's: say so, keep going.
			s.logf("store: replay lsn %d: %v (skipped)", lsn, err)
		}
		rec.LastLSN = lsn
		rec.Replayed++
		return nil
	}
	stop, err := s.replaySegments(segs, replay, &rec)
	if err != nil {
		return err
	}
	if stop != nil {
		if err := s.cutAt(segs, *stop, &rec); err != nil {
			return err
		}
	}
	if rec.DataLoss, err = readDataLoss(s.dir); err != nil {
		return err
	}
	s.t, s.recovery = t, rec
	return nil
}

// groupEnds lists the groups whose end record is in the log: their events
// are applied on replay, those of any other group are not.
func groupEnds(segs []segment) (map[uint64]bool, error) {
	ended := map[uint64]bool{}
	for _, seg := range segs {
		data, err := os.ReadFile(seg.path)
		if err != nil {
			return nil, err
		}
		for off := int64(0); off < int64(len(data)); {
			n, ok := recordAt(data, off)
			if !ok {
				if off, _, ok = nextIntact(data, off+1); !ok {
					break
				}
				continue
			}
			if p := data[off+recHeader : off+recHeader+int64(n)]; len(p) >= 9 && evKind(p[0]) == evGroupEnd {
				ended[binary.LittleEndian.Uint64(p[1:])] = true
			}
			off += recHeader + int64(n)
		}
	}
	return ended, nil
}

// replaySegments replays every segment, skipping damage that loses
// nothing, and returns where a torn tail or repaired damage starts (nil
// if the log is whole).
func (s *Store) replaySegments(segs []segment, replay func(uint64, []byte) error, rec *Recovery) (*damage, error) {
	for i := 0; i < len(segs); i++ {
		data, err := os.ReadFile(segs[i].path)
		if err != nil {
			return nil, err
		}
		for off := int64(0); ; {
			good, err := readRecords(data, off, replay)
			if err == nil {
				break
			}
			if !errors.Is(err, errTorn) {
				return nil, fmt.Errorf("read %s: %w", segs[i].path, err)
			}
			ni, noff, nlsn, found, err := findIntact(segs, i, data, good)
			if err != nil {
				return nil, err
			}
			switch {
			case !found:
				return &damage{i: i, off: good}, nil // a torn tail
			case nlsn <= rec.LastLSN+1 && (ni != i || noff != good):
				s.warnf("store: skipped %d damaged bytes at offset %d of %s: the records there are covered by the snapshot or replayed already (next intact record lsn %d)",
					int64(len(data))-good, good, filepath.Base(segs[i].path), nlsn)
				rec.SkippedBytes += int64(len(data)) - good
				if ni == i {
					rec.SkippedBytes -= int64(len(data)) - noff
					off = noff
					continue
				}
				i = ni - 1 // go on with segment ni
			case s.opts.Repair:
				return &damage{i: i, off: good}, nil
			default:
				return nil, &DamageError{Dir: s.dir, Segment: filepath.Base(segs[i].path), Offset: good, AfterLSN: rec.LastLSN, NextLSN: nlsn}
			}
			break
		}
	}
	return nil, nil
}

// findIntact finds the first intact record at or after offset off of
// segment i (whose bytes are data), in it or a later segment.
func findIntact(segs []segment, i int, data []byte, off int64) (int, int64, uint64, bool, error) {
	if at, lsn, ok := nextIntact(data, off); ok {
		return i, at, lsn, true, nil
	}
	for j := i + 1; j < len(segs); j++ {
		b, err := os.ReadFile(segs[j].path)
		if err != nil {
			return 0, 0, 0, false, err
		}
		if at, lsn, ok := nextIntact(b, 0); ok {
			return j, at, lsn, true, nil
		}
	}
	return 0, 0, 0, false, nil
}

// cutAt ends the log at d: a torn tail is cut (it holds no acknowledged
// record: a record is acknowledged only once written whole) and any later
// segments, which hold nothing intact, are set aside as .corrupt; damage
// found by a repair is moved to the quarantine directory and recorded as
// data loss.
func (s *Store) cutAt(segs []segment, d damage, rec *Recovery) error {
	seg := segs[d.i]
	st, err := os.Stat(seg.path)
	if err != nil {
		return err
	}
	var later int64
	for _, l := range segs[d.i+1:] {
		if st, err := os.Stat(l.path); err == nil {
			later += st.Size()
		}
	}
	cut := st.Size() - d.off + later
	if s.opts.Repair {
		if _, _, _, found, err := findIntact(segs, d.i, mustRead(seg.path), d.off); err == nil && found {
			return s.quarantine(segs, d, cut, rec)
		}
	}
	if err := os.Truncate(seg.path, d.off); err != nil {
		return fmt.Errorf("cut torn tail of %s: %w", seg.path, err)
	}
	for _, l := range segs[d.i+1:] {
		os.Rename(l.path, l.path+".corrupt")
	}
	rec.CutBytes += cut
	if cut > 0 {
		s.warnf("store: cut a torn log tail: %d bytes after lsn %d at offset %d of %s (nothing intact after it: no acknowledged record lost)",
			cut, rec.LastLSN, d.off, filepath.Base(seg.path))
	}
	return nil
}

func mustRead(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// quarantine moves the log from d on (the rest of its segment and every
// later segment) into quarantine/<time>/, keeping every byte, and records
// the loss in dataloss.json.
func (s *Store) quarantine(segs []segment, d damage, cut int64, rec *Recovery) error {
	now := time.Now().UTC()
	qdir := filepath.Join(s.dir, quarantineDir, now.Format("20060102T150405.000000000Z"))
	if err := os.MkdirAll(qdir, 0o755); err != nil {
		return err
	}
	seg := segs[d.i]
	data, err := os.ReadFile(seg.path)
	if err != nil {
		return err
	}
	tail := filepath.Join(qdir, fmt.Sprintf("%s.from-%d", filepath.Base(seg.path), d.off))
	if err := writeFileAtomic(tail, func(w io.Writer) error { _, err := w.Write(data[d.off:]); return err }); err != nil {
		return fmt.Errorf("quarantine %s: %w", seg.path, err)
	}
	for _, l := range segs[d.i+1:] {
		if err := os.Rename(l.path, filepath.Join(qdir, filepath.Base(l.path))); err != nil {
			return fmt.Errorf("quarantine %s: %w", l.path, err)
		}
	}
	if err := syncDir(qdir); err != nil {
		return err
	}
	if err := os.Truncate(seg.path, d.off); err != nil {
		return fmt.Errorf("cut %s after quarantine: %w", seg.path, err)
	}
	loss := DataLoss{Time: now, Segment: filepath.Base(seg.path), Offset: d.off, AfterLSN: rec.LastLSN, Bytes: cut, Quarantine: qdir}
	if old, err := readDataLoss(s.dir); err == nil && old != nil {
		loss.Bytes += old.Bytes // an earlier repair's loss still stands
	}
	b, _ := json.MarshalIndent(loss, "", "  ")
	if err := writeFileAtomic(filepath.Join(s.dir, dataLossFile), func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return err
	}
	rec.RepairedBytes += cut
	s.warnf("store: REPAIRED a damaged log: moved %d bytes after lsn %d (from offset %d of %s, and every later segment) to %s; the store reports data loss until it is restored from a good copy",
		cut, rec.LastLSN, d.off, filepath.Base(seg.path), qdir)
	return nil
}

// readDataLoss reads dataloss.json, nil if there is none.
func readDataLoss(dir string) (*DataLoss, error) {
	b, err := os.ReadFile(filepath.Join(dir, dataLossFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var loss DataLoss
	if err := json.Unmarshal(b, &loss); err != nil {
		return nil, fmt.Errorf("read %s: %w", dataLossFile, err)
	}
	return &loss, nil
}

// DataLoss is the data loss a repair recorded, nil if none: acknowledged
// records were moved aside, so this store should not be a resync's source
// until restored from a good copy.
func (s *Store) DataLoss() *DataLoss {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.recovery.DataLoss
}

// ClearDataLoss forgets a recorded data loss (the quarantined log stays
// where it is): after the tree was replaced from a good copy, or when an
// operator accepts the loss.
func (s *Store) ClearDataLoss() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clearDataLossLocked()
}

func (s *Store) clearDataLossLocked() error {
	s.recovery.DataLoss = nil
	if s.dir == "" {
		return nil
	}
	if err := os.Remove(filepath.Join(s.dir, dataLossFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(s.dir)
}
