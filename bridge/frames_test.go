package bridge_test

// Tests of GET /v1/frames on the wire, against in-process degraded bridges
// (no FUSE, no mount: ops run on the store) served by httptest.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/bridge"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/internal/caps"
)

// bridge.Start runs this test binary as its executor child (and stops it
// at once when degraded). The child must become an executor before any
// TestMain runs: an init function does it, whatever TestMain does.
func init() { bridge.RunExecutorIfChild() }

// framesBridge starts a degraded bridge and serves it on 127.0.0.1. With
// closeAtEnd the bridge is closed when the test ends.
func framesBridge(t *testing.T, cfg bridge.Config, closeAtEnd bool) (*bridge.Bridge, *httptest.Server) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	b, err := bridge.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start bridge: %v", err)
	}
	if b.Active() != bridge.Degraded {
		t.Fatalf("bridge runs %s, want degraded", b.Active())
	}
	if closeAtEnd {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := b.Close(ctx); err != nil {
				t.Errorf("close bridge: %v", err)
			}
		})
	}
	srv := httptest.NewServer(b.Handler(nil))
	t.Cleanup(srv.Close)
	return b, srv
}

// framesConn is a raw upgraded connection.
type framesConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
	// sending holds a token while a sendAsync writes: the next send waits
	// (its replies can come back before its final Flush returns).
	sending chan struct{}
}

// framesDial upgrades a connection to srv, sending early frames together
// with the request (before the 101), and checks the 101.
func framesDial(t *testing.T, addr string, early ...fsop.Frame) *framesConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &framesConn{t: t, nc: nc, br: bufio.NewReader(nc), bw: bufio.NewWriterSize(nc, 64<<10), sending: make(chan struct{}, 1)}
	fmt.Fprintf(c.bw, "GET /v1/frames HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive, Upgrade\r\nUpgrade: %s\r\n\r\n",
		addr, fsop.FramesProtocol)
	for _, f := range early {
		fsop.WriteFrame(c.bw, f)
	}
	if err := c.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != fsop.FramesProtocol ||
		!strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
		t.Fatalf("upgrade: %s %v", resp.Status, resp.Header)
	}
	return c
}

// sendAsync is send for another goroutine: errors show up as read errors.
func (c *framesConn) sendAsync(frames ...fsop.Frame) {
	c.sending <- struct{}{}
	go func() {
		defer func() { <-c.sending }()
		for _, f := range frames {
			if fsop.WriteFrame(c.bw, f) != nil {
				return
			}
		}
		c.bw.Flush()
	}()
}

