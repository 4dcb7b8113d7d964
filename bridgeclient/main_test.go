package bridgeclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/bridge"
	"github.com/lighthouse-fs/lighthouse/fsop"
)

// TestMain: bridge.Start runs this test binary as its executor child
// (then stops it: the test bridges run degraded, on the store directly).
func TestMain(m *testing.M) {
	bridge.RunExecutorIfChild()
	os.Exit(m.Run())
}

// startBridge starts an in-process degraded bridge (no FUSE: no backends,
// no mount point), closed when the test ends.
func startBridge(t testing.TB, cfg bridge.Config) *bridge.Bridge {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	b, err := bridge.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start bridge: %v", err)
	}
	if b.Active() != bridge.Degraded {
		t.Fatalf("bridge runs %s, want degraded", b.Active())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close bridge: %v", err)
		}
	})
	return b
}

// server serves a handler with httptest on a fixed 127.0.0.1 address that
// survives kill and start, and can cut every connection, hijacked ones
// included (httptest forgets those).
type server struct {
	t    testing.TB
	h    http.Handler
	addr string

	mu    sync.Mutex
	srv   *httptest.Server
	conns map[net.Conn]bool
}

func serve(t testing.TB, h http.Handler) *server {
	s := &server{t: t, h: h, addr: "127.0.0.1:0"}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *server) URL() string { return "http://" + s.addr }

func (s *server) start() {
	s.t.Helper()
	var ln net.Listener
	var err error
	for range 100 { // the port may take a moment to be free again
		if ln, err = net.Listen("tcp", s.addr); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("listen on %s: %v", s.addr, err)
	}
	s.addr = ln.Addr().String()
	srv := httptest.NewUnstartedServer(s.h)
	srv.Listener.Close()
	srv.Listener = &trackingListener{Listener: ln, s: s}
	s.mu.Lock()
	s.srv = srv
	s.conns = map[net.Conn]bool{}
	s.mu.Unlock()
	srv.Start()
}

// kill closes the listener and every connection, as a bridge dying would.
func (s *server) kill() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

type trackingListener struct {
	net.Listener
	s *server
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.s.mu.Lock()
		l.s.conns[c] = true
		l.s.mu.Unlock()
	}
	return c, err
}

// newClient returns a client closed when the test ends.
func newClient(t testing.TB, url string, opts Options) *Client {
	t.Helper()
	c, err := New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testBridge is a degraded bridge served over loopback, and a client.
func testBridge(t testing.TB, cfg bridge.Config, opts Options) (*bridge.Bridge, *server, *Client) {
	b := startBridge(t, cfg)
	s := serve(t, b.Handler(nil))
	return b, s, newClient(t, s.URL(), opts)
}

// postJSON runs op through POST /v1/ops with encoding/json.
func postJSON(hc *http.Client, url string, op *fsop.Op) (fsop.Result, int, error) {
	body, err := json.Marshal(op)
	if err != nil {
		return fsop.Result{}, 0, err
	}
	resp, err := hc.Post(url+"/v1/ops", "application/json", bytes.NewReader(body))
	if err != nil {
		return fsop.Result{}, 0, err
	}
	defer resp.Body.Close()
	var res fsop.Result
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return res, resp.StatusCode, nil
	}
	err = json.NewDecoder(resp.Body).Decode(&res)
	return res, resp.StatusCode, err
}

// fakeBridge serves the frames upgrade on 127.0.0.1 and hands each
// upgraded connection to handle, which speaks frames as it likes.
func fakeBridge(t testing.TB, handle func(br *bufio.Reader, bw *bufio.Writer)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				br, bw := bufio.NewReader(nc), bufio.NewWriter(nc)
				req, err := http.ReadRequest(br)
				if err != nil || req.URL.Path != "/v1/frames" || !strings.EqualFold(req.Header.Get("Upgrade"), fsop.FramesProtocol) {
					bw.WriteString("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found")
					bw.Flush()
					return
				}
				bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + fsop.FramesProtocol + "\r\n\r\n")
				bw.Flush()
				handle(br, bw)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// liveConns counts the client's connected slots.
func liveConns(c *Client) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.slots {
		if s.c != nil {
			n++
		}
	}
	return n
}

// pendingCalls counts the requests the client's connections wait for.
func pendingCalls(c *Client) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.slots {
		if s.c != nil {
			s.c.mu.Lock()
			n += len(s.c.pending)
			s.c.mu.Unlock()
		}
	}
	return n
}
