package bridgeclient

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// conn is one upgraded connection: a reader and a writer goroutine, ops in
// flight matched by id.
type conn struct {
	client   *Client
	slot     int
	nc       net.Conn
	br       *bufio.Reader
	wmu      sync.Mutex    // held while writing to bw
	bw       *bufio.Writer // written by a caller with the connection idle, else by writeLoop
	queue    chan outFrame
	dead     chan struct{} // closed by fail
	inflight atomic.Int64

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]*call // nil once failed
	err     error
}

// outFrame is a frame for the writer, which returns buf to the pool.
type outFrame struct {
	id  uint64
	typ uint8
	buf *[]byte
}

// call is one request waiting for its reply.
type call struct{ done chan reply }

type reply struct {
	typ     uint8
	payload []byte
	err     error
}

var (
	bufPool  = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
	callPool = sync.Pool{New: func() any { return &call{done: make(chan reply, 1)} }}
)

func putBuf(bp *[]byte) {
	if cap(*bp) <= poolMaxBuf {
		bufPool.Put(bp)
	}
}

// errNotSent: the connection failed before the request was registered.
var errNotSent = errors.New("not sent")

// roundTrip sends a frame (the writer takes buf) and waits for its reply,
// the connection's end or ctx. errNotSent means nothing was sent and buf
// is still the caller's.
func (cn *conn) roundTrip(ctx context.Context, typ uint8, buf *[]byte) (reply, error) {
	cl := callPool.Get().(*call)
	cn.mu.Lock()
	if cn.pending == nil {
		cn.mu.Unlock()
		callPool.Put(cl)
		return reply{}, errNotSent
	}
	cn.nextID++
	id := cn.nextID
	cn.pending[id] = cl
	cn.mu.Unlock()
	cn.inflight.Add(1)
	defer cn.inflight.Add(-1)

	if f := (outFrame{id: id, typ: typ, buf: buf}); !cn.writeNow(ctx, f) {
		select {
		case cn.queue <- f:
		case <-cn.dead:
			putBuf(buf) // fail delivers the error to cl
		case <-ctx.Done():
			putBuf(buf)
			if cn.forget(id) {
				callPool.Put(cl)
			}
			return reply{}, ctxError(ctx)
		}
	}
	select {
	case r := <-cl.done:
		callPool.Put(cl)
		return r, r.err
	case <-ctx.Done():
		// A reply arriving later is dropped by the reader. If the reader
		// already took the call, its reply is in flight to cl: do not reuse.
		if cn.forget(id) {
			callPool.Put(cl)
		}
		return reply{}, ctxError(ctx)
	}
}

// forget removes a request nobody waits for any more; false if the reader
// (or fail) already took it.
func (cn *conn) forget(id uint64) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if _, ok := cn.pending[id]; !ok {
		return false
	}
	delete(cn.pending, id)
	return true
}

// fail ends the connection once: every waiting request gets an
// ErrUnavailable error, and the client redials on demand.
func (cn *conn) fail(err error) {
	cn.mu.Lock()
	if cn.pending == nil {
		cn.mu.Unlock()
		return
	}
	pending := cn.pending
	cn.pending, cn.err = nil, err
	cn.mu.Unlock()
	close(cn.dead)
	cn.nc.Close()
	e := unavailable("connection to %s lost: %v", cn.client.addr, err)
	for _, cl := range pending {
		cl.done <- reply{err: e}
	}
	cn.client.connLost(cn)
}

// readLoop hands each reply to its waiting request; replies nobody waits
// for (the context ended) are dropped.
func (cn *conn) readLoop() {
	defer cn.client.wg.Done()
	for {
		f, err := fsop.ReadFrame(cn.br, cn.client.maxFrame)
		if err != nil {
			if err == io.EOF {
				err = errors.New("closed by the bridge")
			}
			cn.fail(err)
			return
		}
		cn.mu.Lock()
		cl := cn.pending[f.ID]
		delete(cn.pending, f.ID)
		cn.mu.Unlock()
		if cl != nil {
			cl.done <- reply{typ: f.Type, payload: f.Payload}
		}
	}
}

// Limits of writeNow: beyond them a write might wait for the bridge to
// read, and the caller, not ctx-aware while it writes, should queue.
const (
	nowMaxFrame    = 64 << 10
	nowMaxInflight = 16
)

// writeNow writes f and flushes at once, on the caller's goroutine, if the
// connection's writer is idle, nothing is queued and little is in flight:
// a lone request then costs no hand-off to writeLoop (a wake-up of another
// thread, tens of microseconds on a loaded machine). Otherwise it returns
// false and the caller queues f. ctx's deadline bounds the write; a write
// error fails the connection (f's caller gets it as its reply).
func (cn *conn) writeNow(ctx context.Context, f outFrame) bool {
	if len(*f.buf) > nowMaxFrame || cn.inflight.Load() > nowMaxInflight || !cn.wmu.TryLock() {
		return false
	}
	defer cn.wmu.Unlock()
	if len(cn.queue) > 0 {
		return false
	}
	if d, ok := ctx.Deadline(); ok {
		cn.nc.SetWriteDeadline(d)
		defer cn.nc.SetWriteDeadline(time.Time{})
	}
	err := fsop.WriteFrame(cn.bw, fsop.Frame{ID: f.id, Type: f.typ, Payload: *f.buf})
	putBuf(f.buf)
	if err == nil {
		err = cn.bw.Flush()
	}
	if err != nil {
		cn.fail(err)
	}
	return true
}

// writeLoop writes queued frames and flushes once the queue is empty, so
// that concurrent callers share write(2)s.
func (cn *conn) writeLoop() {
	defer cn.client.wg.Done()
	for {
		var f outFrame
		select {
		case f = <-cn.queue:
		case <-cn.dead:
			return
		}
		cn.wmu.Lock()
		err := cn.writeQueued(f)
		cn.wmu.Unlock()
		if err != nil {
			cn.fail(err)
			return
		}
	}
}

// writeQueued writes f and every frame queued behind it, then flushes; wmu
// is held.
func (cn *conn) writeQueued(f outFrame) error {
	for {
		err := fsop.WriteFrame(cn.bw, fsop.Frame{ID: f.id, Type: f.typ, Payload: *f.buf})
		putBuf(f.buf)
		if err != nil {
			return err
		}
		select {
		case f = <-cn.queue:
			continue
		default:
		}
		return cn.bw.Flush()
	}
}
