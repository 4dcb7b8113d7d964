package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lighthouse-fs/lighthouse/fusemount"
)

const (
	readyTimeout = 60 * time.Second
	stopGrace    = 30 * time.Second
)

// env is what a run starts outside this process, and its working
// directory; close stops all of it and checks that no mount is left.
type env struct {
	cfg      Config
	dir      string
	ownDir   bool // made by newEnv: removed by close
	mu       sync.Mutex
	children []*child
	closers  []func() error // run last first, before the children stop
}

func newEnv(cfg Config) (*env, error) {
	e := &env{cfg: cfg, dir: cfg.Dir}
	if e.dir == "" {
		d, err := os.MkdirTemp("", "lighthouse-bench-")
		if err != nil {
			return nil, err
		}
		e.dir, e.ownDir = d, true
	} else {
		d, err := filepath.Abs(e.dir)
		if err != nil {
			return nil, err
		}
		e.dir = d
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// onClose registers fn to run at close, before the children stop.
func (e *env) onClose(fn func() error) {
	e.mu.Lock()
	e.closers = append(e.closers, fn)
	e.mu.Unlock()
}

// close runs the closers, stops every child (bridges and mounts unmount
// on SIGTERM; one that does not exit in time has its FUSE connection
// aborted and is killed), detaches any mount still on one of ours and
// reports it as an error, and removes the working directory if it made
// it, unless failed (the logs stay) or a mount could not be removed.
func (e *env) close(failed bool) error {
	var errs []error
	e.mu.Lock()
	closers, children := e.closers, e.children
	e.closers, e.children = nil, nil
	e.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i]())
	}
	var wg sync.WaitGroup
	stopErr := make([]error, len(children))
	for i, c := range children {
		wg.Go(func() { stopErr[i] = c.stop() })
	}
	wg.Wait()
	errs = append(errs, stopErr...)
	var left []string
	for _, c := range children {
		if _, ok := fusemount.Find(c.mnt); ok {
			fusemount.Abort(c.mnt)
			if err := fusemount.Unmount(c.mnt); err != nil {
				errs = append(errs, err)
			}
			left = append(left, c.mnt)
		}
	}
	if len(left) > 0 {
		errs = append(errs, fmt.Errorf("FUSE mounts left after the children stopped (detached): %s", strings.Join(left, ", ")))
	}
	err := errors.Join(errs...)
	if len(children) > 0 {
		fmt.Fprintf(e.cfg.Log, "stopped %d child processes; no FUSE mount left under %s\n", len(children), e.dir)
	}
	for _, c := range children {
		if _, ok := fusemount.Find(c.mnt); ok {
			return errors.Join(err, fmt.Errorf("%s is still mounted: %s not removed", c.mnt, e.dir))
		}
	}
	if e.ownDir && !failed && err == nil {
		return os.RemoveAll(e.dir)
	}
	if failed || err != nil {
		fmt.Fprintf(e.cfg.Log, "working directory kept for its logs: %s\n", e.dir)
	}
	return err
}

