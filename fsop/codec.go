package fsop

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
)

// The binary codec carries ops and results between the front proxy and the
// bridges, and between a bridge and its executor child, where encoding/json
// would cost more than the filesystem op itself: about 40 us to encode and
// decode an op with 4 KiB of data, against 0.2 us here (1 us when the data is
// copied out of the input, which is mostly the allocation). docs/protocol.md
// ("Binary transport") has the byte layout; the summary:
//
//	op:     u8 version, str kind, u32 field mask, then the fields whose bit
//	        is set, in bit order
//	result: u8 version, str errno, u32 field mask, then the fields whose bit
//	        is set, in bit order
//
// Integers are little-endian; str and bytes are a u32 length and that many
// bytes. A field whose bit is clear costs nothing and decodes as its zero
// value. Decoders check every length against the bytes left, so hostile
// input gives an error wrapping ErrBadEncoding, never a panic or an
// allocation larger than the input.

// CodecVersion is the first byte of every encoded op, result and control
// message. Decoders refuse any other version.
const CodecVersion = 1

// Errors of the binary codec and framing.
var (
	// ErrBadEncoding: a binary op, result or control message is malformed
	// (truncated, unknown version or field bits, trailing bytes).
	ErrBadEncoding = errors.New("bad binary encoding")
	// ErrTooLarge: a request body or a frame is larger than its bound.
	ErrTooLarge = errors.New("too large")
)

var le = binary.LittleEndian

// Op field bits of the binary field mask. Fixed-size fields come first and
// variable-length ones last, so that the strings of an op are contiguous and
// decode with one allocation. The JSON decoder uses the same bits.
const (
	bMode      uint32 = 1 << iota // u32
	bFlags                        // i64
	bExclusive                    // no payload: the bit is the value (true)
	bOffset                       // i64
	bLength                       // i64
	bSize                         // i64
	bUID                          // i64
	bGID                          // i64
	bAtime                        // i64
	bMtime                        // i64
	bHandle                       // u64
	bPath                         // str
	bTo                           // str
	bTarget                       // str
	bName                         // str
	bData                         // bytes
	bValue                        // bytes
	bRdev                         // u64 (after the others: added later)

	bAllOp = bRdev<<1 - 1
	// bStrings are the str fields, contiguous in the encoding.
	bStrings = bPath | bTo | bTarget | bName
)

// Result field bits of the binary field mask.
const (
	rStat    uint32 = 1 << iota // Attr, 56 bytes
	rStatfs                     // StatfsInfo, 56 bytes
	rN                          // i64
	rSize                       // i64
	rTarget                     // str
	rEntries                    // u32 count, then count x (str name, str type)
	rNames                      // u32 count, then count x str
	rData                       // bytes
	rValue                      // bytes

	rAllResult = rValue<<1 - 1
)

// Fixed sizes of the encoded structs.
const (
	attrSize   = 4 + 8 + 4 + 4 + 4 + 8 + 8 + 8 + 8
	statfsSize = 7 * 8
)

// opMask returns the field mask AppendOp writes for op: every non-zero
// field, and Data and Value when non-nil (so nil and empty stay distinct).
func opMask(op *Op) uint32 {
	var m uint32
	set := func(b uint32, ok bool) {
		if ok {
			m |= b
		}
	}
	set(bMode, op.Mode != 0)
	set(bFlags, op.Flags != 0)
	set(bExclusive, op.Exclusive)
	set(bOffset, op.Offset != 0)
	set(bLength, op.Length != 0)
	set(bSize, op.Size != 0)
	set(bUID, op.UID != 0)
	set(bGID, op.GID != 0)
	set(bAtime, op.AtimeNs != 0)
	set(bMtime, op.MtimeNs != 0)
	set(bHandle, op.Handle != 0)
	set(bPath, op.Path != "")
	set(bTo, op.To != "")
	set(bTarget, op.Target != "")
	set(bName, op.Name != "")
	set(bData, op.Data != nil)
	set(bValue, op.Value != nil)
	set(bRdev, op.Rdev != 0)
	return m
}

// fixedOpSize is the encoded size of the fixed-size fields in mask.
func fixedOpSize(mask uint32) int {
	n := 0
	if mask&bMode != 0 {
		n += 4
	}
	// flags, offset, length, size, uid, gid, atime, mtime, handle: 8 each.
	n += 8 * bits.OnesCount32(mask&(bFlags|bOffset|bLength|bSize|bUID|bGID|bAtime|bMtime|bHandle|bRdev))
	return n
}

