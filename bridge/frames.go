package bridge

// GET /v1/frames: the front proxy's transport. The request upgrades the
// HTTP connection (Connection: Upgrade, Upgrade: lighthouse-frames/1 ->
// 101 Switching Protocols); the connection then carries fsop frames both
// ways (docs/protocol.md, "Proxy transport"): FrameOp in, FrameResult or
// FrameError out with the same id. Ops run concurrently, so replies go out
// in completion order. One keep-alive HTTP+JSON round trip costs about
// three times a frame round trip on loopback: the proxy, which must add at
// most a quarter to a bridge's latency, cannot afford it.
//
// Once upgraded, a connection is handed to the executor process (handoff.go),
// which serves its ops itself: an op then crosses one process boundary on
// its way to the mount instead of two (docs/performance.md, "Where a bridge
// op's time goes"). Control messages it cannot answer (state, priority) it
// passes back to the bridge. A degraded bridge, with no executor, serves
// its frames connections itself.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

const (
	// framesMaxInFlight bounds the ops one connection runs at once: the
	// bridge reads no more frames from it until one finishes.
	framesMaxInFlight = 256
	// framesBufSize is the size of a connection's read and write buffers.
	framesBufSize = 64 << 10
	// framesPoolMax: reply buffers larger than this are not kept for reuse.
	framesPoolMax = 256 << 10
)

// replyBufs holds buffers for encoding results.
var replyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// frameConns tracks the upgraded connections of a bridge, which
// http.Server.Shutdown no longer sees once hijacked. Its zero value is
// ready; Close calls shutdown.
type frameConns struct {
	mu      sync.Mutex
	conns   map[*frameConn]struct{}
	closed  bool
	closing atomic.Bool // closed, readable without mu by the read loops
	wg      sync.WaitGroup
}

// add registers fc; false once the bridge is closing.
func (fs *frameConns) add(fc *frameConn) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed {
		return false
	}
	if fs.conns == nil {
		fs.conns = map[*frameConn]struct{}{}
	}
	fs.conns[fc] = struct{}{}
	fs.wg.Add(1)
	return true
}

func (fs *frameConns) remove(fc *frameConn) {
	fs.mu.Lock()
	delete(fs.conns, fc)
	fs.mu.Unlock()
	fs.wg.Done()
}

// shutdown stops every connection from reading more frames, lets the ops
// running on them finish and their replies go out, and closes them. If ctx
// ends first, the connections are closed at once (replies of ops still
// running are dropped) and the error says so. Later upgrades are refused.
func (fs *frameConns) shutdown(ctx context.Context) error {
	fs.mu.Lock()
	fs.closed = true
	fs.closing.Store(true)
	for fc := range fs.conns {
		fc.conn.SetReadDeadline(time.Now()) // wakes a read loop blocked in Read
	}
	fs.mu.Unlock()
	done := make(chan struct{})
	go func() {
		fs.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	fs.mu.Lock()
	n := len(fs.conns)
	for fc := range fs.conns {
		fc.conn.Close()
	}
	fs.mu.Unlock()
	return fmt.Errorf("%d frames connection(s) still had ops running: closed: %w", n, ctx.Err())
}

// headerHasToken reports whether a comma-separated header of h contains
// token (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// handleFrames upgrades the connection and hands it to the executor, or,
// degraded, serves frames on it until the peer closes it, a read fails, or
// the bridge closes.
func (b *Bridge) handleFrames(w http.ResponseWriter, r *http.Request) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", fsop.FramesProtocol) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", fsop.FramesProtocol)
		writeError(w, http.StatusUpgradeRequired, fmt.Errorf("GET /v1/frames needs Connection: Upgrade and Upgrade: %s", fsop.FramesProtocol))
		return
	}
	if b.frames.closing.Load() {
		writeError(w, http.StatusServiceUnavailable, errors.New("the bridge is shutting down"))
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeError(w, http.StatusInternalServerError, errors.New("this connection cannot be upgraded (HTTP/2?): use HTTP/1.1"))
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		b.log.Error("frames: hijack failed", "err", err)
		return
	}
	// Clear the deadlines the server set for the request.
	conn.SetDeadline(time.Time{})
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + fsop.FramesProtocol + "\r\n\r\n")
	if err := brw.Flush(); err != nil {
		conn.Close()
		return
	}
	// Frames the client sent without waiting for the 101 may already sit
	// in the server's small reader: they go first.
	var early []byte
	if n := brw.Reader.Buffered(); n > 0 {
		p, _ := brw.Reader.Peek(n)
		early = bytes.Clone(p)
	}
	if b.handOff(conn, early) {
		return
	}
	var src io.Reader = conn
	if len(early) > 0 {
		src = io.MultiReader(bytes.NewReader(early), conn)
	}
	serveFrames(&b.frames, localFrames{b}, conn, src, int(b.cfg.MaxBody))
}