func (c *framesConn) send(frames ...fsop.Frame) {
	c.t.Helper()
	c.sending <- struct{}{}
	defer func() { <-c.sending }()
	for _, f := range frames {
		if err := fsop.WriteFrame(c.bw, f); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := c.bw.Flush(); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads one frame (io.EOF at the end of the stream).
func (c *framesConn) recv() (fsop.Frame, error) {
	c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	return fsop.ReadFrame(c.br, 0)
}

func (c *framesConn) mustRecv() fsop.Frame {
	c.t.Helper()
	f, err := c.recv()
	if err != nil {
		c.t.Fatalf("read a reply: %v", err)
	}
	return f
}

func opFrame(id uint64, op fsop.Op) fsop.Frame {
	return fsop.Frame{ID: id, Type: fsop.FrameOp, Payload: fsop.AppendOp(nil, &op)}
}

func mustResult(t *testing.T, f fsop.Frame) fsop.Result {
	t.Helper()
	if f.Type != fsop.FrameResult {
		t.Fatalf("frame %d: type %d (%q), want a result", f.ID, f.Type, f.Payload)
	}
	res, err := fsop.DecodeResult(f.Payload)
	if err != nil {
		t.Fatalf("frame %d: %v", f.ID, err)
	}
	return res
}

// TestFramesUpgrade: the handshake, and what a request without it gets.
func TestFramesUpgrade(t *testing.T) {
	_, srv := framesBridge(t, bridge.Config{}, true)
	for _, h := range []map[string]string{
		{},
		{"Connection": "Upgrade", "Upgrade": "websocket"},
		{"Upgrade": fsop.FramesProtocol},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/frames", nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired || resp.Header.Get("Upgrade") != fsop.FramesProtocol {
			t.Errorf("GET /v1/frames with %v: %s %v %s, want 426 naming %s", h, resp.Status, resp.Header, body, fsop.FramesProtocol)
		}
	}
	c := framesDial(t, srv.Listener.Addr().String())
	c.send(opFrame(1, fsop.Op{Kind: fsop.Stat, Path: "."}))
	if res := mustResult(t, c.mustRecv()); res.Errno != "" || res.Stat == nil {
		t.Errorf("stat . over frames: %+v", res)
	}
}

// TestFramesPipelined: frames sent with the upgrade request and many in
// one write, ids chosen by the client, each answered exactly once.
func TestFramesPipelined(t *testing.T) {
	_, srv := framesBridge(t, bridge.Config{}, true)
	checkPipelined(t, srv.Listener.Addr().String(), 600) // more than the 256 a connection runs at once
}

// checkPipelined sends n writes, then n reads, without waiting, on one
// connection to addr, and checks every answer.
func checkPipelined(t *testing.T, addr string, n int) {
	data := func(i int) []byte { return bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 1+i%700) }
	early := []fsop.Frame{opFrame(1<<40, fsop.Op{Kind: fsop.Mkdir, Path: "p", Mode: 0o755})}
	c := framesDial(t, addr, early...)
	if f := c.mustRecv(); f.ID != 1<<40 || mustResult(t, f).Errno != "" {
		t.Fatalf("early frame: %d %q", f.ID, f.Payload)
	}
	var writes, reads []fsop.Frame
	for i := range n {
		id := uint64(7 + 3*i) // any ids will do
		writes = append(writes, opFrame(id, fsop.Op{Kind: fsop.WriteFile, Path: fmt.Sprintf("p/%d", i), Data: data(i)}))
		reads = append(reads, opFrame(id, fsop.Op{Kind: fsop.ReadFile, Path: fmt.Sprintf("p/%d", i)}))
	}
	for round, frames := range [][]fsop.Frame{writes, reads} {
		c.sendAsync(frames...)
		seen := map[uint64]bool{}
		outOfOrder := 0
		var last uint64
		for range n {
			f := c.mustRecv()
			if seen[f.ID] {
				t.Fatalf("round %d: id %d answered twice", round, f.ID)
			}
			seen[f.ID] = true
			if f.ID < last {
				outOfOrder++
			}
			last = f.ID
			i := int(f.ID-7) / 3
			res := mustResult(t, f)
			if round == 0 && (res.Errno != "" || res.N != int64(len(data(i)))) {
				t.Errorf("write %d: %+v", i, res)
			}
			if round == 1 && (res.Errno != "" || !bytes.Equal(res.Data, data(i))) {
				t.Errorf("read %d: %q, %d bytes", i, res.Errno, len(res.Data))
			}
		}
		t.Logf("round %d: %d of %d replies came after a higher id", round, outOfOrder, n)
	}
}

// TestFramesOutOfOrder: a slow op does not hold back the replies of the
// fast ones sent after it.
func TestFramesOutOfOrder(t *testing.T) {
	_, srv := framesBridge(t, bridge.Config{}, true)
	c := framesDial(t, srv.Listener.Addr().String())
	big := make([]byte, 16<<20)
	for attempt := range 5 {
		frames := []fsop.Frame{opFrame(1, fsop.Op{Kind: fsop.WriteFile, Path: "big", Data: big})}
		for i := range 20 {
			frames = append(frames, opFrame(uint64(2+i), fsop.Op{Kind: fsop.Stat, Path: "."}))
		}
		c.sendAsync(frames...)
		first := c.mustRecv()
		for range 20 {
			mustResult(t, c.mustRecv())
		}
		if first.ID != 1 {
			return // a stat overtook the big write
		}
		t.Logf("attempt %d: the big write answered first", attempt)
	}
	t.Error("replies came in request order 5 times out of 5: ops are not run concurrently")
}