// AppendOp appends the binary encoding of op to b and returns the extended
// slice. It grows b at most once and never fails: it encodes whatever op
// holds, valid or not (the receiver validates).
func AppendOp(b []byte, op *Op) []byte {
	mask := opMask(op)
	size := 1 + 4 + len(op.Kind) + 4 + fixedOpSize(mask)
	for _, s := range [...]int{len(op.Path), len(op.To), len(op.Target), len(op.Name)} {
		if s > 0 {
			size += 4 + s
		}
	}
	if mask&bData != 0 {
		size += 4 + len(op.Data)
	}
	if mask&bValue != 0 {
		size += 4 + len(op.Value)
	}
	b = slices.Grow(b, size)

	b = append(b, CodecVersion)
	b = appendStr(b, string(op.Kind))
	b = le.AppendUint32(b, mask)
	if mask&bMode != 0 {
		b = le.AppendUint32(b, op.Mode)
	}
	for _, f := range [...]struct {
		bit uint32
		v   uint64
	}{
		{bFlags, uint64(op.Flags)},
		{bOffset, uint64(op.Offset)},
		{bLength, uint64(op.Length)},
		{bSize, uint64(op.Size)},
		{bUID, uint64(op.UID)},
		{bGID, uint64(op.GID)},
		{bAtime, uint64(op.AtimeNs)},
		{bMtime, uint64(op.MtimeNs)},
		{bHandle, op.Handle},
	} {
		if mask&f.bit != 0 {
			b = le.AppendUint64(b, f.v)
		}
	}
	if mask&bPath != 0 {
		b = appendStr(b, op.Path)
	}
	if mask&bTo != 0 {
		b = appendStr(b, op.To)
	}
	if mask&bTarget != 0 {
		b = appendStr(b, op.Target)
	}
	if mask&bName != 0 {
		b = appendStr(b, op.Name)
	}
	if mask&bData != 0 {
		b = appendBytes(b, op.Data)
	}
	if mask&bValue != 0 {
		b = appendBytes(b, op.Value)
	}
	if mask&bRdev != 0 {
		b = le.AppendUint64(b, op.Rdev)
	}
	return b
}

// DecodeOp decodes an op encoded by AppendOp. It does not validate the op
// (call Validate). The decoded op does not alias b: its strings share one
// new allocation, and Data and Value are copies. A known Kind costs no
// allocation. Data and Value are nil when their bit is clear and non-nil
// (possibly empty) when it is set, so nil and empty round-trip distinctly.
func DecodeOp(b []byte) (Op, error) { return decodeOp(b, true) }

// DecodeOpNoCopy is DecodeOp except that Data and Value alias b instead of
// being copied (strings are still copied). Use it when b is not modified or
// reused while the op lives, as with a payload from ReadFrame, which the
// caller owns: it saves an allocation and a copy of the data.
func DecodeOpNoCopy(b []byte) (Op, error) { return decodeOp(b, false) }

func decodeOp(b []byte, copyBytes bool) (Op, error) {
	var op Op
	d := decoder{all: b, b: b}
	d.version()
	op.Kind = internKind(d.str("kind"))
	mask := d.mask("op", bAllOp)
	if mask&bMode != 0 {
		op.Mode = d.u32("mode")
	}
	if mask&bFlags != 0 {
		v := int64(d.u64("flags"))
		if int64(int(v)) != v && !d.bad {
			d.fail("flags", "value %d does not fit an int", v)
		}
		op.Flags = int(v)
	}
	op.Exclusive = mask&bExclusive != 0
	i64 := func(bit uint32, name string) int64 {
		if mask&bit == 0 {
			return 0
		}
		return int64(d.u64(name))
	}
	op.Offset = i64(bOffset, "offset")
	op.Length = i64(bLength, "length")
	op.Size = i64(bSize, "size")
	op.UID = i64(bUID, "uid")
	op.GID = i64(bGID, "gid")
	op.AtimeNs = i64(bAtime, "atime_ns")
	op.MtimeNs = i64(bMtime, "mtime_ns")
	if mask&bHandle != 0 {
		op.Handle = d.u64("handle")
	}
	if mask&bStrings != 0 {
		// One pass to bound the strings, one allocation for all of them,
		// then substrings of it.
		var spans [4][2]int // start, end within the region
		start := d.off()
		for i, f := range [...]struct {
			bit  uint32
			name string
		}{{bPath, "path"}, {bTo, "to"}, {bTarget, "target"}, {bName, "name"}} {
			if mask&f.bit != 0 {
				v := d.lenPrefixed(f.name)
				spans[i] = [2]int{d.off() - len(v) - start, d.off() - start}
			}
		}
		if !d.bad {
			region := string(b[start:d.off()])
			op.Path = region[spans[0][0]:spans[0][1]]
			op.To = region[spans[1][0]:spans[1][1]]
			op.Target = region[spans[2][0]:spans[2][1]]
			op.Name = region[spans[3][0]:spans[3][1]]
		}
	}
	if mask&bData != 0 {
		op.Data = d.bytes("data", copyBytes)
	}
	if mask&bValue != 0 {
		op.Value = d.bytes("value", copyBytes)
	}
	if mask&bRdev != 0 {
		op.Rdev = d.u64("rdev")
	}
	if err := d.finish("op"); err != nil {
		return Op{}, err
	}
	return op, nil
}