// frameServer runs what arrives on frames connections: the bridge itself
// (localFrames, degraded) or its executor (execFrames).
type frameServer interface {
	// runOp runs a validated op that arrived as frame id on fc. It may
	// answer the frame itself (a hung op): it then returns errAnswered.
	runOp(fc *frameConn, id uint64, op *fsop.Op) (fsop.Result, error)
	// control answers control message c, frame id.
	control(id uint64, c fsop.Control) fsop.Frame
}

// errAnswered: the frame was answered already; nothing more is sent.
var errAnswered = errors.New("answered")

// serveFrames serves frames on conn, read from src (conn, maybe behind
// early bytes), until the stream ends, then closes conn. A connection
// refused by conns (closing) is closed at once.
func serveFrames(conns *frameConns, srv frameServer, conn net.Conn, src io.Reader, maxFrame int) {
	fc := &frameConn{srv: srv, conns: conns, conn: conn, w: bufio.NewWriterSize(conn, framesBufSize),
		sem: make(chan struct{}, framesMaxInFlight)}
	if !conns.add(fc) {
		conn.Close()
		return
	}
	defer conns.remove(fc)
	fc.serve(bufio.NewReaderSize(src, framesBufSize), maxFrame)
}

// localFrames is a degraded bridge serving frames itself.
type localFrames struct{ b *Bridge }

func (l localFrames) runOp(_ *frameConn, _ uint64, op *fsop.Op) (fsop.Result, error) {
	return l.b.Exec(context.Background(), op)
}

func (l localFrames) control(id uint64, c fsop.Control) fsop.Frame { return l.b.controlFrame(id, c) }

// controlFrame answers the control messages of a frames connection: ping,
// priority and state. The executor passes those of the connections it
// serves here too.
func (b *Bridge) controlFrame(id uint64, c fsop.Control) fsop.Frame {
	switch c.Kind {
	case fsop.ControlPing:
		return okFrame(id)
	case fsop.ControlPriority:
		if err := b.SetPriority(c.Arg); err != nil {
			return resultFrame(id, fsop.Result{}, err)
		}
		return okFrame(id)
	case fsop.ControlState:
		res, err := b.State(c.Arg)
		return resultFrame(id, res, err)
	}
	return frameErr(id, errRefused, fmt.Errorf("unknown control %q", c.Kind))
}

func okFrame(id uint64) fsop.Frame {
	return fsop.Frame{ID: id, Type: fsop.FrameControl, Payload: fsop.AppendControl(nil, fsop.Control{Kind: fsop.ControlOK})}
}

// resultFrame is the answer to id: res, or err as an error frame.
func resultFrame(id uint64, res fsop.Result, err error) fsop.Frame {
	if err != nil {
		kind := errFailed
		if errors.Is(err, errRefused) {
			kind = errRefused
		}
		return frameErr(id, kind, err)
	}
	return fsop.Frame{ID: id, Type: fsop.FrameResult, Payload: fsop.AppendResult(nil, &res)}
}

