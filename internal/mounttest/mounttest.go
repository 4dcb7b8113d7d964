// Package mounttest serves a FUSE mount from a child process, so that a
// test can make real syscalls on it without deadlocking the Go runtime.
//
// # Why a child process
//
// A process that serves a FUSE mount and also makes syscalls on it can hang
// (fork/exec while serving, epoll on a FUSE file, page faults on mmapped
// files: go-fuse's fs/api.go "Deadlocks", bazil issue #264). The test binary
// re-executes itself as the server: Main, called from TestMain, notices and
// serves instead of running tests.
//
// # Never leak a mount
//
// The child unmounts when told to stop, when its stdin closes (the test
// binary died), and on SIGTERM. Cleanup escalates: a polite stop, then
// aborting the connection through fusectl, then a lazy unmount and SIGKILL.
package mounttest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/store"
)

const (
	envBackend = "LIGHTHOUSE_MOUNTTEST_BACKEND"
	envDir     = "LIGHTHOUSE_MOUNTTEST_DIR"
	envOpts    = "LIGHTHOUSE_MOUNTTEST_OPTS"
	envData    = "LIGHTHOUSE_MOUNTTEST_DATA"
	envNameMax = "LIGHTHOUSE_MOUNTTEST_NAME_MAX"

	readyTimeout = 20 * time.Second
	stopTimeout  = 10 * time.Second
)

// Main runs the tests, or, in a child started by Start, serves the mount
// and exits. Call it from TestMain. It sets the umask to 0 so that modes
// are what the test asked for on every target.
func Main(m *testing.M, backends map[string]fusemount.MountFunc) {
	if name := os.Getenv(envBackend); name != "" {
		os.Exit(serve(backends, name))
	}
	unix.Umask(0)
	os.Exit(m.Run())
}

// serve is the child: mount, say "ready", wait to be told to stop.
func serve(backends map[string]fusemount.MountFunc, name string) int {
	mount, ok := backends[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "mounttest: unknown backend %q\n", name)
		return 2
	}
	var opts fusemount.Options
	if err := json.Unmarshal([]byte(os.Getenv(envOpts)), &opts); err != nil {
		fmt.Fprintf(os.Stderr, "mounttest: options: %v\n", err)
		return 2
	}
	nameMax, _ := strconv.Atoi(os.Getenv(envNameMax))
	var st *store.Store
	if data := os.Getenv(envData); data != "" {
		var err error
		if st, err = store.Open(data, store.Options{Sync: store.SyncNone, NameMax: nameMax}); err != nil {
			fmt.Fprintf(os.Stderr, "mounttest: %v\n", err)
			return 1
		}
	} else {
		st = store.OpenMemory(store.Options{NameMax: nameMax})
	}
	defer st.Close()
	dir := os.Getenv(envDir)
	unmount, done, err := mount(dir, st, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mounttest: mount %s on %s: %v\n", name, dir, err)
		return 1
	}
	fmt.Println("ready")

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	stdinClosed := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stdinClosed) }()
	select {
	case <-stop:
	case <-stdinClosed:
	case err := <-done:
		fmt.Fprintf(os.Stderr, "mounttest: serve ended: %v\n", err)
		unmount() // the connection is gone; detach the dead mount too
		return 1
	}
	if err := unmount(); err != nil {
		fmt.Fprintf(os.Stderr, "mounttest: unmount: %v\n", err)
		return 1
	}
	select {
	case <-done:
	case <-time.After(stopTimeout):
		fmt.Fprintln(os.Stderr, "mounttest: serve loop did not end after unmount")
		return 1
	}
	return 0
}

// Mount is a mount served by a child process.
type Mount struct {
	Dir     string
	Backend string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	exited  chan struct{}
	stopped bool
	killed  bool // a crash was simulated: a stale mount is expected
}

