package fsop

import (
	"encoding/binary"
	"errors"
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
	bCaller                       // u32 uid, u32 gid, u32 n, n x u32 groups (added later still)

	bAllOp = bCaller<<1 - 1
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
	rOffsets                    // entries' count x u64 d_off (after the others: added later)
	rRdev                       // u64, the Stat's st_rdev (after the others: added later)

	rAllResult = rRdev<<1 - 1
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
	set(bCaller, op.Caller != nil)
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
	if mask&bCaller != 0 {
		size += 12 + 4*len(op.Caller.Groups)
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
	if mask&bCaller != 0 {
		c := op.Caller
		b = le.AppendUint32(b, c.UID)
		b = le.AppendUint32(b, c.GID)
		b = le.AppendUint32(b, uint32(len(c.Groups)))
		for _, g := range c.Groups {
			b = le.AppendUint32(b, g)
		}
	}
	return b
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
	set(rOffsets, hasOffsets(r.Entries))
	set(rRdev, r.Stat != nil && r.Stat.Rdev != 0)
	return m
}

// hasOffsets reports whether any entry has a d_off: a listing without any
// is encoded as before the offsets were added.
func hasOffsets(entries []Dirent) bool {
	for i := range entries {
		if entries[i].Off != 0 {
			return true
		}
	}
	return false
}

// AppendResult appends the binary encoding of r to b and returns the
// extended slice. It grows b at most once.
func AppendResult(b []byte, r *Result) []byte {
	mask := resultMask(r)
	b = slices.Grow(b, resultSize(r, mask))

	b = append(b, CodecVersion)
	b = appendStr(b, r.Errno)
	b = le.AppendUint32(b, mask)
	if r.Stat != nil {
		b = appendAttr(b, r.Stat)
	}
	if r.Statfs != nil {
		b = appendStatfs(b, r.Statfs)
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
	if mask&rOffsets != 0 {
		for i := range r.Entries {
			b = le.AppendUint64(b, r.Entries[i].Off)
		}
	}
	if mask&rRdev != 0 {
		b = le.AppendUint64(b, r.Stat.Rdev)
	}
	return b
}

// resultSize is the encoded size of r with the field mask mask.
func resultSize(r *Result, mask uint32) int {
	size := 1 + 4 + len(r.Errno) + 4
	if mask&rStat != 0 {
		size += attrSize
	}
	if mask&rStatfs != 0 {
		size += statfsSize
	}
	size += 8 * bits.OnesCount32(mask&(rN|rSize|rRdev))
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
	if mask&rOffsets != 0 {
		size += 8 * len(r.Entries)
	}
	return size
}

// appendAttr appends the attrSize bytes of a.
func appendAttr(b []byte, a *Attr) []byte {
	b = le.AppendUint32(b, a.Mode)
	b = le.AppendUint64(b, uint64(a.Size))
	b = le.AppendUint32(b, a.Nlink)
	b = le.AppendUint32(b, a.UID)
	b = le.AppendUint32(b, a.GID)
	b = le.AppendUint64(b, uint64(a.AtimeNs))
	b = le.AppendUint64(b, uint64(a.MtimeNs))
	b = le.AppendUint64(b, uint64(a.CtimeNs))
	return le.AppendUint64(b, a.Ino)
}

// appendStatfs appends the statfsSize bytes of s.
func appendStatfs(b []byte, s *StatfsInfo) []byte {
	b = le.AppendUint64(b, uint64(s.Bsize))
	b = le.AppendUint64(b, s.Blocks)
	b = le.AppendUint64(b, s.Bfree)
	b = le.AppendUint64(b, s.Bavail)
	b = le.AppendUint64(b, s.Files)
	b = le.AppendUint64(b, s.Ffree)
	return le.AppendUint64(b, uint64(s.Namelen))
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
