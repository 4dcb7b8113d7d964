package httpguard

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// echoLen answers the number of body bytes it read.
func echoLen(read *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		read.Add(n)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d", n)
	}
}

// rawRequest sends head (and body) on a new connection and returns the
// status line of the answer.
func rawRequest(t *testing.T, addr, head string, body []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	c.Write(body)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to %q: %v", head, err)
	}
	return strings.TrimSpace(line)
}

// TestBodies: a Content-Length over the bound is 413 before one byte is
// read (issue 13, item 7: bodies were read up to 80 MiB first); bodies
// beyond the budget are 503 with Retry-After; a body that does not arrive
// in time is cut; a non-JSON POST is 415 and a foreign Origin 403.
func TestBodies(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := NewBodies(1<<20, 1<<20, reg)
	b.Timeout = 300 * time.Millisecond
	var read atomic.Int64
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ops", b.JSON(echoLen(&read)))
	mux.HandleFunc("POST /hold", b.JSON(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-release
	}))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config = NewServer(mux)
	srv.Start()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	post := "POST /ops HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\n"

	t.Run("too large by content-length", func(t *testing.T) {
		// 200 MB announced, nothing sent: the answer comes at once.
		if got := rawRequest(t, addr, post+"Content-Length: 200000000\r\n\r\n", nil); !strings.Contains(got, " 413 ") {
			t.Errorf("200 MB body: %q, want 413", got)
		}
		if read.Load() != 0 {
			t.Errorf("the handler read %d bytes of a refused body", read.Load())
		}
	})
	t.Run("content type", func(t *testing.T) {
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
			head := "POST /ops HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: 2\r\n"
			if ct != "" {
				head += "Content-Type: " + ct + "\r\n"
			}
			if got := rawRequest(t, addr, head+"\r\n", []byte("{}")); !strings.Contains(got, " 415 ") {
				t.Errorf("Content-Type %q: %q, want 415", ct, got)
			}
		}
	})
	t.Run("origin", func(t *testing.T) {
		for origin, want := range map[string]string{
			"http://evil.example":   " 403 ",
			"http://" + addr:        " 200 ",
			"https://" + addr:       " 403 ",
			"http://localhost:1":    " 403 ",
			"null":                  " 403 ",
			"http://127.0.0.1:9999": " 403 ",
		} {
			got := rawRequest(t, addr, post+"Origin: "+origin+"\r\nContent-Length: 2\r\n\r\n", []byte("{}"))
			if !strings.Contains(got, want) {
				t.Errorf("Origin %q: %q, want%s", origin, got, want)
			}
		}
	})
	t.Run("budget", func(t *testing.T) {
		body := bytes.Repeat([]byte(" "), 700<<10)
		done := make(chan string)
		go func() {
			done <- rawRequest(t, addr, strings.Replace(post, "/ops", "/hold", 1)+fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)), body)
		}()
		for testutil.ToFloat64(b.inUse) == 0 {
			time.Sleep(time.Millisecond)
		}
		got := rawRequest(t, addr, post+fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)), body)
		if !strings.Contains(got, " 503 ") {
			t.Errorf("a second 700 KiB body with a 1 MiB budget: %q, want 503", got)
		}
		if v := testutil.ToFloat64(b.refuse.WithLabelValues("budget")); v != 1 {
			t.Errorf("refused{reason=budget} = %v, want 1", v)
		}
		close(release)
		<-done
		if got := rawRequest(t, addr, post+fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)), body); !strings.Contains(got, " 200 ") {
			t.Errorf("after the first body was answered: %q, want 200", got)
		}
		if v := testutil.ToFloat64(b.inUse); v != 0 {
			t.Errorf("bytes admitted after every answer: %v, want 0", v)
		}
	})
	t.Run("slow body is cut", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, post+"Content-Length: 1000\r\n\r\n{")
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.ReadAll(c) // the server answers or closes once the deadline passes
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("a trickling body held its connection for %v, want about 300 ms", d)
		}
	})
}

// TestLimitListener: beyond the limit, Accept waits for a connection to
// close and says so once in the log; a closed connection frees its slot.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	reg := prometheus.NewRegistry()
	ln := LimitListener(inner, 2, "test", slog.New(slog.NewTextHandler(&logged, nil)), reg)
	defer ln.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	l := ln.(*limitListener)
	for testutil.ToFloat64(l.waits) == 0 {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted with a limit of 2")
	default:
	}
	if !strings.Contains(logged.String(), "connection limit reached") {
		t.Errorf("log %q, want a line about the limit", logged.String())
	}
	first.Close()
	first.Close() // a second Close frees nothing more
	third := <-accepted
	defer third.Close()
	defer second.Close()
	if v := testutil.ToFloat64(l.open); v != 2 {
		t.Errorf("connections open = %v, want 2", v)
	}
}
