package bridgeclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/lighthouse-fs/lighthouse/bridge"
	"github.com/lighthouse-fs/lighthouse/fsop"
)

// step is one op of a script and the errno it must give.
type step struct {
	op    fsop.Op
	errno string
}

// everyOpScript uses every op kind at least once.
func everyOpScript() []step {
	const h = 42
	return []step{
		{fsop.Op{Kind: fsop.Mkdir, Path: "d", Mode: 0o755}, ""},
		{fsop.Op{Kind: fsop.Mkdir, Path: "d", Mode: 0o755}, "EEXIST"},
		{fsop.Op{Kind: fsop.Create, Path: "d/f", Mode: 0o644}, ""},
		{fsop.Op{Kind: fsop.Create, Path: "d/f", Mode: 0o644, Exclusive: true}, "EEXIST"},
		{fsop.Op{Kind: fsop.WriteFile, Path: "d/f", Data: []byte("hello world")}, ""},
		{fsop.Op{Kind: fsop.Append, Path: "d/f", Data: []byte("!")}, ""},
		{fsop.Op{Kind: fsop.Write, Path: "d/f", Data: []byte("H")}, ""},
		{fsop.Op{Kind: fsop.ReadFile, Path: "d/f"}, ""},
		{fsop.Op{Kind: fsop.Read, Path: "d/f", Offset: 6, Length: 5}, ""},
		{fsop.Op{Kind: fsop.Truncate, Path: "d/f", Size: 5}, ""},
		{fsop.Op{Kind: fsop.Stat, Path: "d/f"}, ""},
		{fsop.Op{Kind: fsop.Stat, Path: "nope"}, "ENOENT"},
		{fsop.Op{Kind: fsop.Symlink, Path: "d/l", Target: "f"}, ""},
		{fsop.Op{Kind: fsop.Lstat, Path: "d/l"}, ""},
		{fsop.Op{Kind: fsop.Readlink, Path: "d/l"}, ""},
		{fsop.Op{Kind: fsop.Link, Path: "d/f", To: "d/g"}, ""},
		{fsop.Op{Kind: fsop.Rename, Path: "d/g", To: "d/h"}, ""},
		{fsop.Op{Kind: fsop.Rename, Path: "d/h", To: "d/f", Flags: fsop.RenameNoReplace}, "EEXIST"},
		{fsop.Op{Kind: fsop.Readdir, Path: "d"}, ""},
		{fsop.Op{Kind: fsop.Chmod, Path: "d/f", Mode: 0o600}, ""},
		{fsop.Op{Kind: fsop.Chown, Path: "d/f", UID: -1, GID: -1}, ""},
		{fsop.Op{Kind: fsop.Utimens, Path: "d/f", AtimeNs: 1e9, MtimeNs: 2e9}, ""},
		{fsop.Op{Kind: fsop.Stat, Path: "d/f"}, ""},
		{fsop.Op{Kind: fsop.Setxattr, Path: "d/f", Name: "user.k", Value: []byte("v1")}, ""},
		{fsop.Op{Kind: fsop.Getxattr, Path: "d/f", Name: "user.k"}, ""},
		{fsop.Op{Kind: fsop.Listxattr, Path: "d/f"}, ""},
		{fsop.Op{Kind: fsop.Removexattr, Path: "d/f", Name: "user.k"}, ""},
		{fsop.Op{Kind: fsop.Getxattr, Path: "d/f", Name: "user.k"}, "ENODATA"},
		{fsop.Op{Kind: fsop.Statfs, Path: "."}, ""},
		{fsop.Op{Kind: fsop.Fsync, Path: "d/f"}, ""},
		{fsop.Op{Kind: fsop.Open, Path: "d/f", Handle: h, Flags: 2 /* O_RDWR */}, ""},
		{fsop.Op{Kind: fsop.Pwrite, Handle: h, Data: []byte("J")}, ""},
		{fsop.Op{Kind: fsop.Pread, Handle: h, Length: 5}, ""},
		{fsop.Op{Kind: fsop.Ftruncate, Handle: h, Size: 3}, ""},
		{fsop.Op{Kind: fsop.Fsync, Handle: h}, ""},
		{fsop.Op{Kind: fsop.Close, Handle: h}, ""},
		{fsop.Op{Kind: fsop.Pread, Handle: h, Length: 5}, "EBADF"},
		{fsop.Op{Kind: fsop.ReadFile, Path: "d/f"}, ""},
		{fsop.Op{Kind: fsop.Unlink, Path: "d/h"}, ""},
		{fsop.Op{Kind: fsop.Unlink, Path: "d/l"}, ""},
		{fsop.Op{Kind: fsop.Rmdir, Path: "d"}, "ENOTEMPTY"},
		{fsop.Op{Kind: fsop.Unlink, Path: "d/f"}, ""},
		{fsop.Op{Kind: fsop.Rmdir, Path: "d"}, ""},
		{fsop.Op{Kind: fsop.Readdir, Path: "."}, ""},
	}
}

