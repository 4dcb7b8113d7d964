// Package bridgeclient is the front proxy's client to one bridge.
//
// Ops travel as fsop frames over a small pool of upgraded connections
// (GET /v1/frames, Upgrade: lighthouse-frames/1; docs/protocol.md, "Proxy
// transport"), many ops in flight on each, replies matched by id: one
// HTTP+JSON round trip costs about three times as much on loopback.
// Snapshots and /v1/info use plain HTTP.
//
// Errors: ErrRefused means the bridge refused the op as malformed (the
// HTTP 400 of the JSON API): retrying it gives the same answer.
// ErrUnavailable means the op got no result: the bridge is down or
// unreachable, the connection broke, the context ended, or the bridge could
// not run it (HTTP 503): the op may or may not have run. A filesystem error
// is neither: it is Result.Errno.
package bridgeclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Errors of Exec, Snapshot, SnapshotSubtree, Restore, RestoreSubtree and Info; the returned errors wrap one
// of them and say more.
var (
	// ErrRefused: the bridge refused the request as malformed (an invalid
	// op, a path leaving the mount, a handle id in use, a frame over the
	// limit). Nothing ran.
	ErrRefused = errors.New("refused by the bridge")
	// ErrUnavailable: no result. The bridge is down or unreachable, the
	// connection broke, the context ended, or the bridge could not run the
	// op (its executor died or hung): the op may or may not have run.
	ErrUnavailable = errors.New("bridge unavailable")
	// ErrChecksum: a snapshot's bytes do not match its checksum.
	ErrChecksum = errors.New("snapshot checksum mismatch")
	// ErrCrossLink: a subtree snapshot or restore was refused because a
	// file inside the subtree has a hard link outside it (HTTP 409, code
	// cross_link). The error is a *CrossLinkError naming both; it also
	// wraps ErrRefused.
	ErrCrossLink = errors.New("a hard link crosses the subtree's boundary")
)

// codeCrossLink is the "code" of the bridge's 409 (bridge.CodeCrossLink).
const codeCrossLink = "cross_link"

// CrossLinkError names two names of one file, one inside the subtree and
// one outside, relative to the store's root: the smallest subtree that can
// be copied holds both.
type CrossLinkError struct {
	Inside, Outside string
	err             error // the HTTP error, for the message
}

func (e *CrossLinkError) Error() string {
	return fmt.Sprintf("%v (%q inside, %q outside): %v", ErrCrossLink, e.Inside, e.Outside, e.err)
}

// Unwrap makes errors.Is(err, ErrCrossLink) true.
func (e *CrossLinkError) Unwrap() error { return ErrCrossLink }

// Options configure a Client. Zero values get the defaults.
type Options struct {
	// Conns is the number of frames connections to the bridge (default 4).
	// They are dialed on demand: one at first, more while all are busy.
	Conns int
	// DialTimeout bounds dialing and the upgrade handshake (default 1 s).
	DialTimeout time.Duration
	// MaxFrame bounds a frame's payload both ways (default
	// fsop.DefaultMaxFrame: a 64 MiB read and its header). A larger op is
	// refused without being sent; a larger reply breaks the connection.
	MaxFrame int
	// HTTPClient serves Snapshot, Restore and Info (default: a client of
	// its own, closed by Close).
	HTTPClient *http.Client
}

// Backoff between dial attempts after a failed one: doubled per failure.
const (
	minBackoff = 25 * time.Millisecond
	maxBackoff = time.Second
)

// Buffer sizes and pooling bounds.
const (
	connBufSize = 64 << 10
	poolMaxBuf  = 256 << 10
	queueLen    = 1024 // frames waiting for a connection's writer
)

// Client is the proxy's client to one bridge. It is safe for concurrent use.
type Client struct {
	base     *url.URL
	addr     string // host:port to dial
	upgrade  []byte // the upgrade request
	opts     Options
	hc       *http.Client
	ownHC    *http.Transport // nil if the caller gave HTTPClient
	maxFrame int

	mu      sync.Mutex
	slots   []slot
	changed chan struct{} // closed and replaced whenever slots change
	backoff time.Duration // 0: the last dial worked (or none was made)
	retryAt time.Time     // no dial before this while backoff != 0
	lastErr error         // of the last failed dial
	closed  bool
	wg      sync.WaitGroup // dials and connection goroutines
}

// slot is one place in the pool: a live connection, a dial, or nothing.
type slot struct {
	c       *conn
	dialing bool
}

// New returns a client of the bridge at baseURL (http://host:port, maybe
// with a path prefix). It dials nothing yet.
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("bridgeclient: base URL: %w", err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("bridgeclient: base URL %q: want http://host:port", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("bridgeclient: base URL %q has no host", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	if opts.Conns <= 0 {
		opts.Conns = 4
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = time.Second
	}
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = fsop.DefaultMaxFrame
	}
	c := &Client{base: u, addr: addr, opts: opts, maxFrame: opts.MaxFrame,
		slots: make([]slot, opts.Conns), changed: make(chan struct{})}
	c.upgrade = []byte("GET " + (&url.URL{Path: u.Path + fsop.FramesPath}).EscapedPath() + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"User-Agent: lighthouse-bridgeclient\r\n" +
		"Connection: Upgrade\r\n" +
		"Upgrade: " + fsop.FramesProtocol + "\r\n\r\n")
	c.hc = opts.HTTPClient
	if c.hc == nil {
		c.ownHC = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: opts.DialTimeout}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     time.Minute,
		}
		c.hc = &http.Client{Transport: c.ownHC}
	}
	return c, nil
}

