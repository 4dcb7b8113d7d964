package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestSnapshotProportional: snapshots cost what the data costs, not a
// 64 KiB chunk per file (issue 13 item 3: 1,000 files of 10 bytes made a
// 65.6 MB snapshot).
func TestSnapshotProportional(t *testing.T) {
	s := OpenMemory(Options{})
	d, _ := s.Mkdir(RootIno, "d", 0o755, 0, 0)
	for i := range 1000 {
		f, err := s.Create(d.Ino, fmt.Sprintf("f%04d", i), 0o644, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		s.WriteAt(f.Ino, []byte("0123456789"), 0)
	}
	whole := s.Snapshot()
	sub, err := s.SnapshotSubtree("d")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("1,000 files of 10 bytes: whole-store snapshot %d bytes, subtree snapshot %d bytes", len(whole), len(sub))
	if len(whole) > 1<<20 || len(sub) > 1<<20 {
		t.Fatalf("snapshot of 1,000 ten-byte files: whole %d bytes, subtree %d, want under 1 MiB", len(whole), len(sub))
	}
}

// TestSnapshotVersion1: a snapshot written by the version 1 encoder
// (testdata/snapshot/v1, whole 64 KiB chunks) still restores and opens, to
// the tree it was taken from; the store writes version 2.
func TestSnapshotVersion1(t *testing.T) {
	v1, err := os.ReadFile("testdata/snapshot/v1/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile("testdata/snapshot/v1/dump.txt")
	s := OpenMemory(Options{})
	if err := s.Restore(v1); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, s); got != string(want) {
		t.Fatalf("version 1 snapshot restored:\n%s\nwant:\n%s", got, want)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, snapshotFile), v1, 0o644); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, Options{})
	defer s.Close()
	if got := dump(t, s); got != string(want) {
		t.Fatalf("store opened on a version 1 snapshot:\n%s\nwant:\n%s", got, want)
	}
	v2 := s.Snapshot()
	if string(v2[:len(snapMagic)]) != "LHSNAP02" || len(v2) > len(v1)/10 {
		t.Fatalf("the store writes %q, %d bytes (version 1: %d)", v2[:8], len(v2), len(v1))
	}
}

// TestChunksAgainstModel: random writes, truncates and reads of one file
// against a plain byte slice, across chunk boundaries, through a snapshot
// round trip: chunks hold only the bytes up to the last written.
func TestChunksAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := OpenMemory(Options{})
	f, _ := s.Create(RootIno, "f", 0o644, 0, 0)
	var model []byte
	for i := range 3000 {
		switch r.IntN(3) {
		case 0, 1:
			off := r.IntN(4 * chunkSize)
			p := make([]byte, 1+r.IntN(chunkSize+100))
			for j := range p {
				p[j] = byte(1 + r.IntN(255))
			}
			if _, err := s.WriteAt(f.Ino, p, int64(off)); err != nil {
				t.Fatal(err)
			}
			if end := off + len(p); end > len(model) {
				model = append(model, make([]byte, end-len(model))...)
			}
			copy(model[off:], p)
		case 2:
			size := r.IntN(4 * chunkSize)
			if _, err := s.Setattr(f.Ino, SetAttr{Valid: SetSize, Size: int64(size)}); err != nil {
				t.Fatal(err)
			}
			if size < len(model) {
				model = model[:size]
			} else {
				model = append(model, make([]byte, size-len(model))...)
			}
		}
		if i%100 == 99 {
			c := OpenMemory(Options{})
			if err := c.Restore(s.Snapshot()); err != nil {
				t.Fatal(err)
			}
			s = c
		}
		got := make([]byte, len(model)+10)
		n, err := s.ReadAt(f.Ino, got, 0)
		if err != nil || !bytes.Equal(got[:n], model) {
			t.Fatalf("step %d: read %d bytes (%v), model has %d; first difference at %d", i, n, err, len(model), firstDiff(got[:n], model))
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