// resultMask returns the field mask AppendResult writes for r: non-zero
// fields, non-nil pointers, and non-nil slices (empty included).
func resultMask(r *Result) uint32 {
	var m uint32
	set := func(b uint32, ok bool) {
		if ok {
			m |= b
		}
	}
	set(rStat, r.Stat != nil)
	set(rStatfs, r.Statfs != nil)
	set(rN, r.N != 0)
	set(rSize, r.Size != 0)
	set(rTarget, r.Target != "")
	set(rEntries, r.Entries != nil)
	set(rNames, r.Names != nil)
	set(rData, r.Data != nil)
	set(rValue, r.Value != nil)
	return m
}

// AppendResult appends the binary encoding of r to b and returns the
// extended slice. It grows b at most once.
func AppendResult(b []byte, r *Result) []byte {
	mask := resultMask(r)
	size := 1 + 4 + len(r.Errno) + 4
	if mask&rStat != 0 {
		size += attrSize
	}
	if mask&rStatfs != 0 {
		size += statfsSize
	}
	size += 8 * bits.OnesCount32(mask&(rN|rSize))
	if mask&rTarget != 0 {
		size += 4 + len(r.Target)
	}
	if mask&rEntries != 0 {
		size += 4
		for i := range r.Entries {
			size += 8 + len(r.Entries[i].Name) + len(r.Entries[i].Type)
		}
	}
	if mask&rNames != 0 {
		size += 4
		for _, n := range r.Names {
			size += 4 + len(n)
		}
	}
	if mask&rData != 0 {
		size += 4 + len(r.Data)
	}
	if mask&rValue != 0 {
		size += 4 + len(r.Value)
	}
	b = slices.Grow(b, size)

	b = append(b, CodecVersion)
	b = appendStr(b, r.Errno)
	b = le.AppendUint32(b, mask)
	if a := r.Stat; a != nil {
		b = le.AppendUint32(b, a.Mode)
		b = le.AppendUint64(b, uint64(a.Size))
		b = le.AppendUint32(b, a.Nlink)
		b = le.AppendUint32(b, a.UID)
		b = le.AppendUint32(b, a.GID)
		b = le.AppendUint64(b, uint64(a.AtimeNs))
		b = le.AppendUint64(b, uint64(a.MtimeNs))
		b = le.AppendUint64(b, uint64(a.CtimeNs))
		b = le.AppendUint64(b, a.Ino)
	}
	if s := r.Statfs; s != nil {
		b = le.AppendUint64(b, uint64(s.Bsize))
		b = le.AppendUint64(b, s.Blocks)
		b = le.AppendUint64(b, s.Bfree)
		b = le.AppendUint64(b, s.Bavail)
		b = le.AppendUint64(b, s.Files)
		b = le.AppendUint64(b, s.Ffree)
		b = le.AppendUint64(b, uint64(s.Namelen))
	}
	if mask&rN != 0 {
		b = le.AppendUint64(b, uint64(r.N))
	}
	if mask&rSize != 0 {
		b = le.AppendUint64(b, uint64(r.Size))
	}
	if mask&rTarget != 0 {
		b = appendStr(b, r.Target)
	}
	if mask&rEntries != 0 {
		b = le.AppendUint32(b, uint32(len(r.Entries)))
		for i := range r.Entries {
			b = appendStr(b, r.Entries[i].Name)
			b = appendStr(b, r.Entries[i].Type)
		}
	}
	if mask&rNames != 0 {
		b = le.AppendUint32(b, uint32(len(r.Names)))
		for _, n := range r.Names {
			b = appendStr(b, n)
		}
	}
	if mask&rData != 0 {
		b = appendBytes(b, r.Data)
	}
	if mask&rValue != 0 {
		b = appendBytes(b, r.Value)
	}
	return b
}

