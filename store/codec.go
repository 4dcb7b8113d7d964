package store

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// castagnoli is the CRC used for log records and snapshots (hardware
// accelerated on amd64 and arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errShort means a record or snapshot ended before its fields did.
var errShort = errors.New("truncated encoding")

// enc appends little-endian fields to a byte slice. With a sink, spillOver
// hands the bytes so far to it, so a large encoding streams; the sink's
// first error sticks in err.
type enc struct {
	b    []byte
	sink func([]byte) error
	err  error
}

// spillOver passes the buffer to the sink once it holds more than limit
// bytes.
func (e *enc) spillOver(limit int) {
	if e.sink == nil || len(e.b) <= limit {
		return
	}
	if e.err == nil {
		e.err = e.sink(e.b)
	}
	e.b = e.b[:0]
}

func (e *enc) u8(v uint8)     { e.b = append(e.b, v) }
func (e *enc) u32(v uint32)   { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64)   { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) i64(v int64)    { e.u64(uint64(v)) }
func (e *enc) bytes(v []byte) { e.u32(uint32(len(v))); e.b = append(e.b, v...) }
func (e *enc) str(v string)   { e.u32(uint32(len(v))); e.b = append(e.b, v...) }

// dec reads what enc wrote. The first short read sets err; later reads
// return zero values, so callers check err once at the end.
type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.err = errShort
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *dec) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (d *dec) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (d *dec) i64() int64  { return int64(d.u64()) }
func (d *dec) str() string { return string(d.take(int(d.u32()))) }

// bytes returns a copy, so the decoded value does not pin the input buffer.
func (d *dec) bytes() []byte {
	v := d.take(int(d.u32()))
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}
