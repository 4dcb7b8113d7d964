package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestCompactionAcrossRestarts: a store restarted before its log reaches
// the compaction size still compacts once the log of all its runs does
// (issue 13 item 5: 41 restarts, 41 segments, no snapshot).
func TestCompactionAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	const limit = 64 << 10
	opts := Options{CompactBytes: limit, Logf: t.Logf}
	data := bytes.Repeat([]byte("x"), 4<<10)
	for run := range 10 {
		s := mustOpen(t, dir, opts)
		f, err := s.Create(RootIno, "f"+string(rune('a'+run)), 0o644, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 { // about 20 KiB of log per run: under the limit
			if _, err := s.WriteAt(f.Ino, data, int64(i*len(data))); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
	}
	s := mustOpen(t, dir, opts)
	defer s.Close()
	logBytes := func() (n int64) {
		segs, _ := listSegments(dir)
		for _, seg := range segs {
			if st, err := os.Stat(seg.path); err == nil {
				n += st.Size()
			}
		}
		return n
	}
	// Compaction runs in the background: wait until the log on disk is
	// below the limit plus one run's worth.
	if !waitFor(10*time.Second, func() bool { return logBytes() < limit+24<<10 }) {
		segs, _ := listSegments(dir)
		t.Fatalf("10 runs of about 20 KiB of log each with a %d-byte compaction size: %d segments, %d bytes of log", limit, len(segs), logBytes())
	}
	if _, err := os.Stat(filepath.Join(dir, snapshotFile)); err != nil {
		t.Fatalf("no snapshot: %v", err)
	}
}

// TestCoveredSegmentsRemoved: a compaction deletes the segments its
// snapshot covers, and a removal a crash cut short (a segment renamed out
// of the log, half shrunk) is ignored by replay and finished by Open.
func TestCoveredSegmentsRemoved(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{CompactBytes: -1})
	f, err := s.Create(RootIno, "f", 0o644, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("covered "), 1<<10)
	for i := range 8 {
		if _, err := s.WriteAt(f.Ino, data, int64(i*len(data))); err != nil {
			t.Fatal(err)
		}
	}
	segs, err := listSegments(dir)
	if err != nil || len(segs) != 1 {
		t.Fatalf("before compaction: segments %v, %v", segs, err)
	}
	first, err := os.ReadFile(segs[0].path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	leftovers := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, "*"+coveredSuffix))
		return m
	}
	if after, _ := listSegments(dir); len(after) != 1 || after[0].start <= segs[0].start || len(leftovers()) > 0 {
		t.Fatalf("after compaction: segments %v (the covered one started at %d), leftovers %v", after, segs[0].start, leftovers())
	}
	if _, err := s.WriteAt(f.Ino, []byte("after"), 0); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// The covered segment as a crash in its removal leaves it: renamed,
	// cut in the middle of a record, and larger than one shrink step.
	gone := segs[0].path + coveredSuffix
	if err := os.WriteFile(gone, first[:len(first)/2+3], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(gone, shrinkStep*5/2); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, Options{CompactBytes: -1})
	defer s.Close()
	if rec := s.Recovery(); rec.SkippedBytes != 0 || rec.CutBytes != 0 {
		t.Fatalf("replay read the half-removed segment: %+v", rec)
	}
	if m := leftovers(); len(m) > 0 {
		t.Fatalf("Open left %v", m)
	}
	want := append([]byte("after"), data[5:]...)
	got := make([]byte, len(want))
	if n, err := s.ReadAt(f.Ino, got, 0); err != nil || !bytes.Equal(got[:n], want) {
		t.Fatalf("file after reopen: %d bytes, %v; first bytes %q", n, err, got[:16])
	}
}