// DecodeResult decodes a result encoded by AppendResult. The result does not
// alias b: Data and Value are copies, the names (and types) of all Entries
// share one allocation, as do all Names; a known errno costs no allocation.
// Slices and pointers are nil exactly when their bit is clear, so a nil and
// an empty Data, Entries, Names or Value round-trip distinctly.
func DecodeResult(b []byte) (Result, error) { return decodeResult(b, true) }

// DecodeResultNoCopy is DecodeResult except that Data and Value alias b
// instead of being copied (see DecodeOpNoCopy).
func DecodeResultNoCopy(b []byte) (Result, error) { return decodeResult(b, false) }

func decodeResult(b []byte, copyBytes bool) (Result, error) {
	var r Result
	d := decoder{all: b, b: b}
	d.version()
	r.Errno = internErrno(d.str("errno"))
	mask := d.mask("result", rAllResult)
	if mask&rStat != 0 {
		if v := d.take(attrSize, "stat"); v != nil {
			r.Stat = &Attr{
				Mode:    le.Uint32(v[0:]),
				Size:    int64(le.Uint64(v[4:])),
				Nlink:   le.Uint32(v[12:]),
				UID:     le.Uint32(v[16:]),
				GID:     le.Uint32(v[20:]),
				AtimeNs: int64(le.Uint64(v[24:])),
				MtimeNs: int64(le.Uint64(v[32:])),
				CtimeNs: int64(le.Uint64(v[40:])),
				Ino:     le.Uint64(v[48:]),
			}
		}
	}
	if mask&rStatfs != 0 {
		if v := d.take(statfsSize, "statfs"); v != nil {
			r.Statfs = &StatfsInfo{
				Bsize:   int64(le.Uint64(v[0:])),
				Blocks:  le.Uint64(v[8:]),
				Bfree:   le.Uint64(v[16:]),
				Bavail:  le.Uint64(v[24:]),
				Files:   le.Uint64(v[32:]),
				Ffree:   le.Uint64(v[40:]),
				Namelen: int64(le.Uint64(v[48:])),
			}
		}
	}
	if mask&rN != 0 {
		r.N = int64(d.u64("n"))
	}
	if mask&rSize != 0 {
		r.Size = int64(d.u64("size"))
	}
	if mask&rTarget != 0 {
		r.Target = string(d.lenPrefixed("target"))
	}
	if mask&rEntries != 0 {
		r.Entries = d.entries()
	}
	if mask&rNames != 0 {
		r.Names = d.names()
	}
	if mask&rData != 0 {
		r.Data = d.bytes("data", copyBytes)
	}
	if mask&rValue != 0 {
		r.Value = d.bytes("value", copyBytes)
	}
	if err := d.finish("result"); err != nil {
		return Result{}, err
	}
	return r, nil
}

// entries decodes a Dirent list: u32 count, then count x (str name, str
// type). The count is bounded by the bytes left (8 per entry at least)
// before anything is allocated.
func (d *decoder) entries() []Dirent {
	n := int(d.u32("entries"))
	if d.bad {
		return nil
	}
	if n > len(d.b)/8 {
		d.fail("entries", "count %d needs at least %d bytes, %d left", n, 8*n, len(d.b))
		return nil
	}
	start := d.off()
	for i := 0; i < n && !d.bad; i++ {
		d.lenPrefixed("entry name")
		d.lenPrefixed("entry type")
	}
	if d.bad {
		return nil
	}
	raw := d.all[start:d.off()]
	region := string(raw)
	out := make([]Dirent, n)
	p := 0
	next := func() string {
		l := int(le.Uint32(raw[p:]))
		s := region[p+4 : p+4+l]
		p += 4 + l
		return s
	}
	for i := range out {
		out[i].Name = next()
		out[i].Type = next()
	}
	return out
}

// names decodes a string list: u32 count, then count x str, bounded like
// entries (4 bytes per name at least).
func (d *decoder) names() []string {
	n := int(d.u32("names"))
	if d.bad {
		return nil
	}
	if n > len(d.b)/4 {
		d.fail("names", "count %d needs at least %d bytes, %d left", n, 4*n, len(d.b))
		return nil
	}
	start := d.off()
	for i := 0; i < n && !d.bad; i++ {
		d.lenPrefixed("name")
	}
	if d.bad {
		return nil
	}
	raw := d.all[start:d.off()]
	region := string(raw)
	out := make([]string, n)
	p := 0
	for i := range out {
		l := int(le.Uint32(raw[p:]))
		out[i] = region[p+4 : p+4+l]
		p += 4 + l
	}
	return out
}

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