// Close closes the connections: ops waiting for a reply fail with
// ErrUnavailable, and so does every later call.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	var conns []*conn
	for i := range c.slots {
		if cn := c.slots[i].c; cn != nil {
			conns = append(conns, cn)
		}
	}
	c.broadcastLocked()
	c.mu.Unlock()
	for _, cn := range conns {
		cn.fail(errClosed)
	}
	c.wg.Wait()
	if c.ownHC != nil {
		c.ownHC.CloseIdleConnections()
	}
	return nil
}

var errClosed = errors.New("client closed")

func (c *Client) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// unavailable wraps ErrUnavailable around err.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

func ctxError(ctx context.Context) error {
	return fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(ctx))
}

// pick returns the live connection with the fewest ops in flight, dialing
// on demand. With no live connection it waits for a dial in progress,
// except while the bridge is known down (the last dial failed): then it
// fails at once, unless it is time to try again, which this caller then
// does (and waits for, within ctx).
func (c *Client) pick(ctx context.Context) (*conn, error) {
	mine := false // this caller started the dial it waits for
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, unavailable("%v", errClosed)
		}
		var best *conn
		var bestN int64
		empty, dialing := -1, 0
		for i := range c.slots {
			s := &c.slots[i]
			switch {
			case s.c != nil:
				if n := s.c.inflight.Load(); best == nil || n < bestN {
					best, bestN = s.c, n
				}
			case s.dialing:
				dialing++
			case empty < 0:
				empty = i
			}
		}
		canDial := empty >= 0 && (c.backoff == 0 || !time.Now().Before(c.retryAt))
		if best != nil {
			// Grow the pool while every connection is busy.
			if bestN > 0 && canDial && dialing == 0 {
				c.startDialLocked(empty)
			}
			c.mu.Unlock()
			return best, nil
		}
		switch {
		case dialing == 0 && canDial:
			c.startDialLocked(empty)
			mine = true
		case dialing == 0 || (c.backoff != 0 && !mine):
			err := c.downErrorLocked()
			c.mu.Unlock()
			return nil, err
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctxError(ctx)
		}
	}
}

func (c *Client) downErrorLocked() error {
	wait := time.Until(c.retryAt).Round(time.Millisecond)
	if c.lastErr == nil {
		return unavailable("%s: no connection", c.addr)
	}
	if wait > 0 {
		return unavailable("%v (next attempt in %v)", c.lastErr, wait)
	}
	return unavailable("%v", c.lastErr)
}

func (c *Client) startDialLocked(i int) {
	c.slots[i].dialing = true
	c.wg.Add(1)
	go c.dial(i)
}

// dial connects slot i and starts its goroutines.
func (c *Client) dial(i int) {
	defer c.wg.Done()
	cn, err := c.dialConn()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slots[i].dialing = false
	defer c.broadcastLocked()
	if err == nil && c.closed {
		cn.nc.Close()
		err = errClosed
	}
	if err != nil {
		c.lastErr = err
		c.backoff = min(max(2*c.backoff, minBackoff), maxBackoff)
		c.retryAt = time.Now().Add(c.backoff)
		return
	}
	c.backoff, c.lastErr = 0, nil
	c.slots[i].c = cn
	cn.slot = i
	c.wg.Add(2)
	go cn.readLoop()
	go cn.writeLoop()
}

// dialConn dials the bridge and upgrades the connection, within
// DialTimeout.
func (c *Client) dialConn() (*conn, error) {
	deadline := time.Now().Add(c.opts.DialTimeout)
	d := net.Dialer{Deadline: deadline}
	nc, err := d.Dial("tcp", c.addr)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(deadline)
	if _, err := nc.Write(c.upgrade); err != nil {
		nc.Close()
		return nil, fmt.Errorf("upgrade %s: %w", c.addr, err)
	}
	br := bufio.NewReaderSize(nc, connBufSize)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("upgrade %s: %w", c.addr, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), fsop.FramesProtocol) {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		nc.Close()
		return nil, fmt.Errorf("upgrade %s to %s: HTTP %s: %s", c.addr, fsop.FramesProtocol, resp.Status, strings.TrimSpace(string(msg)))
	}
	nc.SetDeadline(time.Time{})
	return &conn{client: c, nc: nc, br: br, bw: bufio.NewWriterSize(nc, connBufSize),
		queue: make(chan outFrame, queueLen), dead: make(chan struct{}),
		pending: map[uint64]*call{}}, nil
}

