// Package supervise runs the child processes that serve FUSE mounts (a
// bridge, a `lighthouse mount`, a proxy with its front mount, or any helper
// a test needs) so that none outlives its parent and no mount is left
// behind: the project's central safety rule, in one place.
//
// # Lifecycle
//
// Start runs the child with Pdeathsig (it gets SIGTERM if the parent dies),
// its working directory at / (never inside a mount) and its stdout and
// stderr in a log file of its own: a file, not a pipe, so that a child
// whose parent died still writes its shutdown log instead of dying of
// SIGPIPE before it unmounts. The Wait methods poll for readiness (a line
// in the log, an HTTP 200, a mount in /proc) and fail early, with the end
// of the log, when the child exits first. Stop sends SIGTERM and waits a
// grace period; a child still running then has the FUSE connections of
// its mounts aborted through fusectl (so nothing waits on it) and is
// killed. Whatever happened, a mount still on one of its mount points
// afterwards is aborted and detached lazily, and reported.
package supervise

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lighthouse-fs/lighthouse/fusemount"
)

// Config says how to start one child.
type Config struct {
	// Name names the child in errors ("the primary bridge", "bazil-mount").
	Name string
	// Path is the executable; Args its arguments (without argv[0]).
	Path string
	Args []string
	// Env is the child's environment; nil means this process's.
	Env []string
	// Log is the file that gets the child's stdout and stderr. It is
	// truncated unless AppendLog.
	Log       string
	AppendLog bool
	// Mounts are the FUSE mount points the child serves: aborted if it
	// hangs, detached (and reported) if left after it stopped.
	Mounts []string
	// OwnGroup puts the child in its own process group, so a terminal's
	// Ctrl-C reaches only the parent, which then stops it in order.
	OwnGroup bool
}

// Proc is one running (or exited) child.
type Proc struct {
	cfg      Config
	cmd      *exec.Cmd
	exited   chan struct{}
	logStart int64 // the log's size when the child started (AppendLog)

	mu      sync.Mutex
	killed  bool // Kill: a crash on purpose, its mounts are expected to stay
	stopped bool
	stopErr error
}

// Start starts the child. The caller must Stop it.
func Start(cfg Config) (*Proc, error) {
	if cfg.Name == "" {
		cfg.Name = cfg.Path
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if cfg.AppendLog {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	logFile, err := os.OpenFile(cfg.Log, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.Name, err)
	}
	defer logFile.Close() // the child has its own descriptor
	var logStart int64    // WaitLine reads only what this child writes
	if st, err := logFile.Stat(); err == nil {
		logStart = st.Size()
	}
	cmd := exec.Command(cfg.Path, cfg.Args...)
	cmd.Env = cfg.Env
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: cfg.OwnGroup}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.Name, err)
	}
	p := &Proc{cfg: cfg, cmd: cmd, exited: make(chan struct{}), logStart: logStart}
	go func() { cmd.Wait(); close(p.exited) }()
	return p, nil
}

// Name is the child's name from its Config.
func (p *Proc) Name() string { return p.cfg.Name }

// Log is the path of the child's log file.
func (p *Proc) Log() string { return p.cfg.Log }

// Pid is the child's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the child has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Running reports whether the child has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// State is the child's exit state, nil while it runs.
func (p *Proc) State() *os.ProcessState {
	if p.Running() {
		return nil
	}
	return p.cmd.ProcessState
}

// Tail returns the last n lines of the child's log.
func (p *Proc) Tail(n int) string { return Tail(p.cfg.Log, n) }

// ExitError says that the child exited, how, and the end of its log.
func (p *Proc) ExitError() error {
	status := "exited"
	if st := p.State(); st != nil {
		status = "exited (" + st.String() + ")"
	}
	return fmt.Errorf("%s %s; see %s:\n%s", p.cfg.Name, status, p.cfg.Log, p.Tail(12))
}

// Signal sends sig to the child.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill ends the child with SIGKILL, as a crash would, and waits for it.
// Its mounts stay behind, stale: the caller deals with them (Stop then
// detaches them without calling it an error).
func (p *Proc) Kill() {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	p.reap()
}

// reapAbortAfter is how long a killed child may take to exit before the
// connections of its mounts are aborted: a thread of a server blocked in a
// request on its own mount (go-fuse looks at its mount point as it
// mounts) waits uninterruptibly, even for SIGKILL, until the connection
// ends.
const reapAbortAfter = time.Second

// reap kills the child and waits for it to exit, aborting its mounts'
// connections if it does not.
func (p *Proc) reap() {
	p.cmd.Process.Kill()
	select {
	case <-p.exited:
		return
	case <-time.After(reapAbortAfter):
	}
	for _, m := range p.cfg.Mounts {
		fusemount.Abort(m)
	}
	<-p.exited
}

// Stop ends the child: SIGTERM (a server finishes its running ops and
// unmounts), then, if it has not exited within grace, its connections are
// aborted and it is killed. Any FUSE mount still on its mount points is
// then aborted and detached. The error says what went wrong: killed after
// grace, an unsuccessful exit (unless Kill ended it), a mount left.
// Stop is idempotent: later calls return the first call's error.
func (p *Proc) Stop(grace time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return p.stopErr
	}
	p.stopped = true
	var errs []error
	if p.Running() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(grace):
			for _, m := range p.cfg.Mounts {
				fusemount.Abort(m)
			}
			p.reap()
			errs = append(errs, fmt.Errorf("%s did not stop within %s of SIGTERM: killed; see %s", p.cfg.Name, grace, p.cfg.Log))
		}
	}
	if len(errs) == 0 && !p.killed && !p.cmd.ProcessState.Success() {
		errs = append(errs, fmt.Errorf("%s exited unsuccessfully (%s); see %s:\n%s", p.cfg.Name, p.cmd.ProcessState, p.cfg.Log, p.Tail(12)))
	}
	left, err := Detach(p.cfg.Mounts...)
	errs = append(errs, err)
	if len(left) > 0 && !p.killed {
		errs = append(errs, fmt.Errorf("%s left a FUSE mount on %s (now detached)", p.cfg.Name, strings.Join(left, ", ")))
	}
	p.stopErr = errors.Join(errs...)
	return p.stopErr
}

// Detach aborts the connection of and lazily unmounts every FUSE mount on
// dirs, reading only /proc and /sys (never the mounts themselves, which may
// hang). It returns the dirs that carried a mount.
func Detach(dirs ...string) ([]string, error) {
	var left []string
	var errs []error
	for _, d := range dirs {
		if _, ok := fusemount.Find(d); !ok {
			continue
		}
		left = append(left, d)
		fusemount.Abort(d)
		errs = append(errs, fusemount.Unmount(d))
	}
	return left, errors.Join(errs...)
}

// Mounted returns the dirs that carry a FUSE mount (from /proc).
func Mounted(dirs ...string) []string {
	var out []string
	for _, d := range dirs {
		if _, ok := fusemount.Find(d); ok {
			out = append(out, d)
		}
	}
	return out
}

// Tail returns the last n lines of the file at path ("" if unreadable).
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