// child is a `lighthouse mount` or `lighthouse bridge` process. It runs in
// its own process group, so a terminal's Ctrl-C reaches only the bench,
// which stops it in order; Pdeathsig stops it if the bench dies.
type child struct {
	name    string // e.g. "bazil-mount", "gofuse-bridge"
	backend string
	mnt     string
	url     string // bridges: http://127.0.0.1:port
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// startMount starts `lighthouse mount` for backend on a memory store and
// waits until the kernel shows the mount (read from /proc/mounts, never
// from the mount itself).
func (e *env) startMount(ctx context.Context, backend string) (*child, error) {
	c := &child{name: backend + "-mount", backend: backend, mnt: filepath.Join(e.dir, "mnt", backend+"-mount")}
	if err := e.cleanStale(c.mnt); err != nil {
		return nil, err
	}
	args := []string{"mount", "--backend", backend}
	if !e.cfg.Cached {
		args = append(args, "--direct-io")
	}
	if err := e.start(c, append(args, c.mnt)); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		if m, ok := fusemount.Find(c.mnt); ok && strings.Contains(m.FSType, "lighthouse") {
			return c, nil
		}
		if err := c.wait(ctx, deadline, 20*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// startBridge starts `lighthouse bridge` for backend (role primary for
// bazil, shadow for go-fuse) on a memory store and a free loopback port,
// and waits for /readyz: a probe file written, read back and removed
// through its mount.
func (e *env) startBridge(ctx context.Context, name, backend, role string) (*child, error) {
	c := &child{name: name, backend: backend, mnt: filepath.Join(e.dir, "mnt", name)}
	if err := e.cleanStale(c.mnt); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c.url = "http://" + port
	args := []string{"bridge", "--backend", backend, "--fallback", "", "--role", role, "--listen", port, "--mount", c.mnt}
	if !e.cfg.Cached {
		args = append(args, "--direct-io")
	}
	if err := e.start(c, args); err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	last := "no answer"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/readyz", nil)
		if resp, err := hc.Do(req); err == nil {
			var body struct {
				Error  string `json:"error"`
				Active string `json:"active_backend"`
			}
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK && body.Active == backend:
				return c, nil
			case resp.StatusCode == http.StatusOK:
				return nil, fmt.Errorf("%s runs %q, not %s: a bench of %s would measure something else; see %s", c.name, body.Active, backend, backend, c.logPath)
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body.Error)
		} else {
			last = err.Error()
		}
		if err := c.wait(ctx, deadline, 50*time.Millisecond); err != nil {
			return nil, fmt.Errorf("%w (last /readyz: %s)", err, last)
		}
	}
}

// start runs the child with its log in the working directory.
func (e *env) start(c *child, args []string) error {
	if e.cfg.Exe == "" {
		return fmt.Errorf("%s needs the lighthouse binary (Config.Exe)", c.name)
	}
	if err := os.MkdirAll(c.mnt, 0o755); err != nil {
		return err
	}
	c.logPath = filepath.Join(e.dir, c.name+".log")
	logFile, err := os.Create(c.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	c.cmd = exec.Command(e.cfg.Exe, args...)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.Dir = "/"
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	c.exited = make(chan struct{})
	go func() { c.cmd.Wait(); close(c.exited) }()
	e.mu.Lock()
	e.children = append(e.children, c)
	e.mu.Unlock()
	fmt.Fprintf(e.cfg.Log, "started %s (pid %d): %s\n", c.name, c.cmd.Process.Pid, strings.Join(args, " "))
	return nil
}

// wait sleeps d, failing if the child exited, ctx ended or deadline passed.
func (c *child) wait(ctx context.Context, deadline time.Time, d time.Duration) error {
	select {
	case <-c.exited:
		return fmt.Errorf("%s exited (%s) before it was ready:\n%s", c.name, c.cmd.ProcessState, logTail(c.logPath, 12))
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
	}
	if time.Now().After(deadline) {
		return fmt.Errorf("%s not ready after %s; see %s", c.name, readyTimeout, c.logPath)
	}
	return nil
}

// alive reports an error if the child has exited.
func (c *child) alive() error {
	select {
	case <-c.exited:
		return fmt.Errorf("%s exited (%s):\n%s", c.name, c.cmd.ProcessState, logTail(c.logPath, 12))
	default:
		return nil
	}
}

// stop sends SIGTERM (the child finishes running ops and unmounts) and
// waits; one that does not exit in time has its FUSE connection aborted
// and is killed.
func (c *child) stop() error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return nil
	case <-time.After(stopGrace):
	}
	fusemount.Abort(c.mnt)
	c.cmd.Process.Kill()
	<-c.exited
	return fmt.Errorf("%s did not stop within %s of SIGTERM: killed; see %s", c.name, stopGrace, c.logPath)
}

// cleanStale removes a mount a crashed run left on dir (only ours: dir is
// under the working directory).
func (e *env) cleanStale(dir string) error {
	if _, ok := fusemount.Find(dir); !ok {
		return nil
	}
	fmt.Fprintf(e.cfg.Log, "cleaning a stale mount left by a previous run: %s\n", dir)
	return fusemount.CleanStale(dir)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
