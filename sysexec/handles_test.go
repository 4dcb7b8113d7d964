package sysexec

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// step is one op of a handle sequence and what it must give.
type step struct {
	op    fsop.Op
	errno string
	data  *string // expected Data, when set
	n     int64   // expected N, when > 0
}

func str(s string) *string { return &s }

func TestHandleOps(t *testing.T) {
	const rw, wo, ro = unix.O_RDWR, unix.O_WRONLY, unix.O_RDONLY
	open := func(h uint64, path string, flags int) fsop.Op {
		return fsop.Op{Kind: fsop.Open, Path: path, Handle: h, Flags: flags, Mode: 0o600}
	}
	pread := func(h uint64, off, n int64) fsop.Op {
		return fsop.Op{Kind: fsop.Pread, Handle: h, Offset: off, Length: n}
	}
	pwrite := func(h uint64, off int64, s string) fsop.Op {
		return fsop.Op{Kind: fsop.Pwrite, Handle: h, Offset: off, Data: []byte(s)}
	}
	closeH := func(h uint64) fsop.Op { return fsop.Op{Kind: fsop.Close, Handle: h} }
	cases := []struct {
		name  string
		setup func(t *testing.T, root string)
		steps []step
		check func(t *testing.T, root string)
	}{
		{name: "read write", setup: fileAt("f", "hello"), steps: []step{
			{op: open(1, "f", rw)},
			{op: pread(1, 1, 3), data: str("ell")},
			{op: pwrite(1, 5, " world"), n: 6},
			{op: pread(1, 0, 100), data: str("hello world")},
			{op: pread(1, 50, 10), data: str("")},
			{op: fsop.Op{Kind: fsop.Ftruncate, Handle: 1, Size: 4}},
			{op: fsop.Op{Kind: fsop.Fsync, Handle: 1}},
			{op: pread(1, 0, 100), data: str("hell")},
			{op: closeH(1)},
			{op: closeH(1), errno: "EBADF"},
			{op: pread(1, 0, 1), errno: "EBADF"},
		}, check: func(t *testing.T, root string) { wantContent(t, root, "f", "hell") }},
		{name: "create with mode", steps: []step{
			{op: open(7, "new", wo|unix.O_CREAT|unix.O_EXCL)},
			{op: pwrite(7, 0, "abc"), n: 3},
			{op: closeH(7)},
		}, check: func(t *testing.T, root string) {
			wantContent(t, root, "new", "abc")
			wantMode("new", unix.S_IFREG|0o600)(t, root, fsop.Result{})
		}},
		{name: "exclusive exists", setup: fileAt("f", ""), steps: []step{
			{op: open(1, "f", wo|unix.O_CREAT|unix.O_EXCL), errno: "EEXIST"},
			{op: pread(1, 0, 1), errno: "EBADF"},
			{op: open(1, "f", ro)}, // the failed open did not keep the id
			{op: closeH(1)},
		}},
		{name: "open missing", steps: []step{{op: open(1, "f", ro), errno: "ENOENT"}}},
		{name: "open dir for write", setup: dirAt("d"), steps: []step{{op: open(1, "d", wo), errno: "EISDIR"}}},
		{name: "open nofollow symlink", setup: func(t *testing.T, root string) {
			writeFile(t, root, "f", "")
			symlink(t, root, "f", "l")
		}, steps: []step{{op: open(1, "l", ro|unix.O_NOFOLLOW), errno: "ELOOP"}}},
		{name: "open trunc", setup: fileAt("f", "hello"), steps: []step{
			{op: open(1, "f", wo|unix.O_TRUNC)},
			{op: closeH(1)},
		}, check: func(t *testing.T, root string) { wantContent(t, root, "f", "") }},
		{name: "open ignores unknown flags and stray mode", setup: fileAt("f", "x"), steps: []step{
			// open(2) drops unknown bits and ignores mode without O_CREAT;
			// openat2 alone would say EINVAL.
			{op: fsop.Op{Kind: fsop.Open, Path: "f", Handle: 1, Flags: ro | 1<<30, Mode: 0o777}},
			{op: pread(1, 0, 8), data: str("x")},
			{op: closeH(1)},
		}},
		{name: "open O_PATH", setup: fileAt("f", "x"), steps: []step{
			{op: open(1, "f", unix.O_PATH|unix.O_RDWR)},
			{op: pread(1, 0, 1), errno: "EBADF"},
			{op: closeH(1)},
		}},
		{name: "wrong access mode", setup: fileAt("f", "x"), steps: []step{
			{op: open(1, "f", ro)},
			{op: open(2, "f", wo)},
			{op: pwrite(1, 0, "y"), errno: "EBADF"},
			{op: pread(2, 0, 1), errno: "EBADF"},
			{op: fsop.Op{Kind: fsop.Ftruncate, Handle: 1}, errno: "EINVAL"},
			// Zero-length I/O still asks the kernel.
			{op: pwrite(1, 0, ""), errno: "EBADF"},
			{op: pread(2, 0, 0), errno: "EBADF"},
			{op: pread(1, 0, 0), data: str("")},
			{op: pwrite(2, 0, ""), n: 0},
			{op: closeH(1)},
			{op: closeH(2)},
		}},
		{name: "append from two handles", setup: fileAt("f", "0"), steps: []step{
			{op: open(1, "f", wo|unix.O_APPEND)},
			{op: open(2, "f", wo|unix.O_APPEND)},
			{op: pwrite(1, 0, "aa"), n: 2},
			{op: pwrite(2, 0, "bb"), n: 2},
			{op: pwrite(1, 1, "cc"), n: 2},
			{op: closeH(1)},
			{op: closeH(2)},
		}, check: func(t *testing.T, root string) { wantContent(t, root, "f", "0aabbcc") }},
		{name: "unknown handle", steps: []step{
			{op: pread(5, 0, 1), errno: "EBADF"},
			{op: pwrite(5, 0, "x"), errno: "EBADF"},
			{op: fsop.Op{Kind: fsop.Ftruncate, Handle: 5}, errno: "EBADF"},
			{op: fsop.Op{Kind: fsop.Fsync, Handle: 5}, errno: "EBADF"},
			{op: closeH(5), errno: "EBADF"},
		}},
		{name: "readdir handle", setup: dirAt("d"), steps: []step{
			{op: open(1, "d", ro|unix.O_DIRECTORY)},
			{op: pread(1, 0, 1), errno: "EISDIR"},
			{op: fsop.Op{Kind: fsop.Fsync, Handle: 1}},
			{op: closeH(1)},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, root := newRoot(t, Limits{})
			if tc.setup != nil {
				tc.setup(t, root)
			}
			for i, s := range tc.steps {
				r := do(t, e, s.op)
				if r.Errno != s.errno {
					t.Fatalf("step %d %s: errno %q, want %q", i, s.op.Kind, r.Errno, s.errno)
				}
				if s.data != nil && string(r.Data) != *s.data {
					t.Fatalf("step %d %s: data %q, want %q", i, s.op.Kind, r.Data, *s.data)
				}
				if s.n > 0 && r.N != s.n {
					t.Fatalf("step %d %s: N %d, want %d", i, s.op.Kind, r.N, s.n)
				}
			}
			if tc.check != nil {
				tc.check(t, root)
			}
		})
	}
}