// TestFramesErrors: malformed requests get a "refused: ..." error frame
// with their id, and the connection stays up.
func TestFramesErrors(t *testing.T) {
	_, srv := framesBridge(t, bridge.Config{}, true)
	checkFrameErrors(t, framesDial(t, srv.Listener.Addr().String()))
}

// checkFrameErrors sends malformed requests on c, checks their error
// frames, and that c still works after them.
func checkFrameErrors(t *testing.T, c *framesConn) {
	c.send(opFrame(1, fsop.Op{Kind: fsop.Open, Path: "f", Handle: 9, Flags: 0o102, Mode: 0o644}))
	if res := mustResult(t, c.mustRecv()); res.Errno != "" {
		t.Fatalf("open: %s", res.Errno)
	}
	for _, tc := range []struct {
		f    fsop.Frame
		want string
	}{
		{opFrame(10, fsop.Op{Kind: fsop.Stat, Path: "../x"}), "refused: path: path escapes the mount"},
		{opFrame(11, fsop.Op{Kind: "mkdri", Path: "x"}), `refused: unknown op "mkdri"`},
		{opFrame(12, fsop.Op{Kind: fsop.Open, Path: "f", Handle: 9}), "refused: "},
		{opFrame(13, fsop.Op{Kind: fsop.ReadFile, Path: ".lighthouse-readyz"}), "refused: .lighthouse-readyz is reserved"},
		{fsop.Frame{ID: 14, Type: fsop.FrameOp, Payload: []byte{9, 9, 9}}, "refused: decode op"},
		{fsop.Frame{ID: 15, Type: 77}, "refused: unknown frame type 77"},
		{fsop.Frame{ID: 16, Type: fsop.FrameControl, Payload: fsop.AppendControl(nil, fsop.Control{Kind: "attach", Arg: "/"})}, `refused: unknown control "attach"`},
		{fsop.Frame{ID: 17, Type: fsop.FrameResult}, "refused: unknown frame type 2"},
	} {
		c.send(tc.f)
		f := c.mustRecv()
		if f.ID != tc.f.ID || f.Type != fsop.FrameError || !strings.HasPrefix(string(f.Payload), tc.want) ||
			strings.Contains(string(f.Payload), "refused: refused") {
			t.Errorf("frame %d: got id %d type %d %q, want an error frame starting %q", tc.f.ID, f.ID, f.Type, f.Payload, tc.want)
		}
	}
	c.send(fsop.Frame{ID: 20, Type: fsop.FrameControl, Payload: fsop.AppendControl(nil, fsop.Control{Kind: fsop.ControlPing})})
	if f := c.mustRecv(); f.ID != 20 || f.Type != fsop.FrameControl {
		t.Errorf("ping: id %d type %d %q", f.ID, f.Type, f.Payload)
	} else if ctl, err := fsop.DecodeControl(f.Payload); err != nil || ctl.Kind != fsop.ControlOK {
		t.Errorf("ping answer: %+v %v", ctl, err)
	}
	c.send(opFrame(21, fsop.Op{Kind: fsop.Close, Handle: 9}))
	if f := c.mustRecv(); f.ID != 21 || mustResult(t, f).Errno != "" {
		t.Errorf("close after the errors: %q", f.Payload)
	}
}

// TestFramesTooLarge: a frame over MaxBody is answered with an error frame
// and the connection closed (the stream is out of step).
func TestFramesTooLarge(t *testing.T) {
	_, srv := framesBridge(t, bridge.Config{MaxBody: 4096}, true)
	checkTooLarge(t, framesDial(t, srv.Listener.Addr().String()))
}

