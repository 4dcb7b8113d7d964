package store

import (
	"bytes"
	"sync"
	"testing"
)

// TestFrozenViewUnchanged: a frozen view encodes to the same bytes after
// any number of mutations of the live tree (every kind the crash workload
// makes, subtree restores included): the copy-on-write copies what it
// changes.
func TestFrozenViewUnchanged(t *testing.T) {
	s := OpenMemory(Options{})
	populate(t, s)
	for k := range 300 {
		mutation(s, k)
	}
	s.mu.Lock()
	view := s.t.freeze()
	s.mu.Unlock()
	before := encodeSnapshot(view, 7)
	for k := 300; k < 1500; k++ {
		mutation(s, k)
		if k%200 == 0 { // views of views
			s.mu.Lock()
			s.t.freeze()
			s.mu.Unlock()
		}
	}
	if after := encodeSnapshot(view, 7); !bytes.Equal(before, after) {
		t.Fatal("the frozen view changed with the live tree")
	}
	if live := encodeSnapshot(s.t, 7); bytes.Equal(before, live) {
		t.Fatal("the live tree did not change (the test tests nothing)")
	}
}

// TestCompactWhileWriting: compactions and exports run while writers
// change the tree (run with -race: the snapshot is read without the lock);
// a reopen gives the live tree.
func TestCompactWhileWriting(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{Sync: SyncNone, CompactBytes: -1})
	populate(t, s)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := range 2000 {
			mutation(s, k)
		}
	}()
	for range 5 {
		if err := s.Compact(); err != nil {
			t.Fatal(err)
		}
		if err := OpenMemory(Options{}).Restore(s.Snapshot()); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	want := dump(t, s)
	s.Close()
	s = mustOpen(t, dir, Options{})
	defer s.Close()
	if got := dump(t, s); got != want {
		t.Fatalf("after compactions during writes and a reopen:\n%s\nwant:\n%s", got, want)
	}
}
