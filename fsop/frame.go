package fsop

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
)

// Control messages and the framing of a stream: how encoded ops, results
// and control messages travel between the proxy, a bridge and an executor.

// Control messages ride in FrameControl frames: they manage a connection or
// an executor rather than run a filesystem op.
type Control struct {
	Kind string // ControlAttach, ControlCloseAll, ControlOK, or a peer-defined kind
	Arg  string // kind-specific argument ("" if none)
}

// Control kinds.
const (
	// ControlAttach asks an executor to serve the directory in Arg as its
	// root (absolute path).
	ControlAttach = "attach"
	// ControlCloseAll asks an executor to close every open handle.
	ControlCloseAll = "close-all"
	// ControlOK is the reply to a control message that succeeded; a failed
	// one is answered with a FrameError.
	ControlOK = "ok"
	// ControlState asks a bridge for the abstract state of a path
	// (storeexec.Executor.State: lstat, content and xattr digests), read from
	// its store: the proxy's read-back check. Arg is StateArg(path, off,
	// n): with n > 0 the result's Value also holds the SHA-256 of that
	// range of the content (StateRangeDigest). Answered by a FrameResult.
	ControlState = "state"
	// ControlPriority tells a bridge whether it serves clients (Arg
	// "serving") or only mirrors ("mirror"), so that it can yield the CPU
	// to the serving bridge. Answered by ControlOK.
	ControlPriority = "priority"
	// ControlPing checks a frames connection; answered by ControlOK.
	ControlPing = "ping"
)

// The frames transport between the proxy and a bridge (docs/protocol.md,
// "Proxy transport"): GET FramesPath with Connection: Upgrade and
// Upgrade: FramesProtocol, then frames both ways on the connection.
const (
	FramesProtocol = "lighthouse-frames/1"
	FramesPath     = "/v1/frames"
	// ChecksumHeader carries a snapshot's store.Checksum on
	// GET and PUT /v1/snapshot.
	ChecksumHeader = "X-Lighthouse-Checksum"
)

// AppendControl appends the binary encoding of c to b: u8 version, str kind,
// str arg.
func AppendControl(b []byte, c Control) []byte {
	b = slices.Grow(b, 1+8+len(c.Kind)+len(c.Arg))
	b = append(b, CodecVersion)
	b = appendStr(b, c.Kind)
	return appendStr(b, c.Arg)
}

// DecodeControl decodes a control message encoded by AppendControl.
func DecodeControl(b []byte) (Control, error) {
	d := decoder{all: b, b: b}
	d.version()
	var c Control
	c.Kind = string(d.lenPrefixed("kind"))
	c.Arg = string(d.lenPrefixed("arg"))
	if err := d.finish("control"); err != nil {
		return Control{}, err
	}
	return c, nil
}

// Frame types.
const (
	// FrameOp: the payload is an op (AppendOp). Answered by a FrameResult or
	// a FrameError with the same ID.
	FrameOp uint8 = 1
	// FrameResult: the payload is a result (AppendResult).
	FrameResult uint8 = 2
	// FrameError: the payload is a UTF-8 message: the request with this ID
	// was refused (the binary counterpart of HTTP 400).
	FrameError uint8 = 3
	// FrameControl: the payload is a control message (AppendControl).
	// Answered by a FrameControl{Kind: ControlOK} or a FrameError.
	FrameControl uint8 = 4
)

// FrameHeaderSize is the size of a frame header: u32 payload length, u8
// type, u64 id.
const FrameHeaderSize = 4 + 1 + 8

// DefaultMaxFrame is the payload bound ReadFrame uses when given max <= 0:
// room for a 64 MiB read (sysexec.DefaultMaxRead) and its result header.
const DefaultMaxFrame = 64<<20 + 64<<10

// Frame is one message on a stream (pipe, unix socket, TCP). ID matches a
// reply to its request; IDs are chosen by the requester.
type Frame struct {
	ID      uint64
	Type    uint8
	Payload []byte
}

// WriteFrame writes f to w: the 13-byte header (u32 payload length, u8
// type, u64 id, little-endian), then the payload. It does not flush: the
// caller flushes, which lets it batch several frames into one write. It
// allocates nothing.
func WriteFrame(w *bufio.Writer, f Frame) error {
	if uint64(len(f.Payload)) > math.MaxUint32 {
		return fmt.Errorf("write frame %d: payload of %d bytes: %w", f.ID, len(f.Payload), ErrTooLarge)
	}
	n := uint32(len(f.Payload))
	if w.Available() >= FrameHeaderSize {
		h := w.AvailableBuffer()
		h = le.AppendUint32(h, n)
		h = append(h, f.Type)
		h = le.AppendUint64(h, f.ID)
		if _, err := w.Write(h); err != nil {
			return err
		}
	} else {
		// Rare (nearly full buffer): byte by byte rather than a header
		// array that would escape to the heap.
		var h [FrameHeaderSize]byte
		le.PutUint32(h[0:], n)
		h[4] = f.Type
		le.PutUint64(h[5:], f.ID)
		for _, c := range h {
			if err := w.WriteByte(c); err != nil {
				return err
			}
		}
	}
	_, err := w.Write(f.Payload)
	return err
}

// ReadFrame reads one frame from r. A payload longer than max (max <= 0:
// DefaultMaxFrame) is not read: ReadFrame returns the frame's ID and Type
// with an error wrapping ErrTooLarge, and the stream is then out of step
// (answer the ID with a FrameError if you like, then close it). A clean end
// of stream before a header is io.EOF; an end inside a frame is
// io.ErrUnexpectedEOF. The payload is a new slice the caller owns; it is
// the only allocation.
func ReadFrame(r *bufio.Reader, max int) (Frame, error) {
	h, err := r.Peek(FrameHeaderSize)
	if err != nil {
		if err == io.EOF && len(h) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	n := le.Uint32(h[0:])
	f := Frame{Type: h[4], ID: le.Uint64(h[5:])}
	if _, err := r.Discard(FrameHeaderSize); err != nil {
		return Frame{}, err
	}
	if max <= 0 {
		max = DefaultMaxFrame
	}
	if uint64(n) > uint64(max) {
		return f, fmt.Errorf("read frame %d: payload of %d bytes exceeds the limit of %d: %w", f.ID, n, max, ErrTooLarge)
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, fmt.Errorf("read frame %d: %w", f.ID, err)
	}
	return f, nil
}