// checkTooLarge checks that c, to a bridge with a MaxBody of 4096, answers
// a larger frame with an error frame and closes.
func checkTooLarge(t *testing.T, c *framesConn) {
	c.send(opFrame(1, fsop.Op{Kind: fsop.WriteFile, Path: "ok", Data: make([]byte, 1000)}))
	mustResult(t, c.mustRecv())
	c.sendAsync(opFrame(2, fsop.Op{Kind: fsop.WriteFile, Path: "big", Data: make([]byte, 8192)}))
	f := c.mustRecv()
	if f.ID != 2 || f.Type != fsop.FrameError || !strings.HasPrefix(string(f.Payload), "refused: ") || !strings.Contains(string(f.Payload), "exceeds the limit of 4096") {
		t.Errorf("too large: id %d type %d %q", f.ID, f.Type, f.Payload)
	}
	if f, err := c.recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after a frame too large: %v %+v, want the connection closed", err, f)
	}
}

// TestFramesShutdown: Close lets the ops running on frames connections
// finish and answer, then closes the connections; new upgrades get 503.
func TestFramesShutdown(t *testing.T) {
	b, srv := framesBridge(t, bridge.Config{}, false)
	c := framesDial(t, srv.Listener.Addr().String())
	idle := framesDial(t, srv.Listener.Addr().String()) // a connection with nothing running
	const n = 300
	var frames []fsop.Frame
	for i := range n {
		frames = append(frames, opFrame(uint64(i+1), fsop.Op{Kind: fsop.WriteFile, Path: fmt.Sprintf("s%d", i), Data: make([]byte, 64<<10)}))
	}
	go func() {
		for _, f := range frames { // one by one: some are still unsent at Close
			fsop.WriteFrame(c.bw, f)
			if c.bw.Flush() != nil {
				return
			}
		}
	}()
	mustResult(t, c.mustRecv())
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		closed <- b.Close(ctx)
	}()
	replies := 1
	for {
		f, err := c.recv()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
				t.Errorf("after %d replies: %v, want the end of the stream", replies, err)
			}
			break
		}
		replies++
		switch {
		case f.Type == fsop.FrameResult:
			if res := mustResult(t, f); res.Errno != "" || res.N != 64<<10 {
				t.Errorf("reply %d: %+v", f.ID, res)
			}
		case f.Type == fsop.FrameError && strings.HasPrefix(string(f.Payload), "failed: "):
		default:
			t.Errorf("reply %d: type %d %q", f.ID, f.Type, f.Payload)
		}
	}
	if _, err := idle.recv(); !errors.Is(err, io.EOF) {
		t.Errorf("idle connection at Close: %v, want EOF", err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return")
	}
	t.Logf("%d of %d ops answered before the connection closed", replies, n)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/frames", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", fsop.FramesProtocol)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("upgrade after Close: %s, want 503", resp.Status)
	}
}

// TestFramesPeerGone: a client that sends ops and disconnects leaves
// nothing behind: the ops finish, Close does not wait for anything.
func TestFramesPeerGone(t *testing.T) {
	b, srv := framesBridge(t, bridge.Config{}, false)
	c := framesDial(t, srv.Listener.Addr().String())
	var frames []fsop.Frame
	for i := range 100 {
		frames = append(frames, opFrame(uint64(i+1), fsop.Op{Kind: fsop.WriteFile, Path: fmt.Sprintf("g%d", i), Data: make([]byte, 32<<10)}))
	}
	c.send(frames...)
	c.nc.Close()
	c2 := framesDial(t, srv.Listener.Addr().String())
	c2.send(opFrame(1, fsop.Op{Kind: fsop.Stat, Path: "."}))
	mustResult(t, c2.mustRecv())
	c2.nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := b.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
}

