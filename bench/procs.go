package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/supervise"
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
		wg.Go(func() { stopErr[i] = c.Stop(stopGrace) }) // aborts, kills, detaches what it must
	}
	wg.Wait()
	errs = append(errs, stopErr...)
	err := errors.Join(errs...)
	if len(children) > 0 {
		fmt.Fprintf(e.cfg.Log, "stopped %d child processes; no FUSE mount left under %s\n", len(children), e.dir)
	}
	for _, c := range children {
		if len(supervise.Mounted(c.mnt)) > 0 {
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
	*supervise.Proc
	name    string // e.g. "bazil-mount", "gofuse-bridge"
	backend string
	mnt     string
	url     string // bridges: http://127.0.0.1:port
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
	if err := c.WaitMount(ctx, c.mnt, "lighthouse", readyTimeout); err != nil {
		return nil, err
	}
	return c, nil
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
	body, err := c.WaitHTTP(ctx, c.url+"/readyz", readyTimeout)
	if err != nil {
		return nil, err
	}
	var ready struct {
		Active string `json:"active_backend"`
	}
	json.Unmarshal(body, &ready)
	if ready.Active != backend {
		return nil, fmt.Errorf("%s runs %q, not %s: a bench of %s would measure something else; see %s", c.name, ready.Active, backend, backend, c.Log())
	}
	return c, nil
}

// start runs the child with its log in the working directory.
func (e *env) start(c *child, args []string) error {
	if e.cfg.Exe == "" {
		return fmt.Errorf("%s needs the lighthouse binary (Config.Exe)", c.name)
	}
	if err := os.MkdirAll(c.mnt, 0o755); err != nil {
		return err
	}
	p, err := supervise.Start(supervise.Config{Name: c.name, Path: e.cfg.Exe, Args: args,
		Log: filepath.Join(e.dir, c.name+".log"), Mounts: []string{c.mnt}, OwnGroup: true})
	if err != nil {
		return err
	}
	c.Proc = p
	e.mu.Lock()
	e.children = append(e.children, c)
	e.mu.Unlock()
	fmt.Fprintf(e.cfg.Log, "started %s (pid %d): %s\n", c.name, p.Pid(), strings.Join(args, " "))
	return nil
}

// alive reports an error if the child has exited.
func (c *child) alive() error {
	if c.Running() {
		return nil
	}
	return c.ExitError()
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
