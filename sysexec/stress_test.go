package sysexec

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// battery runs every op kind, on success and error paths, refusals included.
func battery(t testing.TB, e *Executor) {
	t.Helper()
	ops := []fsop.Op{
		{Kind: fsop.Mkdir, Path: "d"},
		{Kind: fsop.Mkdir, Path: "d"},
		{Kind: fsop.Mkdir, Path: "d/e"},
		{Kind: fsop.WriteFile, Path: "d/f", Data: []byte("hello")},
		{Kind: fsop.Append, Path: "d/f", Data: []byte("!")},
		{Kind: fsop.Write, Path: "d/f", Data: []byte("H")},
		{Kind: fsop.Write, Path: "nope", Data: []byte("H")},
		{Kind: fsop.Create, Path: "d/g", Exclusive: true},
		{Kind: fsop.Create, Path: "d/g", Exclusive: true},
		{Kind: fsop.ReadFile, Path: "d/f"},
		{Kind: fsop.ReadFile, Path: "d"},
		{Kind: fsop.Read, Path: "d/f", Length: 3},
		{Kind: fsop.Truncate, Path: "d/f", Size: 3},
		{Kind: fsop.Stat, Path: "d/f"},
		{Kind: fsop.Stat, Path: "missing/x"},
		{Kind: fsop.Lstat, Path: "d/f"},
		{Kind: fsop.Lstat, Path: "d/f/x"},
		{Kind: fsop.Readdir, Path: "d"},
		{Kind: fsop.Readdir, Path: "d/f"},
		{Kind: fsop.Symlink, Path: "d/l", Target: "f"},
		{Kind: fsop.Symlink, Path: "out", Target: "/etc"},
		{Kind: fsop.Readlink, Path: "d/l"},
		{Kind: fsop.Readlink, Path: "d/f"},
		{Kind: fsop.Link, Path: "d/f", To: "d/h"},
		{Kind: fsop.Link, Path: "d/f", To: "out/h"},
		{Kind: fsop.Rename, Path: "d/h", To: "d/i"},
		{Kind: fsop.Rename, Path: "d/h", To: "d/i"},
		{Kind: fsop.Chmod, Path: "d/l", Mode: 0o600},
		{Kind: fsop.Chmod, Path: "out", Mode: 0o600},
		{Kind: fsop.Chown, Path: "d/f", UID: -1, GID: -1},
		{Kind: fsop.Utimens, Path: "d/f", AtimeNs: 1, MtimeNs: 2},
		{Kind: fsop.Setxattr, Path: "d/f", Name: "user.a", Value: []byte("v")},
		{Kind: fsop.Getxattr, Path: "d/f", Name: "user.a"},
		{Kind: fsop.Getxattr, Path: "d/f", Name: "user.a", Length: 1},
		{Kind: fsop.Getxattr, Path: "d/f", Name: "user.missing"},
		{Kind: fsop.Listxattr, Path: "d/f"},
		{Kind: fsop.Removexattr, Path: "d/f", Name: "user.a"},
		{Kind: fsop.Statfs, Path: "."},
		{Kind: fsop.Fsync, Path: "d"},
		{Kind: fsop.Fsync, Path: "d/f"},
		{Kind: fsop.Open, Path: "d/f", Handle: 1, Flags: unix.O_RDWR},
		{Kind: fsop.Open, Path: "d/f", Handle: 1, Flags: unix.O_RDWR},
		{Kind: fsop.Open, Path: "missing", Handle: 2},
		{Kind: fsop.Open, Path: "out/passwd", Handle: 2},
		{Kind: fsop.Pwrite, Handle: 1, Data: []byte("xyz")},
		{Kind: fsop.Pread, Handle: 1, Length: 10},
		{Kind: fsop.Ftruncate, Handle: 1, Size: 1},
		{Kind: fsop.Fsync, Handle: 1},
		{Kind: fsop.Close, Handle: 1},
		{Kind: fsop.Close, Handle: 1},
		{Kind: fsop.Unlink, Path: "d/i"},
		{Kind: fsop.Unlink, Path: "d/i"},
		{Kind: fsop.Unlink, Path: "d/l"},
		{Kind: fsop.Unlink, Path: "d/g"},
		{Kind: fsop.Unlink, Path: "out"},
		{Kind: fsop.Rmdir, Path: "d/e"},
		{Kind: fsop.Rmdir, Path: "d"},
		{Kind: fsop.Unlink, Path: "d/f"},
		{Kind: fsop.Rmdir, Path: "d"},
	}
	for _, op := range ops {
		if err := op.Validate(); err != nil {
			t.Fatal(err)
		}
		e.Exec(&op) // results do not matter here, only that nothing leaks
	}
}

func TestNoFDLeak(t *testing.T) {
	e, _ := newRoot(t, Limits{})
	battery(t, e) // warm up anything lazily opened
	before := fdCount(t)
	for range 50 {
		battery(t, e)
	}
	if after := fdCount(t); after != before {
		t.Errorf("open fds: %d before, %d after 50 batteries", before, after)
	}
}

