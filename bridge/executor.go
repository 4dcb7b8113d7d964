package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// EnvExecutor marks a process started as a bridge's executor: main
// functions call RunExecutorIfChild first thing.
const EnvExecutor = "LIGHTHOUSE_EXECUTOR"

// Control messages from a bridge to its executor.
const (
	ctlAttach   = "attach"    // Arg: the mount point; open it as the root (and resume)
	ctlCloseAll = "close-all" // close every handle and the root; pause handed connections' ops
	ctlResume   = "resume"    // let handed connections' ops run again (after a failed restore)
	ctlInflight = "inflight"  // Arg: the op timeout; answer handed ops running longer, and say so
	ctlDrain    = "drain"     // stop reading handed connections, let their ops finish, close them
)

// Messages from an executor to its bridge carry execRequest in their ID.
const (
	// execRequest marks the frames the executor starts: its questions to
	// the bridge (control messages of handed connections: state,
	// priority) and the bridge's answers, and ctlStats.
	execRequest = 1 << 63
	// ctlStats: Arg is a batch of handed ops' outcomes (statsBuffer); no
	// answer.
	ctlStats = "stats"
)

// Errors an executor reports for an op. errRefused means a bad request
// (HTTP 400); errFailed means the op could not be run (HTTP 503).
var (
	errRefused = errors.New("refused")
	errFailed  = errors.New("failed")
)

const maxFrame = 80 << 20 // a 64 MiB read plus headroom

// errorFrame carries kind ("refused" or "failed") and the message.
func errorFrame(id uint64, kind, err error) fsop.Frame { return frameErr(id, kind, err) }

// parseErrorFrame turns an error frame back into an error wrapping
// errRefused or errFailed.
func parseErrorFrame(p []byte) error {
	msg := string(p)
	if rest, ok := strings.CutPrefix(msg, errRefused.Error()+": "); ok {
		return fmt.Errorf("%w: %s", errRefused, rest)
	}
	rest, _ := strings.CutPrefix(msg, errFailed.Error()+": ")
	return fmt.Errorf("%w: %s", errFailed, rest)
}

// executorProc is the bridge's side of one executor process.
type executorProc struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	handoff *net.UnixConn // frames connections go to the executor here
	// fromExec handles the frames the executor starts (execRequest).
	fromExec func(p *executorProc, f fsop.Frame)

	wmu sync.Mutex
	w   *bufio.Writer

	calls waiters       // the bridge's requests waiting for answers
	dead  chan struct{} // closed when the process is gone
	// hung is set when an op outlived the op timeout: no later op is sent
	// to this executor, it is replaced first (Bridge.rlockExec).
	hung atomic.Bool
	why  atomic.Pointer[string] // why the watchdog declared it hung
	// moved counts the bytes that crossed the pipes both ways: progress
	// for the watchdog while a large op is sent or its result read.
	moved atomic.Uint64
}

// countingPipe counts what crosses a pipe in moved, writing in chunks of
// at most 1 MiB so that a large frame shows progress while it is sent.
type countingPipe struct {
	r     io.Reader
	w     io.Writer
	moved *atomic.Uint64
}

func (c countingPipe) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.moved.Add(uint64(n))
	return n, err
}

func (c countingPipe) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		n, err := c.w.Write(p[:min(len(p), 1<<20)])
		total += n
		c.moved.Add(uint64(n))
		if err != nil {
			return total, err
		}
		p = p[n:]
	}
	return total, nil
}

// markHung records why the executor is hung (the first reason wins).
func (p *executorProc) markHung(why string) {
	p.why.CompareAndSwap(nil, &why)
	p.hung.Store(true)
}

// hungWhy says why the executor was declared hung.
func (p *executorProc) hungWhy() string {
	if w := p.why.Load(); w != nil {
		return *w
	}
	return "unknown"
}

// startExecutor starts an executor process (this binary, re-executed). It
// must be started before the mount it will use, and never inherits a file
// on a FUSE mount (go-fuse fs/api.go, "Deadlocks" 1a-1c).
func startExecutor(extraEnv []string, fromExec func(*executorProc, fsop.Frame)) (*executorProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	handoff, childEnd, err := handoffPair()
	if err != nil {
		return nil, err
	}
	defer childEnd.Close() // the child has its own copy
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), EnvExecutor+"=1", envHandoff+"=3"), extraEnv...)
	cmd.ExtraFiles = []*os.File{childEnd} // descriptor 3
	cmd.Dir = "/"
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := startSlack(cmd, executorTimerSlack); err != nil {
		handoff.Close()
		return nil, fmt.Errorf("start executor: %w", err)
	}
	p := &executorProc{cmd: cmd, in: in, handoff: handoff, fromExec: fromExec, dead: make(chan struct{})}
	p.w = bufio.NewWriterSize(countingPipe{w: in, moved: &p.moved}, 256<<10)
	go p.readLoop(bufio.NewReaderSize(countingPipe{r: out, moved: &p.moved}, 256<<10))
	return p, nil
}

