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