// TestEveryOp runs every op kind through the frames transport and the same
// script through the JSON API of a second bridge: the results must agree
// (times aside), and be what the script expects.
func TestEveryOp(t *testing.T) {
	_, _, c := testBridge(t, bridge.Config{}, Options{})
	ref := serve(t, startBridge(t, bridge.Config{}).Handler(nil))
	hc := &http.Client{}
	ctx := context.Background()

	seen := map[fsop.Kind]bool{}
	noTimes := cmp.Transformer("noTimes", func(a fsop.Attr) fsop.Attr {
		a.AtimeNs, a.MtimeNs, a.CtimeNs = 0, 0, 0
		return a
	})
	for i, s := range everyOpScript() {
		seen[s.op.Kind] = true
		op := s.op
		got, err := c.Exec(ctx, &op)
		if err != nil {
			t.Fatalf("step %d %s %s: %v", i, s.op.Kind, s.op.Path, err)
		}
		if got.Errno != s.errno {
			t.Errorf("step %d %s %s: errno %q, want %q", i, s.op.Kind, s.op.Path, got.Errno, s.errno)
		}
		op = s.op
		want, status, err := postJSON(hc, ref.URL(), &op)
		if err != nil || status != http.StatusOK {
			t.Fatalf("step %d %s via JSON: HTTP %d, %v", i, s.op.Kind, status, err)
		}
		if d := cmp.Diff(want, got, noTimes, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("step %d %s %s: frames and JSON results differ (-json +frames):\n%s", i, s.op.Kind, s.op.Path, d)
		}
	}
	for _, k := range fsop.Kinds() {
		if !seen[k] {
			t.Errorf("the script does not use %s", k)
		}
	}

	// Spot checks of the data itself.
	mustExec := func(op fsop.Op) fsop.Result {
		t.Helper()
		res, err := c.Exec(ctx, &op)
		if err != nil || res.Errno != "" {
			t.Fatalf("%s %s: %v %s", op.Kind, op.Path, err, res.Errno)
		}
		return res
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	mustExec(fsop.Op{Kind: fsop.WriteFile, Path: "big", Data: data})
	if res := mustExec(fsop.Op{Kind: fsop.ReadFile, Path: "big"}); !bytes.Equal(res.Data, data) {
		t.Errorf("read_file big: %d bytes back, want the %d written", len(res.Data), len(data))
	}
	if res := mustExec(fsop.Op{Kind: fsop.Stat, Path: "big"}); res.Stat == nil || res.Stat.Size != int64(len(data)) || res.Stat.Mode&0o170000 != 0o100000 {
		t.Errorf("stat big: %+v", res.Stat)
	}
	// An empty read keeps a non-nil, empty Data (the binary codec keeps
	// nil and empty apart).
	mustExec(fsop.Op{Kind: fsop.WriteFile, Path: "empty", Data: []byte{}})
	if res := mustExec(fsop.Op{Kind: fsop.ReadFile, Path: "empty"}); res.Data == nil || len(res.Data) != 0 {
		t.Errorf("read_file empty: Data %#v, want empty and non-nil", res.Data)
	}
}

// TestConcurrent runs many goroutines against one client: every result
// must be the caller's own, and the pool grows beyond one connection.
func TestConcurrent(t *testing.T) {
	_, _, c := testBridge(t, bridge.Config{}, Options{Conns: 4})
	ctx := context.Background()
	if _, err := c.Exec(ctx, &fsop.Op{Kind: fsop.Mkdir, Path: "c", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	const goroutines, iters = 48, 60
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range iters {
				p := fmt.Sprintf("c/g%d-%d", g, i)
				data := bytes.Repeat([]byte{byte(g), byte(i)}, 1+(g*iters+i)%3000)
				res, err := c.Exec(ctx, &fsop.Op{Kind: fsop.WriteFile, Path: p, Data: data})
				if err == nil && (res.Errno != "" || res.N != int64(len(data))) {
					err = fmt.Errorf("write_file %s: %+v", p, res)
				}
				if err == nil {
					res, err = c.Exec(ctx, &fsop.Op{Kind: fsop.ReadFile, Path: p})
				}
				if err == nil && !bytes.Equal(res.Data, data) {
					err = fmt.Errorf("read_file %s: got %d bytes, not the %d written", p, len(res.Data), len(data))
				}
				if err == nil {
					res, err = c.Exec(ctx, &fsop.Op{Kind: fsop.Stat, Path: p})
				}
				if err == nil && (res.Stat == nil || res.Stat.Size != int64(len(data))) {
					err = fmt.Errorf("stat %s: %+v", p, res.Stat)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	res, err := c.Exec(ctx, &fsop.Op{Kind: fsop.Readdir, Path: "c"})
	if err != nil || len(res.Entries) != goroutines*iters+2 {
		t.Errorf("readdir c: %d entries, %v; want %d", len(res.Entries), err, goroutines*iters+2)
	}
	if n := liveConns(c); n < 2 {
		t.Errorf("%d live connections after a concurrent load, want the pool to grow", n)
	}
	if n := pendingCalls(c); n != 0 {
		t.Errorf("%d requests still pending", n)
	}
}

// TestRepliesOutOfOrder: a bridge answering in reverse order; every caller
// gets the reply with its own id.
func TestRepliesOutOfOrder(t *testing.T) {
	const n = 64
	url := fakeBridge(t, func(br *bufio.Reader, bw *bufio.Writer) {
		var frames []fsop.Frame
		for len(frames) < n {
			f, err := fsop.ReadFrame(br, 0)
			if err != nil {
				return
			}
			frames = append(frames, f)
		}
		slices.Reverse(frames)
		for _, f := range frames {
			op, _ := fsop.DecodeOp(f.Payload)
			res := fsop.Result{Target: op.Path}
			fsop.WriteFrame(bw, fsop.Frame{ID: f.ID, Type: fsop.FrameResult, Payload: fsop.AppendResult(nil, &res)})
			bw.Flush()
		}
		fsop.ReadFrame(br, 0) // until the client closes
	})
	c := newClient(t, url, Options{Conns: 1})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("p%d", i)
			res, err := c.Exec(context.Background(), &fsop.Op{Kind: fsop.Readlink, Path: p})
			if err != nil || res.Target != p {
				t.Errorf("op %s: got %q, %v", p, res.Target, err)
			}
		}()
	}
	wg.Wait()
}

// TestRefused: malformed ops are ErrRefused (not ErrUnavailable) and leave
// the connection up.
func TestRefused(t *testing.T) {
	_, _, c := testBridge(t, bridge.Config{}, Options{Conns: 1})
	ctx := context.Background()
	if _, err := c.Exec(ctx, &fsop.Op{Kind: fsop.Mkdir, Path: "x", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, &fsop.Op{Kind: fsop.Open, Path: "f", Handle: 7, Flags: 0o102, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, &fsop.Op{Kind: fsop.Symlink, Path: "out", Target: "../../etc"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		op   fsop.Op
		want string
	}{
		{fsop.Op{Kind: fsop.Stat, Path: "../etc/passwd"}, "escapes"},
		{fsop.Op{Kind: fsop.Stat, Path: "/etc"}, "absolute"},
		{fsop.Op{Kind: "mkdri", Path: "a"}, "mkdri"},
		{fsop.Op{Kind: fsop.Pread}, "handle"},
		{fsop.Op{Kind: fsop.Open, Path: "f", Handle: 7}, "in use"},
		{fsop.Op{Kind: fsop.Stat, Path: "out/passwd"}, "escapes"},
		{fsop.Op{Kind: fsop.WriteFile, Path: ".lighthouse-readyz"}, "reserved"},
	} {
		_, err := c.Exec(ctx, &tc.op)
		if !errors.Is(err, ErrRefused) || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: error %v, want ErrRefused mentioning %q", tc.op.Kind, tc.op.Path, err, tc.want)
		}
	}
	if res, err := c.Exec(ctx, &fsop.Op{Kind: fsop.Stat, Path: "x"}); err != nil || res.Errno != "" {
		t.Errorf("stat after refusals: %v %s", err, res.Errno)
	}
	c.mu.Lock()
	dials := c.backoff
	c.mu.Unlock()
	if n := liveConns(c); n != 1 || dials != 0 {
		t.Errorf("after refusals: %d live connections, backoff %v; want the one connection kept", n, dials)
	}

	// Too large for MaxFrame: refused without being sent.
	small := newClient(t, "http://127.0.0.1:1", Options{MaxFrame: 1024})
	_, err := small.Exec(ctx, &fsop.Op{Kind: fsop.WriteFile, Path: "f", Data: make([]byte, 4096)})
	if !errors.Is(err, ErrRefused) || !errors.Is(err, fsop.ErrTooLarge) {
		t.Errorf("op over MaxFrame: %v, want ErrRefused and fsop.ErrTooLarge", err)
	}
}

// TestBridgeFailureIsUnavailable: a "failed: ..." error frame (the bridge
// could not run the op) is ErrUnavailable.
func TestBridgeFailureIsUnavailable(t *testing.T) {
	url := fakeBridge(t, func(br *bufio.Reader, bw *bufio.Writer) {
		for {
			f, err := fsop.ReadFrame(br, 0)
			if err != nil {
				return
			}
			fsop.WriteFrame(bw, fsop.Frame{ID: f.ID, Type: fsop.FrameError, Payload: []byte("failed: executor died during the op")})
			bw.Flush()
		}
	})
	c := newClient(t, url, Options{})
	_, err := c.Exec(context.Background(), &fsop.Op{Kind: fsop.Stat, Path: "a"})
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "executor died") {
		t.Errorf("failed op: %v, want ErrUnavailable with the bridge's message", err)
	}
}

// TestUnreachable: no bridge at the address: ErrUnavailable at once, and
// fail-fast (no dial) until the next attempt is due.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, "http://"+addr, Options{})
	for i := range 20 {
		start := time.Now()
		_, err := c.Exec(context.Background(), &fsop.Op{Kind: fsop.Stat, Path: "a"})
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Exec %d: %v, want ErrUnavailable", i, err)
		}
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Errorf("Exec %d took %v with nothing listening", i, d)
		}
		if i == 1 && !strings.Contains(err.Error(), "next attempt in") {
			t.Errorf("second Exec: %v, want a fail-fast error naming the next attempt", err)
		}
	}

	// Something that is not a bridge: the upgrade is refused.
	plain := serve(t, http.NotFoundHandler())
	c2 := newClient(t, plain.URL(), Options{})
	_, err = c2.Exec(context.Background(), &fsop.Op{Kind: fsop.Stat, Path: "a"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "404") {
		t.Errorf("upgrade refused: %v, want ErrUnavailable naming the 404", err)
	}
}

// TestContextCancel: an op whose context ends returns at once; its reply,
// arriving later, is dropped and does not confuse the next op.
func TestContextCancel(t *testing.T) {
	release := make(chan struct{})
	url := fakeBridge(t, func(br *bufio.Reader, bw *bufio.Writer) {
		var held *fsop.Frame
		for {
			f, err := fsop.ReadFrame(br, 0)
			if err != nil {
				return
			}
			op, _ := fsop.DecodeOp(f.Payload)
			if op.Path == "slow" {
				held = &f
				continue
			}
			if held != nil { // answer the slow op late, first
				<-release
				res := fsop.Result{Target: "slow"}
				fsop.WriteFrame(bw, fsop.Frame{ID: held.ID, Type: fsop.FrameResult, Payload: fsop.AppendResult(nil, &res)})
				held = nil
			}
			res := fsop.Result{Target: op.Path}
			fsop.WriteFrame(bw, fsop.Frame{ID: f.ID, Type: fsop.FrameResult, Payload: fsop.AppendResult(nil, &res)})
			bw.Flush()
		}
	})
	c := newClient(t, url, Options{Conns: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Exec(ctx, &fsop.Op{Kind: fsop.Readlink, Path: "slow"})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timed-out op: %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("timed-out op returned after %v", d)
	}
	if n := pendingCalls(c); n != 0 {
		t.Errorf("%d requests pending after the timeout, want 0", n)
	}
	close(release)
	for _, p := range []string{"a", "b"} {
		res, err := c.Exec(context.Background(), &fsop.Op{Kind: fsop.Readlink, Path: p})
		if err != nil || res.Target != p {
			t.Errorf("op %s after a timed-out op: %q, %v", p, res.Target, err)
		}
	}
	// A context already done: nothing is sent.
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := c.Exec(done, &fsop.Op{Kind: fsop.Stat, Path: "a"}); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("canceled context: %v", err)
	}
}

// TestBridgeKilledMidFlight: the bridge's connections are cut while ops
// run: the ops fail quickly with ErrUnavailable, later ones fail fast, and
// the client recovers by itself once the bridge is back on its address.
func TestBridgeKilledMidFlight(t *testing.T) {
	_, s, c := testBridge(t, bridge.Config{}, Options{Conns: 2})
	ctx := context.Background()
	if _, err := c.Exec(ctx, &fsop.Op{Kind: fsop.Mkdir, Path: "k", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	var (
		stop     atomic.Bool
		ok, fail atomic.Int64
		slowest  atomic.Int64
		wg       sync.WaitGroup
		errMu    sync.Mutex
		badErr   error
	)
	data := make([]byte, 256<<10)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				start := time.Now()
				_, err := c.Exec(ctx, &fsop.Op{Kind: fsop.WriteFile, Path: fmt.Sprintf("k/%d", g), Data: data})
				if d := int64(time.Since(start)); d > slowest.Load() {
					slowest.Store(d) // racy max, good enough
				}
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrUnavailable):
					fail.Add(1)
					time.Sleep(time.Millisecond)
				default:
					errMu.Lock()
					badErr = err
					errMu.Unlock()
				}
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				stop.Store(true)
				wg.Wait()
				t.Fatalf("timed out waiting for %s (ok %d, unavailable %d)", what, ok.Load(), fail.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("ops to run", func() bool { return ok.Load() > 50 })
	s.kill()
	killedAt := time.Now()
	f0 := fail.Load()
	waitFor("ops to fail", func() bool { return fail.Load() > f0+20 })
	slowest.Store(0)
	time.Sleep(200 * time.Millisecond)
	if d := time.Duration(slowest.Load()); d > 500*time.Millisecond {
		t.Errorf("with the bridge down an Exec took %v, want fail-fast", d)
	}
	// Directly: Exec on a dead bridge fails fast.
	start := time.Now()
	if _, err := c.Exec(ctx, &fsop.Op{Kind: fsop.Stat, Path: "k"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Exec with the bridge down: %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Exec with the bridge down took %v", d)
	}
	t.Logf("failing fast %v after the kill", time.Since(killedAt))

	s.start()
	restartedAt := time.Now()
	o0 := ok.Load()
	waitFor("recovery", func() bool { return ok.Load() > o0+50 })
	t.Logf("recovered %v after the restart", time.Since(restartedAt))
	stop.Store(true)
	wg.Wait()
	if badErr != nil {
		t.Errorf("an error neither nil nor ErrUnavailable: %v", badErr)
	}
	if res, err := c.Exec(ctx, &fsop.Op{Kind: fsop.Readdir, Path: "k"}); err != nil || len(res.Entries) != 10 {
		t.Errorf("readdir k after recovery: %d entries, %v", len(res.Entries), err)
	}
}

// TestSnapshotRestore: a snapshot taken, the tree changed, the snapshot
// restored: the tree is back. Damaged snapshots are refused.
func TestSnapshotRestore(t *testing.T) {
	b := startBridge(t, bridge.Config{})
	var corruptHeader, corruptBody, corruptPutHeader atomic.Bool
	h := b.Handler(nil)
	s := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/snapshot" && r.Method == http.MethodPut && corruptPutHeader.Load() {
			r.Header.Set(fsop.ChecksumHeader, "00000000")
		}
		if r.URL.Path != "/v1/snapshot" || r.Method != http.MethodGet || !(corruptHeader.Load() || corruptBody.Load()) {
			h.ServeHTTP(w, r)
			return
		}
		rec := &captureWriter{header: http.Header{}}
		h.ServeHTTP(rec, r)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		body := rec.body.Bytes()
		if corruptHeader.Load() {
			w.Header().Set(fsop.ChecksumHeader, "deadbeef")
		}
		if corruptBody.Load() {
			body[len(body)/2] ^= 0xff
		}
		w.Write(body)
	}))
	c := newClient(t, s.URL(), Options{})
	ctx := context.Background()
	exec := func(op fsop.Op) fsop.Result {
		t.Helper()
		res, err := c.Exec(ctx, &op)
		if err != nil {
			t.Fatalf("%s %s: %v", op.Kind, op.Path, err)
		}
		return res
	}
	exec(fsop.Op{Kind: fsop.WriteFile, Path: "keep", Data: []byte("v1")})
	exec(fsop.Op{Kind: fsop.Mkdir, Path: "dir", Mode: 0o700})

	snap, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil || !info.Degraded || info.ActiveBackend != bridge.Degraded || info.Inodes != 3 {
		t.Errorf("info: %+v, %v", info, err)
	}

	exec(fsop.Op{Kind: fsop.WriteFile, Path: "keep", Data: []byte("v2")})
	exec(fsop.Op{Kind: fsop.WriteFile, Path: "new", Data: []byte("x")})
	exec(fsop.Op{Kind: fsop.Rmdir, Path: "dir"})
	if err := c.Restore(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if res := exec(fsop.Op{Kind: fsop.ReadFile, Path: "keep"}); string(res.Data) != "v1" {
		t.Errorf("keep after restore: %q", res.Data)
	}
	if res := exec(fsop.Op{Kind: fsop.Stat, Path: "new"}); res.Errno != "ENOENT" {
		t.Errorf("new after restore: %q, want ENOENT", res.Errno)
	}
	if res := exec(fsop.Op{Kind: fsop.Stat, Path: "dir"}); res.Errno != "" || res.Stat.Mode&0o777 != 0o700 {
		t.Errorf("dir after restore: %q %+v", res.Errno, res.Stat)
	}

	// Damaged on the way from the bridge: ErrChecksum.
	corruptHeader.Store(true)
	if _, err := c.Snapshot(ctx); !errors.Is(err, ErrChecksum) {
		t.Errorf("snapshot with a wrong checksum header: %v, want ErrChecksum", err)
	}
	corruptHeader.Store(false)
	corruptBody.Store(true)
	if _, err := c.Snapshot(ctx); !errors.Is(err, ErrChecksum) {
		t.Errorf("snapshot with a damaged body: %v, want ErrChecksum", err)
	}
	corruptBody.Store(false)

	// Damaged before Restore: not sent.
	exec(fsop.Op{Kind: fsop.WriteFile, Path: "marker", Data: []byte("m")})
	bad := bytes.Clone(snap)
	bad[len(bad)/2] ^= 0xff
	if err := c.Restore(ctx, bad); !errors.Is(err, ErrChecksum) {
		t.Errorf("restore of a damaged snapshot: %v, want ErrChecksum", err)
	}
	if err := c.Restore(ctx, []byte{1, 2}); !errors.Is(err, ErrChecksum) {
		t.Errorf("restore of 2 bytes: %v, want ErrChecksum", err)
	}
	// The bridge sees a checksum that does not match: it refuses.
	corruptPutHeader.Store(true)
	if err := c.Restore(ctx, snap); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("restore with a mismatching header: %v, want ErrRefused", err)
	}
	if res := exec(fsop.Op{Kind: fsop.ReadFile, Path: "marker"}); string(res.Data) != "m" {
		t.Errorf("refused restores changed the tree: marker %q %s", res.Data, res.Errno)
	}
}