// executorTimerSlack is the timer slack the executor process runs with
// (prctl PR_SET_TIMERSLACK; Linux's default is 50 us). Its own timers need
// no precision (the outcome batches' 100 ms, deadlines); what it changes is
// the Go runtime's sysmon thread, which while a P is busy sleeps 20 us at a
// time: with the default slack that is a wake-up every ~70 us of an op, a
// quarter of the executor's CPU on these VMs and 3-5 wake-ups per op
// (docs/performance.md, "Where a bridge op's time goes"). With 1 ms it
// wakes about once an op. Ops themselves are woken by I/O, never by a
// timer, so the slack does not delay them.
const executorTimerSlack = time.Millisecond

// startSlack starts cmd from a thread whose timer slack is slack: a child
// inherits its creator thread's slack, and every thread of a Go process
// descends from its first. The thread's own slack is restored before it
// is released. Without prctl (it fails) cmd starts with the usual slack.
func startSlack(cmd *exec.Cmd, slack time.Duration) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread() // never exit the thread: Pdeathsig follows the thread that started the child
	old, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil || unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(slack.Nanoseconds()), 0, 0, 0) != nil {
		return cmd.Start()
	}
	defer unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(old), 0, 0, 0)
	return cmd.Start()
}

func (p *executorProc) readLoop(r *bufio.Reader) {
	var err error
	for {
		var f fsop.Frame
		f, err = fsop.ReadFrame(r, maxFrame)
		if err != nil {
			break
		}
		if f.ID&execRequest != 0 {
			if p.fromExec != nil {
				p.fromExec(p, f)
			}
			continue
		}
		p.calls.deliver(f)
	}
	p.cmd.Wait()
	p.handoff.Close()
	p.calls.fail(fmt.Errorf("executor process ended: %v (%v)", err, p.cmd.ProcessState))
	close(p.dead)
}

// call sends one frame and waits for its answer, the context, or the death
// of the process. A context that ends first leaves the op running: the
// caller decides whether the executor is hung.
func (p *executorProc) call(ctx context.Context, typ uint8, payload []byte) (fsop.Frame, error) {
	id, ch, err := p.calls.add(0)
	if err != nil {
		return fsop.Frame{}, fmt.Errorf("%w: %v", errFailed, err)
	}
	if err := p.send(fsop.Frame{ID: id, Type: typ, Payload: payload}); err != nil {
		p.calls.forget(id)
		return fsop.Frame{}, fmt.Errorf("%w: write to executor: %v", errFailed, err)
	}
	select {
	case f, ok := <-ch:
		if !ok {
			return fsop.Frame{}, fmt.Errorf("%w: executor died during the op", errFailed)
		}
		return f, nil
	case <-ctx.Done():
		p.calls.forget(id)
		return fsop.Frame{}, fmt.Errorf("%w: %v", errFailed, ctx.Err())
	}
}

// send writes one frame to the executor.
func (p *executorProc) send(f fsop.Frame) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	err := fsop.WriteFrame(p.w, f)
	if err == nil {
		err = p.w.Flush()
	}
	return err
}

// exec runs one op.
func (p *executorProc) exec(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
	f, err := p.call(ctx, fsop.FrameOp, fsop.AppendOp(nil, op))
	if err != nil {
		return fsop.Result{}, err
	}
	switch f.Type {
	case fsop.FrameResult:
		res, err := fsop.DecodeResult(f.Payload)
		if err != nil {
			return fsop.Result{}, fmt.Errorf("%w: decode executor result: %v", errFailed, err)
		}
		return res, nil
	case fsop.FrameError:
		return fsop.Result{}, parseErrorFrame(f.Payload)
	}
	return fsop.Result{}, fmt.Errorf("%w: unexpected frame type %d from executor", errFailed, f.Type)
}

// control sends a control message and waits for its acknowledgement.
func (p *executorProc) control(ctx context.Context, kind, arg string) error {
	f, err := p.call(ctx, fsop.FrameControl, fsop.AppendControl(nil, fsop.Control{Kind: kind, Arg: arg}))
	if err != nil {
		return err
	}
	if len(f.Payload) > 0 {
		return fmt.Errorf("executor %s: %s", kind, f.Payload)
	}
	return nil
}

// kill ends the process at once (a hung executor).
func (p *executorProc) kill() {
	p.cmd.Process.Kill()
	<-p.dead
}

// stop closes the executor's stdin so it finishes running ops and exits,
// and kills it if it does not within the context.
func (p *executorProc) stop(ctx context.Context) {
	p.wmu.Lock()
	p.in.Close()
	p.wmu.Unlock()
	select {
	case <-p.dead:
	case <-ctx.Done():
		p.kill()
	}
}
