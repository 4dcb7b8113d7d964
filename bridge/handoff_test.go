package bridge_test

// Frames connections on real bridges: once upgraded, the connection is
// handed to the executor process, which serves it (handoff.go). These
// tests run the wire checks of frames_test.go against it, and what the
// bridge still does for those ops: metrics, handles, control messages,
// the watchdog, restores and shutdown.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

func (b *bridgeProc) addr() string { return strings.TrimPrefix(b.URL, "http://") }

// socketHolders returns the pids among pids that hold the server side of
// the TCP connection whose client end is local (the bridge's end, found
// in /proc/net/tcp by its peer address).
func socketHolders(t *testing.T, local net.Addr, pids ...int) []int {
	t.Helper()
	a := local.(*net.TCPAddr)
	ip := a.IP.To4()
	peer := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	inode := ""
	for _, line := range strings.Split(string(data), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 9 && f[2] == peer {
			inode = f[9]
		}
	}
	if inode == "" {
		t.Fatalf("no socket with peer %s in /proc/net/tcp", local)
	}
	var out []int
	for _, pid := range pids {
		links, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, l := range links {
			if target, _ := os.Readlink(l); target == "socket:["+inode+"]" {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// TestHandedFrames: a frames connection is served by the executor (the
// bridge keeps no descriptor of it), with the same answers as a degraded
// bridge's, and the bridge still counts its ops, tracks its handles and
// answers its state and priority messages.
func TestHandedFrames(t *testing.T) {
	for _, backend := range []string{"bazil", "gofuse"} {
		t.Run(backend, func(t *testing.T) {
			b := startBridge(t, bridgeOpts{Backend: backend, Args: []string{"--max-body", "4096"}})
			c := framesDial(t, b.addr())
			c.send(opFrame(1, fsop.Op{Kind: fsop.WriteFile, Path: "f", Data: []byte("abc")}))
			if res := mustResult(t, c.mustRecv()); res.Errno != "" || res.N != 3 {
				t.Fatalf("write_file over frames: %+v", res)
			}
			execs := executorPIDs(b.PID())
			if len(execs) != 1 {
				t.Fatalf("executors of bridge %d: %v", b.PID(), execs)
			}
			if got := socketHolders(t, c.nc.LocalAddr(), b.PID(), execs[0]); len(got) != 1 || got[0] != execs[0] {
				t.Errorf("the connection's socket is held by %v; want only the executor %d (bridge %d)", got, execs[0], b.PID())
			}
			if got, err := readMountFile(t, b.Mount, "f"); err != nil || string(got) != "abc" {
				t.Errorf("f through the mount: %q %v", got, err)
			}

			checkPipelinedSmall(t, b)
			checkFrameErrors(t, c)

			// The bridge counts the ops (in batches: wait) and their handles.
			series := fmt.Sprintf(`lighthouse_fuse_operations_total{backend="%s",op="write_file",result="ok"}`, backend)
			if !waitFor(10*time.Second, func() bool { v, _ := b.metric(t, series); return v >= 1 }) {
				v, _ := b.metric(t, series)
				t.Errorf("%s = %v, want the write_file counted", series, v)
			}
			c.send(opFrame(30, fsop.Op{Kind: fsop.Open, Path: "f", Handle: 77}))
			if res := mustResult(t, c.mustRecv()); res.Errno != "" {
				t.Fatalf("open: %+v", res)
			}
			if !waitFor(10*time.Second, func() bool { v, _ := b.metric(t, "lighthouse_bridge_open_handles"); return v == 1 }) {
				t.Error("lighthouse_bridge_open_handles did not reach 1 after an open over frames")
			}
			c.send(opFrame(31, fsop.Op{Kind: fsop.Close, Handle: 77}))
			mustResult(t, c.mustRecv())
			if !waitFor(10*time.Second, func() bool { v, _ := b.metric(t, "lighthouse_bridge_open_handles"); return v == 0 }) {
				t.Error("lighthouse_bridge_open_handles did not return to 0 after the close")
			}

			// Control messages: state (the bridge's store) and priority.
			c.send(fsop.Frame{ID: 40, Type: fsop.FrameControl, Payload: fsop.AppendControl(nil, fsop.Control{Kind: fsop.ControlState, Arg: "f"})})
			state := mustResult(t, c.mustRecv())
			status, body, err := b.get("/v1/state?path=f")
			var want fsop.Result
			if err != nil || status != http.StatusOK || json.Unmarshal(body, &want) != nil {
				t.Fatalf("GET /v1/state: %d %s %v", status, body, err)
			}
			if state.Stat == nil || want.Stat == nil || !bytes.Equal(state.Data, want.Data) || state.Stat.Size != 3 {
				t.Errorf("state over frames %+v, GET /v1/state %+v", state, want)
			}
			c.send(fsop.Frame{ID: 41, Type: fsop.FrameControl, Payload: fsop.AppendControl(nil, fsop.Control{Kind: fsop.ControlPriority, Arg: "mirror"})})
			if f := c.mustRecv(); f.ID != 41 || f.Type != fsop.FrameControl {
				t.Errorf("priority: id %d type %d %q", f.ID, f.Type, f.Payload)
			}
			if v, _ := b.metric(t, "lighthouse_bridge_nice"); v != 19 {
				t.Errorf("lighthouse_bridge_nice = %v after priority mirror, want 19", v)
			}

			checkTooLarge(t, c)
		})
	}
}

// checkPipelinedSmall is checkPipelined on a new connection to b, with
// fewer ops (a real mount is slower than a degraded store).
func checkPipelinedSmall(t *testing.T, b *bridgeProc) {
	t.Helper()
	checkPipelined(t, b.addr(), 300)
}

// TestHandedFramesHungExecutor: an executor that stops answering (SIGSTOP)
// while it serves a frames connection is found by the watchdog and
// replaced; the connection ends, a new one works.
func TestHandedFramesHungExecutor(t *testing.T) {
	b := startBridge(t, bridgeOpts{Backend: "gofuse", Args: []string{"--op-timeout", "2s"}})
	c := framesDial(t, b.addr())
	c.send(opFrame(1, fsop.Op{Kind: fsop.WriteFile, Path: "before", Data: []byte("1")}))
	mustResult(t, c.mustRecv())
	hung := stopExecutor(t, b)
	start := time.Now()
	c.send(opFrame(2, fsop.Op{Kind: fsop.WriteFile, Path: "during", Data: []byte("2")}))
	f, err := c.recv()
	elapsed := time.Since(start)
	if err == nil && !(f.Type == fsop.FrameError && strings.HasPrefix(string(f.Payload), "failed: ")) {
		t.Errorf("op on a stopped executor: type %d %q, want the connection closed or a failed error", f.Type, f.Payload)
	}
	if err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Errorf("op on a stopped executor: %v, want the end of the stream", err)
	}
	if elapsed < 1500*time.Millisecond || elapsed > 15*time.Second {
		t.Errorf("answered after %v, want about the 2 s op timeout", elapsed)
	}
	t.Logf("op on the stopped executor: %v %q after %v", err, f.Payload, elapsed.Round(time.Millisecond))
	if !waitFor(10*time.Second, func() bool { v, _ := b.metric(t, "lighthouse_bridge_executor_starts_total"); return v == 2 }) {
		t.Error("lighthouse_bridge_executor_starts_total did not reach 2")
	}
	c2 := framesDial(t, b.addr())
	c2.send(opFrame(3, fsop.Op{Kind: fsop.WriteFile, Path: "after", Data: []byte("3")}))
	if res := mustResult(t, c2.mustRecv()); res.Errno != "" {
		t.Errorf("op on a new connection: %+v", res)
	}
	if now := executorPIDs(b.PID()); len(now) != 1 || now[0] == hung {
		t.Errorf("executors now %v (hung one %d), want one new executor", now, hung)
	}
}

// TestHandedFramesRestore: ops on a frames connection during PUT
// /v1/snapshot wait for the restore (none fails), and see its tree after.
func TestHandedFramesRestore(t *testing.T) {
	b := startBridge(t, bridgeOpts{Backend: "gofuse"})
	b.ok(t, fsop.Op{Kind: fsop.WriteFile, Path: "old", Data: []byte("old")})
	status, snap, err := b.get("/v1/snapshot")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /v1/snapshot: %d %v", status, err)
	}
	b.ok(t, fsop.Op{Kind: fsop.WriteFile, Path: "new", Data: []byte("new")})
	c := framesDial(t, b.addr())
	done := make(chan struct{})
	errs := make(chan string, 1)
	go func() { // stats until told to stop, one at a time
		defer close(errs)
		for i := uint64(1); ; i++ {
			select {
			case <-done:
				return
			default:
			}
			c.send(opFrame(i, fsop.Op{Kind: fsop.Stat, Path: "old"}))
			f, err := c.recv()
			if err != nil || f.Type != fsop.FrameResult {
				errs <- fmt.Sprintf("stat %d during the restore: %v type %d %q", i, err, f.Type, f.Payload)
				return
			}
		}
	}()
	req, _ := http.NewRequest(http.MethodPut, b.URL+"/v1/snapshot", bytes.NewReader(snap))
	if status, body, err := doRequest(req); err != nil || status != http.StatusOK {
		t.Fatalf("PUT /v1/snapshot: %d %s %v", status, body, err)
	}
	close(done)
	for msg := range errs {
		t.Error(msg)
	}
	c.send(opFrame(1<<20, fsop.Op{Kind: fsop.Stat, Path: "new"}))
	if res := mustResult(t, c.mustRecv()); res.Errno != "ENOENT" {
		t.Errorf("stat new after restoring a snapshot without it: %+v", res)
	}
}

// TestHandedFramesShutdown: SIGTERM lets the ops running on a frames
// connection answer, closes the connection, and the bridge exits cleanly.
func TestHandedFramesShutdown(t *testing.T) {
	b := startBridge(t, bridgeOpts{Backend: "bazil"})
	c := framesDial(t, b.addr())
	const n = 50
	var frames []fsop.Frame
	for i := range n {
		frames = append(frames, opFrame(uint64(i+1), fsop.Op{Kind: fsop.WriteFile, Path: "s" + strconv.Itoa(i), Data: make([]byte, 64<<10)}))
	}
	c.sendAsync(frames...)
	mustResult(t, c.mustRecv())
	b.Signal(syscall.SIGTERM)
	replies := 1
	for {
		f, err := c.recv()
		if err != nil {
			if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
				t.Errorf("after %d replies: %v, want the end of the stream", replies, err)
			}
			break
		}
		replies++
		if f.Type == fsop.FrameError && !strings.HasPrefix(string(f.Payload), "failed: ") {
			t.Errorf("reply %d: %q", f.ID, f.Payload)
		}
	}
	select {
	case <-b.Exited():
	case <-time.After(stopTimeout):
		t.Fatal("bridge did not exit after SIGTERM")
	}
	if st := b.State(); !st.Success() {
		t.Errorf("bridge exited with %v", st)
	}
	t.Logf("%d of %d ops answered before the connection closed", replies, n)
}

// TestExecutorTimerSlack: the executor runs with a 1 ms timer slack
// (executorTimerSlack, docs/performance.md "Where a bridge op's time
// goes"), and the bridge starting it keeps its own.
func TestExecutorTimerSlack(t *testing.T) {
	b := startBridge(t, bridgeOpts{Backend: "bazil"})
	execs := executorPIDs(b.PID())
	if len(execs) != 1 {
		t.Fatalf("executors of bridge %d: %v", b.PID(), execs)
	}
	slack := func(pid int) int {
		s, err := os.ReadFile(fmt.Sprintf("/proc/%d/timerslack_ns", pid))
		if err != nil {
			t.Skipf("timer slack not readable: %v", err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(s)))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := slack(execs[0]); got != 1_000_000 {
		t.Errorf("executor %d timer slack %d ns, want 1000000", execs[0], got)
	}
	if got := slack(b.PID()); got == 1_000_000 {
		t.Errorf("bridge %d timer slack %d ns: the executor's leaked to the bridge's main thread", b.PID(), got)
	}
}