// frameConn is one upgraded connection.
type frameConn struct {
	srv   frameServer
	conns *frameConns
	conn  net.Conn
	sem   chan struct{} // one token per op running
	ops   sync.WaitGroup

	// writing counts the replies between "ready" and "written": the writer
	// that brings it to zero flushes, so replies finishing together share
	// one write(2).
	writing atomic.Int32
	wmu     sync.Mutex
	w       *bufio.Writer
	werr    error // the first write error: later replies are dropped
}

// serve reads frames until the stream ends, then waits for the ops it
// started and closes the connection.
func (fc *frameConn) serve(r *bufio.Reader, maxFrame int) {
	defer func() {
		fc.ops.Wait()
		fc.conn.Close()
	}()
	for {
		f, err := fsop.ReadFrame(r, maxFrame)
		if err != nil {
			if errors.Is(err, fsop.ErrTooLarge) {
				// Not read: the stream is out of step. Say why, then close.
				fc.reply(frameErr(f.ID, errRefused, err))
			}
			return
		}
		if fc.conns.closing.Load() {
			fc.reply(frameErr(f.ID, errFailed, errors.New("the bridge is shutting down")))
			return
		}
		switch f.Type {
		case fsop.FrameOp:
			// The payload is ours: the op's data may alias it.
			op, err := fsop.DecodeOpNoCopy(f.Payload)
			if err == nil {
				err = op.Validate()
			}
			if err != nil {
				fc.reply(frameErr(f.ID, errRefused, err))
				continue
			}
			fc.sem <- struct{}{}
			fc.ops.Add(1)
			go fc.run(f.ID, op)
		case fsop.FrameControl:
			c, err := fsop.DecodeControl(f.Payload)
			if err != nil {
				fc.reply(frameErr(f.ID, errRefused, err))
				continue
			}
			fc.reply(fc.srv.control(f.ID, c))
		default:
			fc.reply(frameErr(f.ID, errRefused, fmt.Errorf("unknown frame type %d", f.Type)))
		}
	}
}

// run executes one op and answers it. The op runs to its end even if the
// connection is gone; the reply is then dropped.
func (fc *frameConn) run(id uint64, op fsop.Op) {
	defer fc.ops.Done()
	res, err := fc.srv.runOp(fc, id, &op)
	if err != errAnswered {
		fc.replyResult(id, res, err)
	}
	<-fc.sem
}

// replyResult answers request id with res, or with err as an error frame.
func (fc *frameConn) replyResult(id uint64, res fsop.Result, err error) {
	if err != nil {
		fc.reply(resultFrame(id, res, err))
		return
	}
	bp := replyBufs.Get().(*[]byte)
	*bp = fsop.AppendResult((*bp)[:0], &res)
	fc.reply(fsop.Frame{ID: id, Type: fsop.FrameResult, Payload: *bp})
	if cap(*bp) <= framesPoolMax {
		replyBufs.Put(bp)
	}
}

// reply writes f, and flushes unless another reply is about to be written
// (that writer flushes). A write error closes the connection.
func (fc *frameConn) reply(f fsop.Frame) {
	fc.writing.Add(1)
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	if fc.werr == nil {
		fc.werr = fsop.WriteFrame(fc.w, f)
	}
	if fc.writing.Add(-1) == 0 && fc.werr == nil {
		fc.werr = fc.w.Flush()
	}
	if fc.werr != nil && fc.werr != errFrameConnDone {
		fc.conn.Close() // ends the read loop too
		fc.werr = errFrameConnDone
	}
}

// errFrameConnDone marks a connection whose writes failed and which was
// closed.
var errFrameConnDone = errors.New("frames connection closed")

// frameErr is the error reply to id: "refused: msg" or "failed: msg". The
// bridge's errors already start with their kind; it is not repeated.
func frameErr(id uint64, kind, err error) fsop.Frame {
	msg := err.Error()
	if !strings.HasPrefix(msg, kind.Error()+": ") {
		msg = kind.Error() + ": " + msg
	}
	return fsop.Frame{ID: id, Type: fsop.FrameError, Payload: []byte(msg)}
}
