package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/sysexec"
)

// EnvExecutor marks a process started as a bridge's executor: main
// functions call RunExecutorIfChild first thing.
const EnvExecutor = "LIGHTHOUSE_EXECUTOR"

// Control messages from a bridge to its executor.
const (
	ctlAttach   = "attach"    // Arg: the mount point; open it as the root
	ctlCloseAll = "close-all" // close every handle and the root
)

// Errors an executor reports for an op. errRefused means a bad request
// (HTTP 400); errFailed means the op could not be run (HTTP 503).
var (
	errRefused = errors.New("refused")
	errFailed  = errors.New("failed")
)

const maxFrame = 80 << 20 // a 64 MiB read plus headroom

// RunExecutorIfChild turns this process into an executor if it was started
// as one, and never returns then.
func RunExecutorIfChild() {
	if os.Getenv(EnvExecutor) == "" {
		return
	}
	err := serveExecutor(os.Stdin, os.Stdout)
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(os.Stderr, "lighthouse executor:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveExecutor is the executor's main loop: ops arrive as frames and run
// concurrently, each answered by a frame with the same id.
func serveExecutor(in io.Reader, out io.Writer) error {
	r := bufio.NewReaderSize(in, 256<<10)
	w := bufio.NewWriterSize(out, 256<<10)
	var wmu sync.Mutex
	reply := func(f fsop.Frame) {
		wmu.Lock()
		defer wmu.Unlock()
		fsop.WriteFrame(w, f)
		w.Flush()
	}
	var (
		mu sync.RWMutex // held shared by running ops, exclusively to swap ex
		ex *sysexec.Executor
		wg sync.WaitGroup
	)
	defer func() {
		wg.Wait()
		if ex != nil {
			ex.Close()
		}
	}()
	for {
		f, err := fsop.ReadFrame(r, maxFrame)
		if err != nil {
			return err
		}
		switch f.Type {
		case fsop.FrameControl:
			c, err := fsop.DecodeControl(f.Payload)
			if err == nil {
				mu.Lock()
				err = control(&ex, c)
				mu.Unlock()
			}
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			reply(fsop.Frame{ID: f.ID, Type: fsop.FrameControl, Payload: []byte(msg)})
		case fsop.FrameOp:
			op, err := fsop.DecodeOp(f.Payload)
			if err != nil {
				reply(errorFrame(f.ID, errRefused, err))
				continue
			}
			wg.Add(1)
			go func(id uint64) {
				defer wg.Done()
				mu.RLock()
				cur := ex
				if cur == nil {
					mu.RUnlock()
					reply(errorFrame(id, errFailed, errors.New("executor has no root attached")))
					return
				}
				res, err := cur.Exec(&op)
				mu.RUnlock()
				if err != nil {
					reply(errorFrame(id, errRefused, err))
					return
				}
				reply(fsop.Frame{ID: id, Type: fsop.FrameResult, Payload: fsop.AppendResult(nil, &res)})
			}(f.ID)
		default:
			reply(errorFrame(f.ID, errRefused, fmt.Errorf("unknown frame type %d", f.Type)))
		}
	}
}

func control(ex **sysexec.Executor, c fsop.Control) error {
	switch c.Kind {
	case ctlAttach:
		if *ex != nil {
			(*ex).Close()
			*ex = nil
		}
		e, err := sysexec.New(c.Arg, sysexec.Limits{})
		if err != nil {
			return err
		}
		*ex = e
		return nil
	case ctlCloseAll:
		if *ex != nil {
			err := (*ex).Close()
			*ex = nil
			return err
		}
		return nil
	}
	return fmt.Errorf("unknown control %q", c.Kind)
}

// errorFrame carries kind ("refused" or "failed") and the message.
func errorFrame(id uint64, kind, err error) fsop.Frame {
	return fsop.Frame{ID: id, Type: fsop.FrameError, Payload: []byte(kind.Error() + ": " + err.Error())}
}

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
	cmd *exec.Cmd
	in  io.WriteCloser

	wmu sync.Mutex
	w   *bufio.Writer

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan fsop.Frame
	dead    chan struct{} // closed when the process is gone
	deadErr error
	// hung is set when an op outlived the op timeout: no later op is sent
	// to this executor, it is replaced first (Bridge.rlockExec).
	hung atomic.Bool
}

// startExecutor starts an executor process (this binary, re-executed). It
// must be started before the mount it will use, and never inherits a file
// on a FUSE mount (go-fuse fs/api.go, "Deadlocks" 1a-1c).
func startExecutor(extraEnv []string) (*executorProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), EnvExecutor+"=1"), extraEnv...)
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
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start executor: %w", err)
	}
	p := &executorProc{cmd: cmd, in: in, w: bufio.NewWriterSize(in, 256<<10),
		pending: map[uint64]chan fsop.Frame{}, dead: make(chan struct{})}
	go p.readLoop(bufio.NewReaderSize(out, 256<<10))
	return p, nil
}

func (p *executorProc) readLoop(r *bufio.Reader) {
	var err error
	for {
		var f fsop.Frame
		f, err = fsop.ReadFrame(r, maxFrame)
		if err != nil {
			break
		}
		p.mu.Lock()
		ch := p.pending[f.ID]
		delete(p.pending, f.ID)
		p.mu.Unlock()
		if ch != nil {
			ch <- f
		}
	}
	p.cmd.Wait()
	p.mu.Lock()
	p.deadErr = fmt.Errorf("executor process ended: %v (%v)", err, p.cmd.ProcessState)
	for id, ch := range p.pending {
		close(ch)
		delete(p.pending, id)
	}
	p.mu.Unlock()
	close(p.dead)
}

// call sends one frame and waits for its answer, the context, or the death
// of the process. A context that ends first leaves the op running: the
// caller decides whether the executor is hung.
func (p *executorProc) call(ctx context.Context, typ uint8, payload []byte) (fsop.Frame, error) {
	ch := make(chan fsop.Frame, 1)
	p.mu.Lock()
	if p.deadErr != nil {
		err := p.deadErr
		p.mu.Unlock()
		return fsop.Frame{}, fmt.Errorf("%w: %v", errFailed, err)
	}
	p.nextID++
	id := p.nextID
	p.pending[id] = ch
	p.mu.Unlock()

	p.wmu.Lock()
	err := fsop.WriteFrame(p.w, fsop.Frame{ID: id, Type: typ, Payload: payload})
	if err == nil {
		err = p.w.Flush()
	}
	p.wmu.Unlock()
	if err != nil {
		p.forget(id)
		return fsop.Frame{}, fmt.Errorf("%w: write to executor: %v", errFailed, err)
	}
	select {
	case f, ok := <-ch:
		if !ok {
			return fsop.Frame{}, fmt.Errorf("%w: executor died during the op", errFailed)
		}
		return f, nil
	case <-ctx.Done():
		p.forget(id)
		return fsop.Frame{}, fmt.Errorf("%w: %v", errFailed, ctx.Err())
	}
}

func (p *executorProc) forget(id uint64) {
	p.mu.Lock()
	delete(p.pending, id)
	p.mu.Unlock()
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