// appendStr appends a u32 length and s.
func appendStr(b []byte, s string) []byte {
	b = le.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// appendBytes appends a u32 length and v.
func appendBytes(b, v []byte) []byte {
	b = le.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// clone copies v into a new slice; a non-nil empty v gives a non-nil empty
// slice (which costs no allocation), nil gives nil.
func clone(v []byte) []byte {
	if v == nil {
		return nil
	}
	c := make([]byte, len(v))
	copy(c, v)
	return c
}

// decoder reads what the Append functions wrote. The first failure marks it
// bad; later reads return zero values, and finish reports the failure.
// Nothing on the success path formats or allocates.
type decoder struct {
	all  []byte // the whole input
	b    []byte // unread input
	bad  bool
	what string // the field that failed
	msg  string // why (formatted only on failure)
}

func (d *decoder) off() int { return len(d.all) - len(d.b) }

func (d *decoder) fail(what, format string, args ...any) {
	if !d.bad {
		d.bad, d.what, d.msg = true, what, fmt.Sprintf(format, args...)
	}
}

// take returns the next n bytes, or nil (and marks d bad) if fewer are left.
// A successful take of 0 bytes returns a non-nil empty slice.
func (d *decoder) take(n int, what string) []byte {
	if d.bad {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail(what, "needs %d bytes, %d left", n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	if v == nil {
		v = []byte{}
	}
	return v
}

func (d *decoder) u32(what string) uint32 {
	if v := d.take(4, what); v != nil {
		return le.Uint32(v)
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if v := d.take(8, what); v != nil {
		return le.Uint64(v)
	}
	return 0
}

// lenPrefixed reads a u32 length and that many bytes (aliasing the input).
func (d *decoder) lenPrefixed(what string) []byte {
	n := d.u32(what)
	if d.bad {
		return nil
	}
	if uint64(n) > uint64(len(d.b)) {
		d.fail(what, "length %d exceeds the %d bytes left", n, len(d.b))
		return nil
	}
	return d.take(int(n), what)
}

// bytes reads a bytes field: a copy, or a view of the input (capacity
// clipped, so appending to it never writes into the input).
func (d *decoder) bytes(what string, copyBytes bool) []byte {
	v := d.lenPrefixed(what)
	if copyBytes {
		return clone(v)
	}
	return v
}

// str reads a str field into a temporary view of the input.
func (d *decoder) str(what string) []byte { return d.lenPrefixed(what) }

func (d *decoder) version() {
	v := d.take(1, "version")
	if v != nil && v[0] != CodecVersion {
		d.fail("version", "unsupported codec version %d (want %d)", v[0], CodecVersion)
	}
}

// mask reads the u32 field mask and refuses bits outside known.
func (d *decoder) mask(what string, known uint32) uint32 {
	m := d.u32("field mask")
	if m&^known != 0 && !d.bad {
		d.fail("field mask", "unknown %s field bits %#x", what, m&^known)
	}
	if d.bad {
		return 0
	}
	return m
}

// finish reports the first failure, or trailing bytes.
func (d *decoder) finish(what string) error {
	if !d.bad && len(d.b) > 0 {
		d.fail("end", "%d trailing bytes", len(d.b))
	}
	if d.bad {
		return fmt.Errorf("decode %s: %s: %s: %w", what, d.what, d.msg, ErrBadEncoding)
	}
	return nil
}

// kindByName interns the known kinds, so decoding one allocates nothing.
var kindByName = func() map[string]Kind {
	m := make(map[string]Kind)
	for _, k := range AllKinds() {
		m[string(k)] = k
	}
	return m
}()

func internKind(b []byte) Kind {
	if k, ok := kindByName[string(b)]; ok {
		return k
	}
	return Kind(b)
}

// errnoIntern interns the errno names, so decoding one allocates nothing.
var errnoIntern = func() map[string]string {
	m := make(map[string]string, len(errnoByName))
	for name := range errnoByName {
		m[name] = name
	}
	return m
}()

func internErrno(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := errnoIntern[string(b)]; ok {
		return s
	}
	return string(b)
}
