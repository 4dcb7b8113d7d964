package supervise

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/shadow"
	"github.com/lighthouse-fs/lighthouse/store"
)

// The children are this test binary, re-executed with envRole set: real
// processes, real signals, a real FUSE mount.
const envRole = "SUPERVISE_TEST_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(child(role, os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

// child plays one kind of server. arg is its mount point, where it has one.
func child(role, arg string) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	switch role {
	case "ready": // serves /readyz: 503 three times, then 200
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 1
		}
		var asked atomic.Int32
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if asked.Add(1) <= 3 {
				http.Error(w, "warming up", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, `{"status":"ready"}`)
		}))
		fmt.Fprintf(os.Stderr, "level=INFO msg=\"child listening\" addr=%s\n", ln.Addr())
		<-term
		return 0
	case "never": // never says it is ready, stops on SIGTERM
		fmt.Println("starting, slowly")
		<-term
		return 0
	case "stubborn": // ignores SIGTERM
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring SIGTERM")
		select {}
	case "crash":
		fmt.Fprintln(os.Stderr, "listen tcp 127.0.0.1:1: bind: address already in use")
		return 3
	case "mount", "hung-mount": // a real go-fuse mount on arg
		if role == "hung-mount" {
			signal.Ignore(syscall.SIGTERM)
		}
		st := store.OpenMemory(store.Options{})
		unmount, done, err := shadow.Mount(arg, st, fusemount.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "mount:", err)
			return 1
		}
		fmt.Println("mounted")
		select {
		case <-term:
			if err := unmount(); err != nil {
				return 1
			}
			<-done
			return 0
		case <-done:
			return 1
		}
	}
	return 2
}

func startChild(t *testing.T, role string, mounts ...string) *Proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-test.run=^$", "--"}
	if len(mounts) > 0 {
		args = append(args, mounts[0])
	}
	p, err := Start(Config{Name: role + " child", Path: exe, Args: args, Env: append(os.Environ(), envRole+"="+role),
		Log: filepath.Join(t.TempDir(), role+".log"), Mounts: mounts, OwnGroup: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(time.Second) })
	return p
}

func TestReady(t *testing.T) {
	p := startChild(t, "ready")
	ctx := context.Background()
	f, err := p.WaitLine(ctx, "child listening", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	body, err := p.WaitHTTP(ctx, "http://"+f["addr"]+"/readyz", 10*time.Second)
	if err != nil || string(body) != `{"status":"ready"}` {
		t.Fatalf("WaitHTTP: %q, %v", body, err)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if p.Running() || !p.State().Success() {
		t.Fatalf("after Stop: running %v, state %v", p.Running(), p.State())
	}
}

// TestReadyLineOfThisChild: a log appended to by an earlier child does not
// make the next one ready.
func TestReadyLineOfThisChild(t *testing.T) {
	log := filepath.Join(t.TempDir(), "shared.log")
	if err := os.WriteFile(log, []byte("level=INFO msg=\"child listening\" addr=127.0.0.1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(Config{Name: "second", Path: exe, Args: []string{"-test.run=^$"}, Env: append(os.Environ(), envRole+"=ready"),
		Log: log, AppendLog: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	f, err := p.WaitLine(context.Background(), "child listening", 10*time.Second)
	if err != nil || f["addr"] == "127.0.0.1:1" {
		t.Fatalf("WaitLine: %v, %v: the earlier child's line was taken", f, err)
	}
}

func TestNeverReady(t *testing.T) {
	p := startChild(t, "never")
	if _, err := p.WaitLine(context.Background(), "starting", 10*time.Second); err != nil {
		t.Fatal(err) // it handles SIGTERM from here on
	}
	start := time.Now()
	_, err := p.WaitLine(context.Background(), "listening", 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not ready after 300ms") {
		t.Fatalf("err %v, want not ready", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the wait took %v", time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.WaitHTTP(ctx, "http://127.0.0.1:1/", time.Minute); err != context.Canceled {
		t.Errorf("cancelled wait: %v", err)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Errorf("a child that stops on SIGTERM: %v", err)
	}
}

func TestExitsBeforeReady(t *testing.T) {
	p := startChild(t, "crash")
	_, err := p.WaitHTTP(context.Background(), "http://127.0.0.1:1/", time.Minute)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("err %v, want the exit and the log's last line", err)
	}
	if err := p.Stop(time.Second); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Stop of a child that failed: %v", err)
	}
}

func TestIgnoresSIGTERM(t *testing.T) {
	p := startChild(t, "stubborn")
	if _, err := p.WaitLine(context.Background(), "ignoring", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	err := p.Stop(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not stop within 200ms of SIGTERM: killed") {
		t.Fatalf("err %v", err)
	}
	if p.Running() {
		t.Fatal("still running after Stop")
	}
	if again := p.Stop(time.Second); again != err {
		t.Errorf("second Stop: %v, want the first's error", again)
	}
}

func needFUSE(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the child mounts FUSE and the test aborts it through fusectl")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("needs /dev/fuse")
	}
}

// TestMount: children that serve a real FUSE mount, stopped every way;
// whatever happened, no mount is left after Stop.
func TestMount(t *testing.T) {
	needFUSE(t)
	for _, tc := range []struct {
		name, role string
		crash      func(t *testing.T, p *Proc, mnt string) // before Stop
		grace      time.Duration
		want       []string // in Stop's error; none: no error
	}{
		// A clean server unmounts on SIGTERM.
		{name: "clean", role: "mount", grace: 10 * time.Second},
		// Killed with -9 outside the supervisor: its mount is left stale,
		// and Stop detaches it and says so.
		{name: "killed", role: "mount", crash: killOutside, grace: time.Second, want: []string{"left a FUSE mount on", "(now detached)"}},
		// Kill, a crash the caller asked for: the stale mount is expected,
		// Stop detaches it without an error.
		{name: "crash on purpose", role: "mount", crash: func(_ *testing.T, p *Proc, _ string) { p.Kill() }, grace: time.Second},
		// A server that ignores SIGTERM has its connection aborted, is
		// killed, and its mount detached.
		{name: "hung", role: "hung-mount", grace: 300 * time.Millisecond, want: []string{"killed", "now detached"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mnt := filepath.Join(t.TempDir(), "mnt")
			p := startChild(t, tc.role, mnt)
			if err := p.WaitMount(context.Background(), mnt, "fuse", 20*time.Second); err != nil {
				t.Fatal(err)
			}
			if tc.crash != nil {
				tc.crash(t, p, mnt)
			}
			err := p.Stop(tc.grace)
			if (err != nil) != (len(tc.want) > 0) {
				t.Fatalf("Stop: %v, want an error with %q", err, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Stop: %v, want %q", err, w)
				}
			}
			if got := Mounted(mnt); len(got) != 0 {
				t.Fatalf("still mounted after Stop: %v", got)
			}
		})
	}
}

// killOutside SIGKILLs p as a crash would, not through the supervisor, and
// checks that its mount was left stale.
func killOutside(t *testing.T, p *Proc, mnt string) {
	p.Signal(syscall.SIGKILL)
	select {
	case <-p.Exited():
	case <-time.After(reapAbortAfter):
		fusemount.Abort(mnt) // it blocked on its own mount as it died: see reap
		<-p.Exited()
	}
	if got := Mounted(mnt); len(got) != 1 {
		t.Fatalf("a killed server's mount should be left stale, found %v", got)
	}
}