// Config is what Start serves.
type Config struct {
	Backend string
	Options fusemount.Options
	// DataDir, if set, is the store's directory (with fsync policy none);
	// empty serves a memory-only store.
	DataDir string
	// Dir is the mount point; empty means a new temporary directory.
	Dir string
	// Log, if set, receives the server's standard error (with
	// Options.Debug, every request its library logs); it is complete once
	// Stop has returned.
	Log io.Writer
	// NameMax is the store's name cap (store.Options.NameMax); 0 is the
	// store's default.
	NameMax int
}

// Start serves a fresh memory store through backend on a temporary mount
// point; the mount is removed in t.Cleanup, even if the server hangs. If
// /dev/fuse is missing the test is skipped with a message saying so.
func Start(t testing.TB, backend string, opts fusemount.Options) *Mount {
	t.Helper()
	return StartConfig(t, Config{Backend: backend, Options: opts})
}

// StartConfig is Start with every knob.
func StartConfig(t testing.TB, c Config) *Mount {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse (%v): mount tests need FUSE; run them as root on Linux with the fuse3 package", err)
	}
	if c.Dir == "" {
		c.Dir = t.TempDir()
	}
	optJSON, err := json.Marshal(c.Options)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envBackend+"="+c.Backend, envDir+"="+c.Dir, envOpts+"="+string(optJSON), envData+"="+c.DataDir, envNameMax+"="+strconv.Itoa(c.NameMax))
	cmd.Stderr = os.Stderr
	if c.Log != nil {
		cmd.Stderr = c.Log
	}
	cmd.Dir = "/" // never start inside a mount
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s server: %v", c.Backend, err)
	}
	m := &Mount{Dir: c.Dir, Backend: c.Backend, cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- nil
				io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- fmt.Errorf("server exited before it was ready")
	}()
	go func() { cmd.Wait(); close(m.exited) }()
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Errorf("stop %s mount: %v", c.Backend, err)
		}
	})
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("%s mount on %s: %v", c.Backend, c.Dir, err)
		}
	case <-time.After(readyTimeout):
		t.Fatalf("%s mount on %s: not ready after %v", c.Backend, c.Dir, readyTimeout)
	}
	return m
}

// Pid is the process id of the child that serves the mount.
func (m *Mount) Pid() int { return m.cmd.Process.Pid }

// Stop unmounts and ends the server: politely first, then by aborting the
// FUSE connection, a lazy unmount and SIGKILL. It is safe to call twice.
func (m *Mount) Stop() error {
	if m.stopped {
		return nil
	}
	m.stopped = true
	m.stdin.Close() // the server unmounts when its stdin closes
	var err error
	select {
	case <-m.exited:
	case <-time.After(stopTimeout):
		err = fmt.Errorf("server did not stop within %v; aborted", stopTimeout)
		fusemount.Abort(m.Dir)
		m.cmd.Process.Kill()
		<-m.exited
	}
	if _, still := fusemount.Find(m.Dir); still {
		if uerr := fusemount.Unmount(m.Dir); uerr != nil && err == nil {
			err = uerr
		}
		if err == nil && !m.killed {
			err = fmt.Errorf("mount %s outlived its server; detached", m.Dir)
		}
	}
	if err == nil && !m.killed && m.cmd.ProcessState != nil && !m.cmd.ProcessState.Success() {
		err = fmt.Errorf("server exited with %v", m.cmd.ProcessState)
	}
	return err
}

// Kill ends the server with SIGKILL, leaving a stale mount behind, as a
// crash would. Cleanup still removes it.
func (m *Mount) Kill() {
	m.killed = true
	m.cmd.Process.Kill()
	<-m.exited
}

// Guard runs fn and, if it takes longer than d, aborts the FUSE connection
// so that the syscalls fn is stuck in fail with ENOTCONN, and fails the
// test instead of hanging it.
func (m *Mount) Guard(t testing.TB, d time.Duration, fn func()) {
	t.Helper()
	timer := time.AfterFunc(d, func() {
		t.Errorf("%s mount on %s hung for %v: connection aborted", m.Backend, m.Dir, d)
		fusemount.Abort(m.Dir)
	})
	defer timer.Stop()
	fn()
}