func TestHandleInUse(t *testing.T) {
	e, root := newRoot(t, Limits{})
	writeFile(t, root, "f", "x")
	must(t, e, fsop.Op{Kind: fsop.Open, Path: "f", Handle: 3})
	op := fsop.Op{Kind: fsop.Open, Path: "g", Handle: 3, Flags: unix.O_CREAT | unix.O_WRONLY}
	_, err := e.Exec(&op)
	if !errors.Is(err, ErrHandleInUse) || !errors.Is(err, fsop.ErrBadValue) {
		t.Fatalf("reused handle: err %v", err)
	}
	if exists(root, "g") {
		t.Error("refused open still created the file")
	}
	wantData(t, must(t, e, fsop.Op{Kind: fsop.Pread, Handle: 3, Length: 5}).Data, "x")
}

// TestCloseDuringIO closes a handle while other goroutines use it and other
// opens recycle fd numbers: a pread must see the handle's own file or
// EBADF, never another file's data.
func TestCloseDuringIO(t *testing.T) {
	e, root := newRoot(t, Limits{})
	writeFile(t, root, "a", "AAAA")
	writeFile(t, root, "b", "BBBB")
	for round := range 50 {
		must(t, e, fsop.Op{Kind: fsop.Open, Path: "a", Handle: 1})
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					r, err := e.Exec(&fsop.Op{Kind: fsop.Pread, Handle: 1, Length: 4})
					if err != nil || (r.Errno == "" && string(r.Data) != "AAAA") || (r.Errno != "" && r.Errno != "EBADF") {
						errs <- fmt.Errorf("round %d reader %d: %+v %v", round, g, r, err)
						return
					}
					h := uint64(100 + g)
					if r, err := e.Exec(&fsop.Op{Kind: fsop.Open, Path: "b", Handle: h}); err != nil || r.Errno != "" {
						errs <- fmt.Errorf("open b: %+v %v", r, err)
						return
					}
					if r, err := e.Exec(&fsop.Op{Kind: fsop.Close, Handle: h}); err != nil || r.Errno != "" {
						errs <- fmt.Errorf("close b: %+v %v", r, err)
						return
					}
				}
			}()
		}
		if r := do(t, e, fsop.Op{Kind: fsop.Close, Handle: 1}); r.Errno != "" {
			t.Fatalf("close: %s", r.Errno)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
}