// connLost takes a failed connection out of the pool. The next op redials
// at once (the bridge may have restarted); backoff starts if that fails.
func (c *Client) connLost(cn *conn) {
	c.mu.Lock()
	if c.slots[cn.slot].c == cn {
		c.slots[cn.slot].c = nil
		c.broadcastLocked()
	}
	c.mu.Unlock()
}

// Exec runs op on the bridge and returns its result. The op is validated
// by the bridge (an invalid one: ErrRefused). A filesystem error is in
// Result.Errno, not an error. ctx bounds the whole call: an op whose
// context ends may still run, and its late result is dropped.
func (c *Client) Exec(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
	if ctx.Err() != nil {
		return fsop.Result{}, ctxError(ctx)
	}
	buf := bufPool.Get().(*[]byte)
	*buf = fsop.AppendOp((*buf)[:0], op)
	if len(*buf) > c.maxFrame {
		n := len(*buf)
		putBuf(buf)
		return fsop.Result{}, fmt.Errorf("%w: %s op of %d bytes exceeds the frame limit of %d: %w", ErrRefused, op.Kind, n, c.maxFrame, fsop.ErrTooLarge)
	}
	rep, err := c.send(ctx, fsop.FrameOp, buf)
	if err != nil {
		return fsop.Result{}, err
	}
	switch rep.typ {
	case fsop.FrameResult:
		// The payload is ours alone: Data and Value may alias it.
		res, err := fsop.DecodeResultNoCopy(rep.payload)
		if err != nil {
			return fsop.Result{}, unavailable("bad result from %s: %v", c.addr, err)
		}
		return res, nil
	case fsop.FrameError:
		return fsop.Result{}, frameError(rep.payload)
	}
	return fsop.Result{}, unavailable("unexpected frame type %d from %s", rep.typ, c.addr)
}

// send sends a request frame on the least busy connection and returns its
// reply. A connection that dies before the request is queued is replaced
// once.
func (c *Client) send(ctx context.Context, typ uint8, buf *[]byte) (reply, error) {
	for attempt := 0; ; attempt++ {
		cn, err := c.pick(ctx)
		if err != nil {
			putBuf(buf)
			return reply{}, err
		}
		rep, err := cn.roundTrip(ctx, typ, buf)
		if err == errNotSent {
			if attempt == 0 {
				continue
			}
			putBuf(buf)
			return reply{}, unavailable("connection to %s lost", c.addr)
		}
		return rep, err
	}
}

// Ping checks that a frames connection answers (dialing one if needed).
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.control(ctx, fsop.Control{Kind: fsop.ControlPing})
	return err
}

// State asks for the abstract state of path, read from the bridge's store
// (fsop.ControlState): the proxy's read-back check. With n > 0 the
// result's Value also holds the SHA-256 of n bytes from off (off < 0: the
// last n bytes; fsop.StateRangeDigest).
func (c *Client) State(ctx context.Context, path string, off, n int64) (fsop.Result, error) {
	rep, err := c.control(ctx, fsop.Control{Kind: fsop.ControlState, Arg: fsop.StateArg(path, off, n)})
	if err != nil {
		return fsop.Result{}, err
	}
	if rep.typ != fsop.FrameResult {
		return fsop.Result{}, unavailable("unexpected frame type %d from %s for a state request", rep.typ, c.addr)
	}
	res, err := fsop.DecodeResultNoCopy(rep.payload)
	if err != nil {
		return fsop.Result{}, unavailable("bad state result from %s: %v", c.addr, err)
	}
	return res, nil
}

// SetPriority tells the bridge whether it serves clients or only mirrors
// (fsop.ControlPriority): a mirror-only bridge lowers its CPU priority.
func (c *Client) SetPriority(ctx context.Context, mirrorOnly bool) error {
	arg := "serving"
	if mirrorOnly {
		arg = "mirror"
	}
	_, err := c.control(ctx, fsop.Control{Kind: fsop.ControlPriority, Arg: arg})
	return err
}

// control sends a control message and returns the reply: a FrameControl
// or a FrameResult; an error frame is the error.
func (c *Client) control(ctx context.Context, ctl fsop.Control) (reply, error) {
	if ctx.Err() != nil {
		return reply{}, ctxError(ctx)
	}
	buf := bufPool.Get().(*[]byte)
	*buf = fsop.AppendControl((*buf)[:0], ctl)
	rep, err := c.send(ctx, fsop.FrameControl, buf)
	if err != nil {
		return reply{}, err
	}
	switch rep.typ {
	case fsop.FrameControl, fsop.FrameResult:
		return rep, nil
	case fsop.FrameError:
		return reply{}, frameError(rep.payload)
	}
	return reply{}, unavailable("unexpected frame type %d from %s", rep.typ, c.addr)
}

// frameError turns an error frame ("refused: msg" or "failed: msg") into
// an error wrapping ErrRefused or ErrUnavailable.
func frameError(p []byte) error {
	msg := string(p)
	if rest, ok := strings.CutPrefix(msg, "refused: "); ok {
		return fmt.Errorf("%w: %s", ErrRefused, rest)
	}
	rest, _ := strings.CutPrefix(msg, "failed: ")
	return unavailable("%s", rest)
}
