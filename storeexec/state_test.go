package storeexec_test

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/store"
	"github.com/lighthouse-fs/lighthouse/storeexec"
)

// TestState: State reports lstat, the content digest, the symlink target
// and the xattrs of a name, tells apart states that differ in any of
// them, and changes nothing.
func TestState(t *testing.T) {
	st := store.OpenMemory(store.Options{})
	ex := storeexec.New(st)
	t.Cleanup(func() { ex.Close() })
	do := func(op fsop.Op) {
		t.Helper()
		res, err := ex.Exec(&op)
		if err != nil || res.Errno != "" {
			t.Fatalf("%s %s: %v %s", op.Kind, op.Path, err, res.Errno)
		}
	}
	state := func(p string) fsop.Result {
		t.Helper()
		res, err := ex.State(p)
		if err != nil {
			t.Fatalf("State(%q): %v", p, err)
		}
		return res
	}
	do(mkdir("d"))
	do(writeFile("d/f", "hello"))
	do(symlink("f", "d/l"))

	f := state("d/f")
	want := sha256.Sum256([]byte("hello"))
	if f.Errno != "" || f.Stat == nil || f.Stat.Size != 5 || !bytes.Equal(f.Value, want[:]) || f.N != 5 || f.Names != nil {
		t.Fatalf("state of a file: %+v", f)
	}
	if l := state("d/l"); l.Target != "f" || l.Stat == nil || fsop.DirentType(l.Stat.Mode) != "symlink" || l.Value != nil {
		t.Errorf("state of a symlink (not followed): %+v", l)
	}
	if d := state("d"); d.Stat == nil || fsop.DirentType(d.Stat.Mode) != "dir" || d.Value != nil {
		t.Errorf("state of a directory: %+v", d)
	}
	if m := state("d/missing"); m.Errno != "ENOENT" {
		t.Errorf("state of a missing name: errno %q, want ENOENT", m.Errno)
	}

	gen := st.Generation()
	for range 3 {
		if again := state("d/f"); !bytes.Equal(again.Value, f.Value) || *again.Stat != *f.Stat {
			t.Fatalf("state changed by reading it: %+v, then %+v", f, again)
		}
	}
	if st.Generation() != gen {
		t.Errorf("State changed the store: generation %d, then %d", gen, st.Generation())
	}

	// Each kind of change shows in the state.
	do(writeAt("d/f", 0, "j"))
	if g := state("d/f"); bytes.Equal(g.Value, f.Value) || g.Stat.Size != 5 {
		t.Errorf("same-size overwrite not in the content digest: %x", g.Value)
	}
	x := fsop.Op{Kind: fsop.Setxattr, Path: "d/f", Name: "user.a", Value: []byte("1")}
	do(x)
	x1 := state("d/f")
	if len(x1.Names) != 1 || x1.Names[0] != "user.a" || len(x1.Data) != sha256.Size {
		t.Fatalf("xattr not in the state: %+v", x1)
	}
	x.Value = []byte("2")
	do(x)
	if x2 := state("d/f"); bytes.Equal(x2.Data, x1.Data) {
		t.Errorf("an xattr's new value is not in the xattr digest")
	}
	do(chmod("d/f", 0o600))
	if c := state("d/f"); c.Stat.Mode&0o777 != 0o600 {
		t.Errorf("mode after chmod: %o", c.Stat.Mode)
	}

	// Larger than one read chunk, and a multiple of it.
	for _, size := range []int{200 << 10, 128 << 10} {
		big := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		do(fsop.Op{Kind: fsop.WriteFile, Path: "d/big", Data: big})
		want := sha256.Sum256(big)
		if b := state("d/big"); !bytes.Equal(b.Value, want[:]) || b.N != int64(size) {
			t.Errorf("state of a %d-byte file: %d bytes hashed, digest %x, want %x", size, b.N, b.Value, want)
		}
	}

	if _, err := ex.State("../etc/passwd"); err == nil {
		t.Errorf("a path leaving the root was answered")
	}
}

// TestOwnRoot: a new store's root is uid 0's; OwnRoot gives it to another
// user once, as one logged change.
func TestOwnRoot(t *testing.T) {
	st := store.OpenMemory(store.Options{})
	defer st.Close()
	a, err := st.Getattr(store.RootIno)
	if err != nil || a.UID != 0 || a.GID != 0 {
		t.Fatalf("new root: %+v %v", a, err)
	}
	if err := st.OwnRoot(1000, 1001); err != nil {
		t.Fatal(err)
	}
	a, _ = st.Getattr(store.RootIno)
	if a.UID != 1000 || a.GID != 1001 {
		t.Errorf("root after OwnRoot: %d:%d", a.UID, a.GID)
	}
	time.Sleep(time.Millisecond)
	if err := st.OwnRoot(1000, 1001); err != nil {
		t.Fatal(err)
	}
	if again, _ := st.Getattr(store.RootIno); again.Ctime != a.Ctime {
		t.Errorf("OwnRoot of a root already owned changed it (ctime %d, then %d)", a.Ctime, again.Ctime)
	}
}
