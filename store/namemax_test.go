package store

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

// TestNameMax: the cap refuses longer names in every entry-naming
// mutation and lookup, statfs reports it, and a store written with a
// raised cap reopens with the default one without losing a name.
func TestNameMax(t *testing.T) {
	long := strings.Repeat("n", 1024)
	def := OpenMemory(Options{})
	if _, err := def.Create(RootIno, strings.Repeat("n", MaxNameLen), 0o644, 0, 0); err != nil {
		t.Fatalf("create a %d-byte name: %v", MaxNameLen, err)
	}
	for name, err := range map[string]error{
		"create": func() error { _, err := def.Create(RootIno, long, 0o644, 0, 0); return err }(),
		"mkdir":  func() error { _, err := def.Mkdir(RootIno, long, 0o755, 0, 0); return err }(),
		"lookup": func() error { _, err := def.Lookup(RootIno, long); return err }(),
		"rename": def.Rename(RootIno, strings.Repeat("n", MaxNameLen), RootIno, long, 0),
	} {
		if !errors.Is(err, syscall.ENAMETOOLONG) {
			t.Errorf("%s with a 1024-byte name under the default cap: %v, want ENAMETOOLONG", name, err)
		}
	}
	if got := def.Statfs().Namelen; got != MaxNameLen {
		t.Errorf("statfs namelen %d, want %d", got, MaxNameLen)
	}

	dir := t.TempDir()
	raised, err := Open(dir, Options{Sync: SyncNone, NameMax: NameMaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raised.Create(RootIno, long, 0o644, 0, 0); err != nil {
		t.Fatalf("create a 1024-byte name under a raised cap: %v", err)
	}
	if _, err := raised.Create(RootIno, strings.Repeat("n", NameMaxLimit+1), 0o644, 0, 0); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("create past NameMaxLimit: %v, want ENAMETOOLONG", err)
	}
	if got := raised.Statfs().Namelen; got != NameMaxLimit {
		t.Errorf("statfs namelen %d, want %d", got, NameMaxLimit)
	}
	if err := raised.Close(); err != nil {
		t.Fatal(err)
	}
	back, err := Open(dir, Options{Sync: SyncNone})
	if err != nil {
		t.Fatalf("reopen with the default cap: %v", err)
	}
	defer back.Close()
	ents, err := back.Readdir(RootIno)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range ents {
		found = found || e.Name == long
	}
	if !found {
		t.Errorf("the 1024-byte name was lost when the store reopened with the default cap")
	}
}
