package bridge

// The executor process: it runs ops on the bridge's mount, those the bridge
// sends it (HTTP API, readiness probe: frames on its stdin, answers on its
// stdout) and those arriving on the frames connections the bridge hands it
// (handoff.go), which it serves itself.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/sysexec"
)

// Environment of an executor process, set by startExecutor.
const (
	// envHandoff is the descriptor number of the socket on which the
	// bridge hands over frames connections.
	envHandoff = "LIGHTHOUSE_EXECUTOR_HANDOFF"
	// envInject is Config.InjectDivergence and the time (Unix ns) from
	// which it applies, "rate,from", for the ops of handed connections.
	envInject = "LIGHTHOUSE_EXECUTOR_INJECT"
	// envMaxFrame is Config.MaxBody, the largest frame a handed connection
	// may send.
	envMaxFrame = "LIGHTHOUSE_EXECUTOR_MAX_FRAME"
)

// RunExecutorIfChild turns this process into an executor if it was started
// as one, and never returns then.
func RunExecutorIfChild() {
	if os.Getenv(EnvExecutor) == "" {
		return
	}
	// The modes the executor is given are final: an op from the API
	// carries the mode its client wants, one from a mount already had
	// its caller's umask applied by the kernel. The process's own umask
	// (inherited, usually 022) must not be applied a second time.
	syscall.Umask(0)
	executorProcs()
	// Stdin and stdout in non-blocking mode: the Go runtime then waits for
	// them with its poller instead of a thread parked in read(2), which
	// would hold a P in a syscall all the time.
	in, out := pollable(0, "stdin"), pollable(1, "stdout")
	x := newExecServer(out)
	if fd, err := strconv.Atoi(os.Getenv(envHandoff)); err == nil {
		uc, err := handoffConn(fd)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lighthouse executor:", err)
			os.Exit(1)
		}
		go x.acceptHandoffs(uc)
	}
	x.inject = parseInjection(os.Getenv(envInject))
	if n, err := strconv.Atoi(os.Getenv(envMaxFrame)); err == nil && n > 0 {
		x.maxFrame = n
	}
	err := x.serve(in)
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(os.Stderr, "lighthouse executor:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// executorMinProcs is the fewest Ps (GOMAXPROCS) the executor runs with.
// Its goroutines spend their time blocked in syscalls on the mount, each
// holding a P; while another P is idle the runtime leaves them be, but
// once none is, a frame that arrives waits for sysmon to take a P back
// from a blocked syscall, and with the executor's timer slack
// (executorTimerSlack) sysmon looks only about once a millisecond. A P
// costs nothing while idle; with 8 of them up to 7 ops may block at once
// before a new one waits for sysmon. GOMAXPROCS in the environment is
// obeyed as it is.
const executorMinProcs = 8

func executorProcs() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < executorMinProcs {
		runtime.GOMAXPROCS(executorMinProcs)
	}
}

// pollable returns fd in non-blocking mode, as a file the runtime's poller
// serves, or the blocking os.File if that fails.
func pollable(fd int, name string) *os.File {
	syscall.SetNonblock(fd, true) // os.NewFile sees the mode
	return os.NewFile(uintptr(fd), name)
}

// execServer is the executor process's state.
type execServer struct {
	// mu is held shared by running ops and exclusively to swap ex.
	mu sync.RWMutex
	ex *sysexec.Executor
	// resume is non-nil from a close-all to the next attach or resume: ops
	// of handed connections wait for it to be closed (a restore is
	// swapping the mount).
	resume chan struct{}
	ended  bool // stdin ended: nothing will attach again

	wmu sync.Mutex
	w   *bufio.Writer // to the bridge

	asks waiters // questions to the bridge waiting for answers

	conns    frameConns  // the connections handed over
	flight   flightTable // their ops running, for the bridge's watchdog
	stats    statsBuffer // their ops' outcomes, for the bridge's metrics
	inject   injection
	maxFrame int            // of handed connections
	ops      sync.WaitGroup // ops from stdin running
}

func newExecServer(out io.Writer) *execServer {
	x := &execServer{w: bufio.NewWriterSize(out, 256<<10), maxFrame: maxFrame}
	x.stats.send = x.send
	return x
}