// captureWriter records a response.
type captureWriter struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (w *captureWriter) Header() http.Header         { return w.header }
func (w *captureWriter) Write(p []byte) (int, error) { return w.body.Write(p) }
func (w *captureWriter) WriteHeader(s int)           { w.status = s }

// TestClose: after Close, Exec fails with ErrUnavailable; ops waiting when
// it is called fail too.
func TestClose(t *testing.T) {
	url := fakeBridge(t, func(br *bufio.Reader, _ *bufio.Writer) {
		for { // never answers
			if _, err := fsop.ReadFrame(br, 0); err != nil {
				return
			}
		}
	})
	c, err := New(url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(context.Background(), &fsop.Op{Kind: fsop.Stat, Path: "a"})
		done <- err
	}()
	for pendingCalls(c) == 0 {
		time.Sleep(time.Millisecond)
	}
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("op waiting at Close: %v, want ErrUnavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("op waiting at Close did not return")
	}
	if _, err := c.Exec(context.Background(), &fsop.Op{Kind: fsop.Stat, Path: "a"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Exec after Close: %v", err)
	}
	if err := c.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping after Close: %v", err)
	}
}

// TestPing and the base URL forms.
func TestPingAndNew(t *testing.T) {
	_, s, c := testBridge(t, bridge.Config{}, Options{})
	if err := c.Ping(context.Background()); err != nil {
		t.Errorf("ping: %v", err)
	}
	c2 := newClient(t, s.URL()+"/", Options{})
	if err := c2.Ping(context.Background()); err != nil {
		t.Errorf("ping with a trailing slash: %v", err)
	}
	for _, bad := range []string{"127.0.0.1:8765", "https://127.0.0.1:8765", "http://", "://x"} {
		if _, err := New(bad, Options{}); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

// TestState: State returns the store's state of a path; a bad path is
// ErrRefused, and a bridge that is gone ErrUnavailable.
func TestState(t *testing.T) {
	_, s, c := testBridge(t, bridge.Config{}, Options{})
	ctx := context.Background()
	if _, err := c.Exec(ctx, &fsop.Op{Kind: fsop.WriteFile, Path: "f", Data: []byte("xyz")}); err != nil {
		t.Fatal(err)
	}
	res, err := c.State(ctx, "f", 0, 0)
	if err != nil || res.Errno != "" || res.Stat == nil || res.Stat.Size != 3 || len(res.Value) != 32 || res.N != 3 {
		t.Errorf("State(f): %+v, %v", res, err)
	}
	// With a range: the digest of those bytes follows the content's.
	for _, r := range []struct{ off, n int64 }{{1, 2}, {-1, 2}} {
		res, err := c.State(ctx, "f", r.off, r.n)
		d, ok := fsop.StateRangeDigest(&res)
		if want := sha256.Sum256([]byte("yz")); err != nil || !ok || string(d) != string(want[:]) {
			t.Errorf("State(f, %d, %d): %+v, %v: want the digest of %q", r.off, r.n, res, err, "yz")
		}
	}
	if _, err := c.State(ctx, "/etc", 0, 0); !errors.Is(err, ErrRefused) {
		t.Errorf("State(/etc): %v, want ErrRefused", err)
	}
	s.kill()
	if _, err := c.State(ctx, "f", 0, 0); !errors.Is(err, ErrUnavailable) {
		t.Errorf("State on a killed bridge: %v, want ErrUnavailable", err)
	}
}

// TestSubtreeSnapshotRestore: a subtree copied from one bridge to another
// replaces only that directory; a hard link leaving the subtree is
// ErrCrossLink with both names; a missing path is ErrRefused.
func TestSubtreeSnapshotRestore(t *testing.T) {
	ctx := context.Background()
	src := newClient(t, serve(t, startBridge(t, bridge.Config{}).Handler(nil)).URL(), Options{})
	dst := newClient(t, serve(t, startBridge(t, bridge.Config{}).Handler(nil)).URL(), Options{})
	run := func(c *Client, ops ...fsop.Op) []fsop.Result {
		t.Helper()
		var out []fsop.Result
		for i := range ops {
			res, err := c.Exec(ctx, &ops[i])
			if err != nil {
				t.Fatalf("%s %s: %v", ops[i].Kind, ops[i].Path, err)
			}
			out = append(out, res)
		}
		return out
	}
	for _, c := range []*Client{src, dst} {
		run(c, fsop.Op{Kind: fsop.Mkdir, Path: "a", Mode: 0o755}, fsop.Op{Kind: fsop.Mkdir, Path: "a/b", Mode: 0o700},
			fsop.Op{Kind: fsop.WriteFile, Path: "keep", Data: []byte("outside")})
	}
	run(src, fsop.Op{Kind: fsop.WriteFile, Path: "a/b/f", Data: []byte("from src")})
	run(dst, fsop.Op{Kind: fsop.WriteFile, Path: "a/old", Data: []byte("dst only")},
		fsop.Op{Kind: fsop.WriteFile, Path: "keep", Data: []byte("dst's own")})

	snap, err := src.SnapshotSubtree(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.RestoreSubtree(ctx, "a", snap); err != nil {
		t.Fatal(err)
	}
	res := run(dst, fsop.Op{Kind: fsop.ReadFile, Path: "a/b/f"}, fsop.Op{Kind: fsop.Stat, Path: "a/old"},
		fsop.Op{Kind: fsop.ReadFile, Path: "keep"})
	if string(res[0].Data) != "from src" || res[1].Errno != "ENOENT" || string(res[2].Data) != "dst's own" {
		t.Fatalf("after the subtree restore: a/b/f %q, a/old %q, keep %q", res[0].Data, res[1].Errno, res[2].Data)
	}
	again, err := dst.SnapshotSubtree(ctx, "a")
	if err != nil || !bytes.Equal(again, snap) {
		t.Fatalf("the restored subtree's snapshot differs from the source's (%v)", err)
	}

	run(dst, fsop.Op{Kind: fsop.Link, Path: "a/b/f", To: "out"})
	_, err = dst.SnapshotSubtree(ctx, "a/b")
	var ce *CrossLinkError
	if !errors.Is(err, ErrCrossLink) || !errors.Is(err, ErrRefused) || !errors.As(err, &ce) || ce.Inside != "a/b/f" || ce.Outside != "out" {
		t.Fatalf("snapshot of a subtree with a link leaving it: %v, want ErrCrossLink naming a/b/f and out", err)
	}
	if err := dst.RestoreSubtree(ctx, "a", snap); !errors.Is(err, ErrCrossLink) {
		t.Fatalf("restore over a subtree with a link leaving it: %v, want ErrCrossLink", err)
	}
	for _, p := range []string{"missing", "keep", "../x"} {
		if _, err := dst.SnapshotSubtree(ctx, p); !errors.Is(err, ErrRefused) || errors.Is(err, ErrCrossLink) {
			t.Errorf("snapshot of %q: %v, want ErrRefused", p, err)
		}
	}
	if err := dst.RestoreSubtree(ctx, "a/b", []byte("not a snapshot")); !errors.Is(err, ErrChecksum) {
		t.Errorf("restore of garbage: %v, want ErrChecksum", err)
	}
	whole, _ := src.Snapshot(ctx)
	if err := dst.RestoreSubtree(ctx, "a/b", whole); !errors.Is(err, ErrRefused) {
		t.Errorf("restore of a whole-store snapshot into a subtree: %v, want ErrRefused", err)
	}
}