// TestConcurrent runs many goroutines at once, each on its own files and
// handles, plus shared reads of one file and one handle.
func TestConcurrent(t *testing.T) {
	e, root := newRoot(t, Limits{})
	writeFile(t, root, "shared", "shared data")
	must(t, e, fsop.Op{Kind: fsop.Open, Path: "shared", Handle: 1 << 40})
	const workers, rounds = 32, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := worker(e, w, rounds); err != nil {
				errs <- fmt.Errorf("worker %d: %w", w, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	must(t, e, fsop.Op{Kind: fsop.Close, Handle: 1 << 40})
}

func worker(e *Executor, w, rounds int) error {
	dir := fmt.Sprintf("w%d", w)
	h := uint64(w + 1)
	payload := []byte(fmt.Sprintf("payload of worker %d", w))
	run := func(op fsop.Op, wantErrno string) (fsop.Result, error) {
		if err := op.Validate(); err != nil {
			return fsop.Result{}, err
		}
		r, err := e.Exec(&op)
		if err != nil {
			return r, fmt.Errorf("%s %s: %w", op.Kind, op.Path, err)
		}
		if r.Errno != wantErrno {
			return r, fmt.Errorf("%s %s: errno %q, want %q", op.Kind, op.Path, r.Errno, wantErrno)
		}
		return r, nil
	}
	for i := range rounds {
		steps := []struct {
			op    fsop.Op
			errno string
		}{
			{fsop.Op{Kind: fsop.Mkdir, Path: dir}, ""},
			{fsop.Op{Kind: fsop.WriteFile, Path: dir + "/f", Data: payload}, ""},
			{fsop.Op{Kind: fsop.Stat, Path: dir + "/f"}, ""},
			{fsop.Op{Kind: fsop.Open, Path: dir + "/f", Handle: h, Flags: unix.O_RDWR | unix.O_APPEND}, ""},
			{fsop.Op{Kind: fsop.Pwrite, Handle: h, Data: []byte("+")}, ""},
			{fsop.Op{Kind: fsop.Pread, Handle: 1 << 40, Length: 64}, ""},
			{fsop.Op{Kind: fsop.ReadFile, Path: "shared"}, ""},
			{fsop.Op{Kind: fsop.Readdir, Path: "."}, ""},
			{fsop.Op{Kind: fsop.Rename, Path: dir + "/f", To: dir + "/g"}, ""},
			{fsop.Op{Kind: fsop.Close, Handle: h}, ""},
			{fsop.Op{Kind: fsop.Close, Handle: h}, "EBADF"},
			{fsop.Op{Kind: fsop.Unlink, Path: dir + "/f"}, "ENOENT"},
			{fsop.Op{Kind: fsop.Unlink, Path: dir + "/g"}, ""},
			{fsop.Op{Kind: fsop.Rmdir, Path: dir}, ""},
		}
		for _, s := range steps {
			r, err := run(s.op, s.errno)
			if err != nil {
				return fmt.Errorf("round %d: %w", i, err)
			}
			switch {
			case s.op.Kind == fsop.Pread && string(r.Data) != "shared data",
				s.op.Kind == fsop.ReadFile && string(r.Data) != "shared data":
				return fmt.Errorf("round %d: %s read %q", i, s.op.Kind, r.Data)
			case s.op.Kind == fsop.Stat && r.Stat.Size != int64(len(payload)):
				return fmt.Errorf("round %d: size %d", i, r.Stat.Size)
			}
		}
	}
	return nil
}

func BenchmarkExec(b *testing.B) {
	e, root := newRoot(b, Limits{})
	writeFile(b, root, "dir/file", "x")
	block := make([]byte, 4096)
	must(b, e, fsop.Op{Kind: fsop.Open, Path: "dir/h", Handle: 1, Flags: unix.O_RDWR | unix.O_CREAT, Mode: 0o644})
	defer must(b, e, fsop.Op{Kind: fsop.Close, Handle: 1})
	for _, bc := range []struct {
		name string
		op   fsop.Op
	}{
		{"stat", fsop.Op{Kind: fsop.Stat, Path: "dir/file"}},
		{"write_4k", fsop.Op{Kind: fsop.Write, Path: "dir/file", Data: block}},
		{"write_file_4k", fsop.Op{Kind: fsop.WriteFile, Path: "dir/w", Data: block}},
		{"pwrite_4k", fsop.Op{Kind: fsop.Pwrite, Handle: 1, Data: block}},
		{"pread_4k", fsop.Op{Kind: fsop.Pread, Handle: 1, Length: 4096}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				op := bc.op
				if r, err := e.Exec(&op); err != nil || r.Errno != "" {
					b.Fatalf("%+v %v", r, err)
				}
			}
		})
	}
}

// TestCloseWhileBusy closes the executor under load: every Exec either runs
// normally or fails with ErrClosed, and no fd stays open.
func TestCloseWhileBusy(t *testing.T) {
	before := fdCount(t)
	e, root := newRoot(t, Limits{})
	writeFile(t, root, "f", "data")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				ops := []fsop.Op{
					{Kind: fsop.Stat, Path: "f"},
					{Kind: fsop.Open, Path: "f", Handle: uint64(g*1_000_000 + i + 1)},
					{Kind: fsop.Pread, Handle: uint64(g*1_000_000 + i + 1), Length: 4},
				}
				for _, op := range ops {
					r, err := e.Exec(&op)
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil || r.Errno != "" {
						errs <- fmt.Errorf("%s: %+v %v", op.Kind, r, err)
						return
					}
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if after := fdCount(t); after != before {
		t.Errorf("open fds: %d before, %d after Close", before, after)
	}
}