// send writes one frame to the bridge.
func (x *execServer) send(f fsop.Frame) {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	fsop.WriteFrame(x.w, f)
	x.w.Flush()
}

// serve is the main loop: frames from the bridge on in, until it ends.
func (x *execServer) serve(in io.Reader) error {
	r := bufio.NewReaderSize(in, 256<<10)
	defer x.shutdown()
	for {
		f, err := fsop.ReadFrame(r, maxFrame)
		if err != nil {
			return err
		}
		if f.ID&execRequest != 0 {
			x.asks.deliver(f)
			continue
		}
		switch f.Type {
		case fsop.FrameControl:
			c, err := fsop.DecodeControl(f.Payload)
			if err != nil {
				x.send(errorFrame(f.ID, errRefused, err))
				continue
			}
			x.control(f.ID, c)
		case fsop.FrameOp:
			op, err := fsop.DecodeOp(f.Payload)
			if err != nil {
				x.send(errorFrame(f.ID, errRefused, err))
				continue
			}
			x.ops.Add(1)
			go func(id uint64) {
				defer x.ops.Done()
				res, err := x.exec(&op)
				x.send(resultFrame(id, res, err))
			}(f.ID)
		default:
			x.send(errorFrame(f.ID, errRefused, fmt.Errorf("unknown frame type %d", f.Type)))
		}
	}
}

// shutdown ends the process's work once stdin has ended: ops waiting for
// a resume fail, running ones finish, requests to the bridge fail.
func (x *execServer) shutdown() {
	x.mu.Lock()
	x.ended = true
	if x.resume != nil {
		close(x.resume)
		x.resume = nil
	}
	x.mu.Unlock()
	x.asks.fail(errors.New("the bridge is gone"))
	x.ops.Wait()
	x.mu.Lock()
	if x.ex != nil {
		x.ex.Close()
		x.ex = nil
	}
	x.mu.Unlock()
}

// control runs a control message from the bridge and answers it: an empty
// payload for success, the error otherwise.
func (x *execServer) control(id uint64, c fsop.Control) {
	answer := func(err error) {
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		x.send(fsop.Frame{ID: id, Type: fsop.FrameControl, Payload: []byte(msg)})
	}
	switch c.Kind {
	case ctlAttach, ctlCloseAll, ctlResume:
		x.mu.Lock()
		err := x.swap(c)
		x.mu.Unlock()
		answer(err)
	case ctlInflight:
		limit, err := time.ParseDuration(c.Arg)
		if err == nil {
			err = x.flight.answerHung(limit)
		}
		x.stats.flush()
		answer(err)
	case ctlDrain:
		go func() { // ops draining may still ask the bridge something
			x.conns.shutdown(context.Background())
			x.stats.flush()
			answer(nil)
		}()
	default:
		answer(fmt.Errorf("unknown control %q", c.Kind))
	}
}

// swap attaches a root, or closes it and pauses (until the next attach or
// resume), or resumes; mu is held.
func (x *execServer) swap(c fsop.Control) error {
	if c.Kind == ctlResume || c.Kind == ctlAttach {
		if x.resume != nil {
			close(x.resume)
			x.resume = nil
		}
		if c.Kind == ctlResume {
			return nil
		}
	}
	var err error
	if x.ex != nil {
		err = x.ex.Close()
		x.ex = nil
	}
	if c.Kind == ctlCloseAll {
		if x.resume == nil && !x.ended {
			x.resume = make(chan struct{})
		}
		return err
	}
	e, err := sysexec.New(c.Arg, sysexec.Limits{})
	if err != nil {
		return err
	}
	x.ex = e
	return nil
}

// exec runs op on the root attached, waiting while the executor is paused.
// Errors wrap errRefused (a bad op) or errFailed (no root).
func (x *execServer) exec(op *fsop.Op) (fsop.Result, error) {
	x.mu.RLock()
	for x.resume != nil {
		ch := x.resume
		x.mu.RUnlock()
		<-ch
		x.mu.RLock()
	}
	defer x.mu.RUnlock()
	if x.ex == nil {
		return fsop.Result{}, fmt.Errorf("%w: executor has no root attached", errFailed)
	}
	res, err := x.ex.Exec(op)
	if err != nil {
		return res, fmt.Errorf("%w: %v", errRefused, err)
	}
	if res.Errno == "ECONNABORTED" || res.Errno == "ENOTCONN" {
		// Not the filesystem's answer: the mount's FUSE connection ended
		// (its server, the bridge, died or the connection was aborted).
		// Handed connections outlive the bridge for a moment, so this
		// reaches clients: a failure of the bridge, never an errno to
		// compare.
		return fsop.Result{}, fmt.Errorf("%w: %s on %s: the mount's FUSE connection ended (the bridge serving it died or it was aborted)", errFailed, res.Errno, op.Kind)
	}
	return res, nil
}

