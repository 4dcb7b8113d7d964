package fsop

import "fmt"

// The decoders of the binary codec (codec.go has the layout and the
// encoders): every length is checked against the bytes left.

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
	if mask&bCaller != 0 {
		op.Caller = d.caller()
	}
	if err := d.finish("op"); err != nil {
		return Op{}, err
	}
	return op, nil
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
	if mask&rOffsets != 0 {
		d.offsets(r.Entries, mask&rEntries != 0)
	}
	if mask&rRdev != 0 {
		d.rdev(r.Stat)
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

// offsets decodes the entries' d_off values into entries: one u64 per
// entry. Without the bit each Off stays 0 (an encoder from before the
// field). The bit without entries is malformed.
func (d *decoder) offsets(entries []Dirent, haveEntries bool) {
	if !haveEntries && !d.bad {
		d.fail("entry offsets", "set without entries")
	}
	v := d.take(8*len(entries), "entry offsets")
	if v == nil {
		return
	}
	for i := range entries {
		entries[i].Off = le.Uint64(v[8*i:])
	}
}

// rdev decodes the stat's st_rdev. Without the bit Rdev stays 0 (an
// encoder from before the field, or a file that is not a device). The bit
// without a stat is malformed.
func (d *decoder) rdev(a *Attr) {
	if a == nil && !d.bad {
		d.fail("rdev", "set without a stat")
	}
	v := d.u64("rdev")
	if a != nil {
		a.Rdev = v
	}
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

// caller decodes an op's Caller: uid, gid, the number of groups, groups.
func (d *decoder) caller() *Caller {
	c := &Caller{UID: d.u32("caller uid"), GID: d.u32("caller gid")}
	n := d.u32("caller groups")
	if n > MaxGroups && !d.bad {
		d.fail("caller groups", "%d groups, more than %d", n, MaxGroups)
	}
	if d.bad {
		return nil
	}
	if n > 0 {
		raw := d.take(4*int(n), "caller groups")
		if d.bad {
			return nil
		}
		c.Groups = make([]uint32, n)
		for i := range c.Groups {
			c.Groups[i] = le.Uint32(raw[4*i:])
		}
	}
	return c
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