// TestFramesState: a state control frame is answered with the state the
// store holds (storeexec.Executor.State), the same as GET /v1/state; a path
// leaving the root is refused on both.
func TestFramesState(t *testing.T) {
	_, srv := framesBridge(t, bridge.Config{}, true)
	c := framesDial(t, srv.Listener.Addr().String())
	c.send(opFrame(1, fsop.Op{Kind: fsop.WriteFile, Path: "f", Data: []byte("abc")}))
	if res := mustResult(t, c.mustRecv()); res.Errno != "" {
		t.Fatalf("write_file: %+v", res)
	}
	state := func(id uint64, path string) fsop.Frame {
		c.send(fsop.Frame{ID: id, Type: fsop.FrameControl, Payload: fsop.AppendControl(nil, fsop.Control{Kind: fsop.ControlState, Arg: path})})
		return c.mustRecv()
	}
	want := sha256.Sum256([]byte("abc"))
	res := mustResult(t, state(2, "f"))
	if res.Errno != "" || res.Stat == nil || res.Stat.Size != 3 || !bytes.Equal(res.Value, want[:]) {
		t.Errorf("state of f over frames: %+v", res)
	}
	if res := mustResult(t, state(3, "nothing")); res.Errno != "ENOENT" {
		t.Errorf("state of a missing name: %+v", res)
	}
	if f := state(4, "../x"); f.Type != fsop.FrameError || !strings.HasPrefix(string(f.Payload), "refused: ") {
		t.Errorf("state of ../x: type %d %q, want a refusal", f.Type, f.Payload)
	}

	for _, tc := range []struct {
		query  string
		status int
		want   string
	}{
		{"?path=f", http.StatusOK, `"value":"` + base64.StdEncoding.EncodeToString(want[:]) + `"`},
		{"?path=../x", http.StatusBadRequest, "escapes"},
		{"", http.StatusBadRequest, "missing query parameter path"},
	} {
		resp, err := http.Get(srv.URL + "/v1/state" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
			t.Errorf("GET /v1/state%s: %d %s, want %d and %q", tc.query, resp.StatusCode, body, tc.status, tc.want)
		}
	}
}

// TestFramesPriority: a priority control frame renices every thread of the
// bridge (here the test process: a degraded bridge has no executor) to
// MirrorNice, and back to 0; an unknown priority is refused.
func TestFramesPriority(t *testing.T) {
	if !caps.Has(caps.SysNice) {
		t.Skip("needs CAP_SYS_NICE: going back to nice 0 after the mirror priority")
	}
	b, srv := framesBridge(t, bridge.Config{MirrorNice: 7}, true)
	t.Cleanup(func() { b.SetPriority(bridge.PriorityServing) })
	c := framesDial(t, srv.Listener.Addr().String())
	set := func(id uint64, prio string) fsop.Frame {
		c.send(fsop.Frame{ID: id, Type: fsop.FrameControl, Payload: fsop.AppendControl(nil, fsop.Control{Kind: fsop.ControlPriority, Arg: prio})})
		return c.mustRecv()
	}
	threadNices := func() map[int]int {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		m := map[int]int{}
		for _, task := range tasks {
			tid, _ := strconv.Atoi(task.Name())
			// getpriority's raw syscall answers 20-nice.
			if prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid); err == nil {
				m[20-prio]++
			}
		}
		return m
	}
	for _, tc := range []struct {
		prio string
		nice int
	}{{bridge.PriorityMirror, 7}, {bridge.PriorityServing, 0}} {
		if f := set(1, tc.prio); f.Type != fsop.FrameControl {
			t.Fatalf("priority %s: frame type %d %q", tc.prio, f.Type, f.Payload)
		}
		if got := threadNices(); len(got) != 1 || got[tc.nice] == 0 {
			t.Errorf("after priority %s: threads by nice value %v, want all at %d", tc.prio, got, tc.nice)
		}
		if info := b.Info(); info.Nice != tc.nice {
			t.Errorf("after priority %s: /v1/info nice %d, want %d", tc.prio, info.Nice, tc.nice)
		}
	}
	if f := set(2, "urgent"); f.Type != fsop.FrameError || !strings.HasPrefix(string(f.Payload), "refused: ") {
		t.Errorf("priority urgent: type %d %q, want a refusal", f.Type, f.Payload)
	}
}