// runOp runs an op of a handed connection (frameServer), with what
// Bridge.Exec adds to an op: the probe's name reserved and hidden,
// divergence injected, the outcome counted (by the bridge, from stats).
func (x *execServer) runOp(fc *frameConn, id uint64, op *fsop.Op) (fsop.Result, error) {
	start := time.Now()
	var res fsop.Result
	var err error
	if isReserved(op) {
		err = fmt.Errorf("%w: %s is reserved for the bridge's readiness probe", errRefused, probeName)
	} else {
		f := x.flight.begin(fc, id, start)
		res, err = x.exec(op)
		if x.flight.end(f) {
			err = errAnswered
		}
	}
	if err == nil {
		hideProbe(op, &res)
		x.inject.apply(&res)
	}
	x.stats.add(op, &res, err, time.Since(start))
	return res, err
}

// control answers a control message of a handed connection: ping here,
// the rest (state, priority) by the bridge.
func (x *execServer) controlFrame(id uint64, c fsop.Control) fsop.Frame {
	if c.Kind == fsop.ControlPing {
		return okFrame(id)
	}
	f, err := x.ask(c)
	if err != nil {
		return frameErr(id, errFailed, err)
	}
	f.ID = id
	return f
}

// ask sends a control message to the bridge and waits for its answer.
func (x *execServer) ask(c fsop.Control) (fsop.Frame, error) {
	id, ch, err := x.asks.add(execRequest)
	if err != nil {
		return fsop.Frame{}, err
	}
	x.send(fsop.Frame{ID: id, Type: fsop.FrameControl, Payload: fsop.AppendControl(nil, c)})
	f, ok := <-ch
	if !ok {
		return fsop.Frame{}, errors.New("the bridge is gone")
	}
	return f, nil
}

// execFrames is the executor as the frameServer of the connections handed
// to it.
type execFrames struct{ x *execServer }

func (e execFrames) runOp(fc *frameConn, id uint64, op *fsop.Op) (fsop.Result, error) {
	return e.x.runOp(fc, id, op)
}

func (e execFrames) control(id uint64, c fsop.Control) fsop.Frame { return e.x.controlFrame(id, c) }

// acceptHandoffs serves every connection the bridge hands over on uc, until
// uc ends.
func (x *execServer) acceptHandoffs(uc *net.UnixConn) {
	for {
		conn, early, err := receiveConn(uc)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintln(os.Stderr, "lighthouse executor: handoff:", err)
			}
			return
		}
		var src io.Reader = conn
		if len(early) > 0 {
			src = io.MultiReader(bytes.NewReader(early), conn)
		}
		go serveFrames(&x.conns, execFrames{x}, conn, src, x.maxFrame)
	}
}

// injection corrupts a fraction of read results from a given time on
// (Config.InjectDivergence, InjectAfter): demo and tests only.
type injection struct {
	rate float64
	from time.Time
}

func parseInjection(s string) injection {
	r, f, ok := strings.Cut(s, ",")
	if !ok {
		return injection{}
	}
	rate, err1 := strconv.ParseFloat(r, 64)
	from, err2 := strconv.ParseInt(f, 10, 64)
	if err1 != nil || err2 != nil {
		return injection{}
	}
	return injection{rate: rate, from: time.Unix(0, from)}
}

func (in injection) String() string {
	return strconv.FormatFloat(in.rate, 'g', -1, 64) + "," + strconv.FormatInt(in.from.UnixNano(), 10)
}

// apply flips a byte of res's data at the injection rate.
func (in injection) apply(res *fsop.Result) {
	if in.rate > 0 && len(res.Data) > 0 && time.Now().After(in.from) && rand.Float64() < in.rate {
		res.Data = append([]byte{res.Data[0] ^ 0x20}, res.Data[1:]...)
	}
}
