package fsop

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fullOp returns an op of kind k with every field k uses set to a non-zero
// value (ops of one kind differ from the other kinds' fields).
func fullOp(k Kind) Op {
	op := Op{Kind: k}
	m := kindFields[k]
	if k == Fsync {
		m &^= bPath // handle-based; sampleOps has the path-based one too
	}
	if m&bPath != 0 {
		op.Path = "dir/file-" + string(k)
	}
	if m&bTo != 0 {
		op.To = "other/dest"
	}
	if m&bTarget != 0 {
		op.Target = "../some/target"
	}
	if m&bName != 0 {
		op.Name = "user.lighthouse"
	}
	if m&bValue != 0 {
		op.Value = []byte("value\x00with nul")
	}
	if m&bHandle != 0 {
		op.Handle = 1<<63 + 7
	}
	if m&bFlags != 0 {
		op.Flags = 0o101102
		if k == Chown || k == Utimens {
			op.Flags = NoFollow
		}
	}
	if m&bMode != 0 {
		op.Mode = 0o4755
		if k == Mknod {
			op.Mode = unix.S_IFCHR | 0o640
		}
	}
	if m&bRdev != 0 {
		op.Rdev = unix.Mkdev(1<<12+1, 1<<20+3)
	}
	if m&bExclusive != 0 {
		op.Exclusive = true
	}
	if m&bOffset != 0 {
		op.Offset = 1<<40 + 3
	}
	if m&bLength != 0 {
		op.Length = 65536
	}
	if m&bSize != 0 {
		op.Size = 12345
	}
	if m&bUID != 0 {
		op.UID, op.GID = 1000, 4294967294
	}
	if m&bAtime != 0 {
		op.AtimeNs, op.MtimeNs = -1_000_000_001, 1_700_000_000_123_456_789
	}
	if m&bData != 0 {
		op.Data = bytes.Repeat([]byte{0, 1, 2, 0xff}, 1024)
	}
	switch k {
	case Create, Mkdir:
		op.Caller = &Caller{UID: 1000, GID: 1<<32 - 1, Groups: []uint32{0, 2000, 1<<32 - 1}}
	case Open:
		op.Caller = &Caller{UID: 65534, GID: 65534}
	}
	return op
}

// sampleOps is one full op per kind, plus the path-based fsync.
func sampleOps() []Op {
	var ops []Op
	for _, k := range AllKinds() {
		ops = append(ops, fullOp(k))
	}
	return append(ops, Op{Kind: Fsync, Path: "dir/synced"})
}

// everythingOp has every Op field set, used or not.
func everythingOp() Op {
	return Op{
		Kind: "future_op", Path: "p/ä", To: "t", Target: "/abs", Mode: 0o777,
		Flags: -5, Exclusive: true, Data: []byte("d"), Offset: 1, Length: 2,
		Size: 3, UID: -1, GID: -1, AtimeNs: -4, MtimeNs: 5, Name: "n",
		Value: []byte{}, Handle: 9, Rdev: 1<<64 - 1, Caller: &Caller{UID: 7, GID: 8, Groups: []uint32{9}},
	}
}

// sampleResults covers every Result field, and nil against empty.
func sampleResults() []Result {
	return []Result{
		{},
		{Errno: "ENOENT"},
		{Errno: "E999"},
		{Stat: &Attr{Mode: 0o100644, Size: 1 << 40, Nlink: 2, UID: 1000, GID: 1001,
			AtimeNs: -1, MtimeNs: 1_700_000_000_000_000_001, CtimeNs: 3, Ino: 1<<64 - 1}},
		{Statfs: &StatfsInfo{Bsize: 4096, Blocks: 1, Bfree: 2, Bavail: 3, Files: 4, Ffree: 5, Namelen: 255}},
		{Data: bytes.Repeat([]byte("x"), 4096)},
		{Data: []byte{}},
		{N: 4096},
		{Errno: "ENOSPC", N: 100},
		{Size: 17, Value: []byte("seventeen bytes!!")},
		{Value: []byte{}},
		{Errno: "ERANGE", Size: 64},
		{Entries: []Dirent{{".", "dir", 0}, {"..", "dir", 0}, {"a file", "file", 0}, {"l", "symlink", 0}, {"", "", 0}}},
		{Entries: []Dirent{{".", "dir", 32}, {"..", "dir", 64}, {"a file", "file", 1<<63 + 5}, {"", "", 0}}},
		{Entries: []Dirent{}},
		{Target: "../x/y"},
		{Names: []string{"user.a", "trusted.b", ""}},
		{Names: []string{}},
		{
			Errno: "EIO", Stat: &Attr{Mode: 1, Rdev: 1<<64 - 1}, Data: []byte{1}, N: -1, Size: -2,
			Entries: []Dirent{{"n", "t", 7}}, Target: "t", Value: []byte{2},
			Names: []string{"x"}, Statfs: &StatfsInfo{Namelen: 1},
		},
	}
}

func TestOpRoundTrip(t *testing.T) {
	ops := append(sampleOps(), everythingOp(), Op{}, Op{Kind: Mkdir, Path: "a", Data: []byte{}})
	for _, op := range ops {
		t.Run(string(op.Kind), func(t *testing.T) {
			prefix := []byte("prefix")
			b := AppendOp(prefix, &op)
			if !bytes.Equal(b[:len(prefix)], prefix) {
				t.Fatalf("AppendOp clobbered the prefix")
			}
			got, err := DecodeOp(b[len(prefix):])
			if err != nil {
				t.Fatalf("DecodeOp: %v", err)
			}
			if !reflect.DeepEqual(got, op) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, op)
			}
			if got, err := DecodeOpNoCopy(b[len(prefix):]); err != nil || !reflect.DeepEqual(got, op) {
				t.Fatalf("DecodeOpNoCopy: got %+v, %v", got, err)
			}
		})
	}
}

// TestNilAndEmptyDistinct: nil and empty Data, Value, Entries and Names
// round-trip as themselves (documented on DecodeOp and DecodeResult).
func TestNilAndEmptyDistinct(t *testing.T) {
	for _, data := range [][]byte{nil, {}} {
		op := Op{Kind: WriteFile, Path: "f", Data: data, Value: data}
		got, err := DecodeOp(AppendOp(nil, &op))
		if err != nil {
			t.Fatal(err)
		}
		if (got.Data == nil) != (data == nil) || (got.Value == nil) != (data == nil) {
			t.Errorf("op data %#v decoded as %#v, value as %#v", data, got.Data, got.Value)
		}
		r := Result{Data: data, Value: data}
		if data != nil {
			r.Entries, r.Names = []Dirent{}, []string{}
		}
		gr, err := DecodeResult(AppendResult(nil, &r))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gr, r) {
			t.Errorf("result %#v decoded as %#v", r, gr)
		}
	}
}

func TestResultRoundTrip(t *testing.T) {
	for i, r := range sampleResults() {
		b := AppendResult([]byte{0xAA}, &r)
		got, err := DecodeResult(b[1:])
		if err != nil {
			t.Fatalf("result %d: DecodeResult: %v", i, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("result %d round trip:\n got %#v\nwant %#v", i, got, r)
		}
		if got, err := DecodeResultNoCopy(b[1:]); err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("result %d: DecodeResultNoCopy: got %#v, %v", i, got, err)
		}
	}
}

// TestOffsetsOptional: a listing whose entries have no d_off is encoded
// byte for byte as before the offsets were added (no offsets bit), and an
// encoding without the bit (an older bridge's) decodes with every Off 0.
func TestOffsetsOptional(t *testing.T) {
	old := []byte{CodecVersion, 0, 0, 0, 0, byte(rEntries), 0, 0, 0, 2, 0, 0, 0,
		1, 0, 0, 0, '.', 3, 0, 0, 0, 'd', 'i', 'r',
		1, 0, 0, 0, 'a', 4, 0, 0, 0, 'f', 'i', 'l', 'e'}
	want := Result{Entries: []Dirent{{Name: ".", Type: "dir"}, {Name: "a", Type: "file"}}}
	got, err := DecodeResult(old)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("an encoding without offsets: got %#v, %v; want %#v", got, err, want)
	}
	if enc := AppendResult(nil, &want); !bytes.Equal(enc, old) {
		t.Fatalf("entries without offsets encode as % x, want % x", enc, old)
	}
	want.Entries[1].Off = 2
	enc := AppendResult(nil, &want)
	if len(enc) != len(old)+16 || le.Uint32(enc[5:])&rOffsets == 0 {
		t.Fatalf("one entry with an offset: % x, want the offsets bit and 2 x u64 after the entries", enc)
	}
}

// TestRdevOptional: a stat without a device number is encoded byte for
// byte as before Rdev was added (no rdev bit), an encoding without the bit
// (an older bridge's) decodes with Rdev 0, and a device's number is one
// u64 after everything else.
func TestRdevOptional(t *testing.T) {
	r := Result{Stat: &Attr{Mode: 0o20644, Nlink: 1, Ino: 7}}
	old := AppendResult(nil, &r)
	if le.Uint32(old[5:]) != rStat || len(old) != 1+4+4+attrSize {
		t.Fatalf("a stat without rdev: % x, want only the stat bit and %d bytes", old, attrSize)
	}
	got, err := DecodeResult(old)
	if err != nil || *got.Stat != *r.Stat {
		t.Fatalf("decoded %+v, %v; want %+v", got.Stat, err, r.Stat)
	}
	r.Stat.Rdev = unix.Mkdev(8, 1)
	enc := AppendResult(nil, &r)
	if len(enc) != len(old)+8 || le.Uint32(enc[5:]) != rStat|rRdev || le.Uint64(enc[len(old):]) != unix.Mkdev(8, 1) {
		t.Fatalf("a device's stat: % x, want the rdev bit and its u64 last", enc)
	}
	if got, err := DecodeResult(enc); err != nil || *got.Stat != *r.Stat {
		t.Fatalf("decoded %+v, %v; want %+v", got.Stat, err, r.Stat)
	}
	var buf bytes.Buffer
	if err := EncodeResults(&buf, []Result{{Stat: &Attr{Mode: 1}}, r}, true); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), `"rdev"`); n != 1 || !strings.Contains(buf.String(), `"rdev":2049`) {
		t.Fatalf("JSON %s: want rdev only on the device", buf.String())
	}
}

// TestDecodeNoAlias: decoded values do not share memory with the input.
func TestDecodeNoAlias(t *testing.T) {
	op := fullOp(Pwrite)
	op.Path = "p"
	b := AppendOp(nil, &op)
	got, err := DecodeOp(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if !bytes.Equal(got.Data, op.Data) {
		t.Fatal("decoded Data aliases the input")
	}
	r := Result{Data: []byte("abc"), Target: "t", Entries: []Dirent{{"n", "file", 1}}, Names: []string{"x"}}
	b = AppendResult(nil, &r)
	gr, err := DecodeResult(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if !reflect.DeepEqual(gr, r) {
		t.Fatal("decoded result aliases the input")
	}
}

// TestDecodeNoCopyAliases: the NoCopy decoders' Data and Value are views of
// the input, clipped so that appending to them cannot write into it.
func TestDecodeNoCopyAliases(t *testing.T) {
	op := Op{Kind: Setxattr, Path: "p", Name: "user.a", Value: []byte("vv"), Data: []byte("dd")}
	b := AppendOp(nil, &op)
	got, err := DecodeOpNoCopy(b)
	if err != nil {
		t.Fatal(err)
	}
	if cap(got.Value) != len(got.Value) || cap(got.Data) != len(got.Data) {
		t.Fatalf("capacity not clipped: data %d/%d value %d/%d", len(got.Data), cap(got.Data), len(got.Value), cap(got.Value))
	}
	b[len(b)-1] = 'X' // the last byte of value
	if string(got.Value) != "vX" || got.Path != "p" || got.Name != "user.a" {
		t.Fatalf("after changing the input: value %q (want an alias), path %q, name %q (want copies)", got.Value, got.Path, got.Name)
	}
	r := Result{Data: []byte("abc")}
	b = AppendResult(nil, &r)
	gr, err := DecodeResultNoCopy(b)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] = 'X'
	if string(gr.Data) != "abX" {
		t.Fatalf("result data %q, want an alias of the input", gr.Data)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := AppendOp(nil, &Op{Kind: Write, Path: "f", Data: []byte("abc"), Offset: 3})
	goodRes := AppendResult(nil, &Result{Entries: []Dirent{{"a", "file", 3}}, Names: []string{"n"}})
	tests := []struct {
		name    string
		input   []byte
		result  bool // decode as a result
		wantMsg string
	}{
		{name: "empty", input: nil, wantMsg: "version"},
		{name: "bad version", input: append([]byte{2}, good[1:]...), wantMsg: "unsupported codec version 2"},
		{name: "trailing byte", input: append(bytes.Clone(good), 0), wantMsg: "1 trailing bytes"},
		{name: "unknown op bit", input: func() []byte {
			b := bytes.Clone(good)
			b[1+4+len("write")+2] |= 0x80 // bit 23
			return b
		}(), wantMsg: "unknown op field bits"},
		{name: "huge string length", input: []byte{1, 0xff, 0xff, 0xff, 0xff, 's'}, wantMsg: "kind: length 4294967295 exceeds"},
		{name: "huge entry count", input: []byte{1, 0, 0, 0, 0, byte(rEntries), 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}, result: true, wantMsg: "entries: count"},
		{name: "huge names count", input: []byte{1, 0, 0, 0, 0, byte(rNames), 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, result: true, wantMsg: "names: count"},
		{name: "unknown result bit", input: []byte{1, 0, 0, 0, 0, 0, 0x10, 0, 0}, result: true, wantMsg: "unknown result field bits 0x1000"},
		{name: "rdev without stat", input: []byte{1, 0, 0, 0, 0, 0, byte(rRdev >> 8), 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, result: true, wantMsg: "rdev: set without a stat"},
		{name: "offsets without entries", input: []byte{1, 0, 0, 0, 0, 0, byte(rOffsets >> 8), 0, 0}, result: true, wantMsg: "entry offsets: set without entries"},
		{name: "short offsets", input: []byte{1, 0, 0, 0, 0, byte(rEntries), byte(rOffsets >> 8), 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0},
			result: true, wantMsg: "entry offsets: needs 8 bytes, 4 left"},
		{name: "short stat", input: []byte{1, 0, 0, 0, 0, byte(rStat), 0, 0, 0, 1, 2, 3}, result: true, wantMsg: "stat: needs 56 bytes, 3 left"},
	}
	// Every truncation of a valid encoding fails cleanly.
	for n := range len(good) {
		tests = append(tests, struct {
			name    string
			input   []byte
			result  bool
			wantMsg string
		}{name: "op truncated", input: good[:n]})
	}
	for n := range len(goodRes) {
		tests = append(tests, struct {
			name    string
			input   []byte
			result  bool
			wantMsg string
		}{name: "result truncated", input: goodRes[:n], result: true})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.result {
				_, err = DecodeResult(tt.input)
			} else {
				_, err = DecodeOp(tt.input)
			}
			if !errors.Is(err, ErrBadEncoding) {
				t.Fatalf("error %v, want one wrapping ErrBadEncoding", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

// TestCodecAllocs: encoding into a reused buffer allocates nothing, and
// decoding allocates once per string group and once per byte field.
func TestCodecAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	op := Op{Kind: WriteFile, Path: "dir/file", Data: make([]byte, 4096)}
	buf := make([]byte, 0, 8192)
	allocs := testing.AllocsPerRun(200, func() {
		buf = AppendOp(buf[:0], &op)
		got, err := DecodeOp(buf)
		if err != nil || len(got.Data) != 4096 {
			t.Fatal("bad round trip")
		}
	})
	if allocs > 2 { // the path, the data
		t.Errorf("4 KiB op encode+decode: %v allocations, want <= 2", allocs)
	}
	if a := testing.AllocsPerRun(200, func() {
		buf = AppendOp(buf[:0], &op)
		if _, err := DecodeOpNoCopy(buf); err != nil {
			t.Fatal(err)
		}
	}); a > 1 { // the path
		t.Errorf("4 KiB op encode+DecodeOpNoCopy: %v allocations, want <= 1", a)
	}

	rename := Op{Kind: Rename, Path: "a/b", To: "c/d", Flags: RenameNoReplace}
	if a := testing.AllocsPerRun(200, func() {
		buf = AppendOp(buf[:0], &rename)
		if _, err := DecodeOp(buf); err != nil {
			t.Fatal(err)
		}
	}); a > 1 {
		t.Errorf("rename encode+decode: %v allocations, want 1 (both paths share one)", a)
	}

	for _, tc := range []struct {
		name string
		r    Result
		max  float64
	}{
		{"read 4 KiB", Result{Data: make([]byte, 4096)}, 1},
		{"errno", Result{Errno: "ENOENT"}, 0},
		{"stat", Result{Stat: &Attr{Mode: 0o644}}, 1},
		{"readdir", Result{Entries: []Dirent{{".", "dir", 1}, {"..", "dir", 2}, {"a", "file", 3}, {"b", "file", 4}}}, 2},
	} {
		if a := testing.AllocsPerRun(200, func() {
			buf = AppendResult(buf[:0], &tc.r)
			if _, err := DecodeResult(buf); err != nil {
				t.Fatal(err)
			}
		}); a > tc.max {
			t.Errorf("%s result encode+decode: %v allocations, want <= %v", tc.name, a, tc.max)
		}
	}
}

func TestControlRoundTrip(t *testing.T) {
	for _, c := range []Control{{}, {Kind: ControlAttach, Arg: "/srv/mnt"}, {Kind: ControlCloseAll}, {Kind: ControlOK}} {
		got, err := DecodeControl(AppendControl(nil, c))
		if err != nil || got != c {
			t.Errorf("control %+v: got %+v, %v", c, got, err)
		}
	}
	b := AppendControl(nil, Control{Kind: ControlAttach, Arg: "/x"})
	for n := range len(b) {
		if _, err := DecodeControl(b[:n]); !errors.Is(err, ErrBadEncoding) {
			t.Errorf("truncated at %d: %v", n, err)
		}
	}
}

func TestFrames(t *testing.T) {
	var stream bytes.Buffer
	w := bufio.NewWriter(&stream)
	frames := []Frame{
		{ID: 1, Type: FrameOp, Payload: AppendOp(nil, &Op{Kind: Stat, Path: "a"})},
		{ID: 1<<64 - 1, Type: FrameResult, Payload: AppendResult(nil, &Result{Errno: "ENOENT"})},
		{ID: 0, Type: FrameError, Payload: []byte("path: path escapes the mount")},
		{ID: 7, Type: FrameControl, Payload: AppendControl(nil, Control{Kind: ControlCloseAll})},
		{ID: 8, Type: 200, Payload: []byte{}},
		{ID: 9, Type: FrameOp, Payload: make([]byte, 100_000)},
	}
	for _, f := range frames {
		if err := WriteFrame(w, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := stream.Len(), 13*len(frames)+func() (n int) {
		for _, f := range frames {
			n += len(f.Payload)
		}
		return
	}(); got != want {
		t.Fatalf("stream has %d bytes, want %d", got, want)
	}
	r := bufio.NewReader(&stream)
	for i, want := range frames {
		got, err := ReadFrame(r, 1<<20)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.ID != want.ID || got.Type != want.Type || !bytes.Equal(got.Payload, want.Payload) || got.Payload == nil {
			t.Fatalf("frame %d: got %+v, want %+v", i, got, want)
		}
	}
	if _, err := ReadFrame(r, 0); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
}

func TestFrameHeaderLayout(t *testing.T) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	if err := WriteFrame(w, Frame{ID: 0x0102030405060708, Type: FrameResult, Payload: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	want := []byte{2, 0, 0, 0, 2, 8, 7, 6, 5, 4, 3, 2, 1, 'h', 'i'}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("frame bytes % x, want % x", out.Bytes(), want)
	}
}

// TestWriteFrameNearlyFull: a header that does not fit the buffer's free
// space is written correctly too.
func TestWriteFrameNearlyFull(t *testing.T) {
	var out bytes.Buffer
	w := bufio.NewWriterSize(&out, 16)
	for i := range 20 {
		if err := WriteFrame(w, Frame{ID: uint64(i), Type: FrameOp, Payload: []byte(strings.Repeat("x", i))}); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	r := bufio.NewReader(&out)
	for i := range 20 {
		f, err := ReadFrame(r, 100)
		if err != nil || f.ID != uint64(i) || len(f.Payload) != i {
			t.Fatalf("frame %d: %+v %v", i, f, err)
		}
	}
}

func TestReadFrameErrors(t *testing.T) {
	frame := func(n uint32, payload string) []byte {
		b := le.AppendUint32(nil, n)
		b = append(b, FrameOp)
		b = le.AppendUint64(b, 42)
		return append(b, payload...)
	}
	tests := []struct {
		name  string
		input []byte
		max   int
		want  error
	}{
		{name: "clean end", input: nil, want: io.EOF},
		{name: "short header", input: frame(3, "")[:7], want: io.ErrUnexpectedEOF},
		{name: "short payload", input: frame(3, "ab"), max: 10, want: io.ErrUnexpectedEOF},
		{name: "over max", input: frame(11, "01234567890"), max: 10, want: ErrTooLarge},
		{name: "huge length, default max", input: frame(0xffffffff, ""), want: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ReadFrame(bufio.NewReader(bytes.NewReader(tt.input)), tt.max)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if tt.want == ErrTooLarge && (f.ID != 42 || f.Type != FrameOp || f.Payload != nil) {
				t.Fatalf("too-large frame: got %+v, want the header's ID and type, no payload", f)
			}
		})
	}
}

// BenchmarkBinaryRoundTrip4K: AppendOp into a reused buffer, then decode,
// for an op with 4 KiB of data. "copy" is DecodeOp (the data copied into a
// new slice), "nocopy" DecodeOpNoCopy (the data aliases the buffer).
func BenchmarkBinaryRoundTrip4K(b *testing.B) {
	op := Op{Kind: WriteFile, Path: "dir/file", Data: make([]byte, 4096)}
	for _, bc := range []struct {
		name   string
		decode func([]byte) (Op, error)
	}{{"copy", DecodeOp}, {"nocopy", DecodeOpNoCopy}} {
		b.Run(bc.name, func(b *testing.B) {
			buf := AppendOp(nil, &op)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendOp(buf[:0], &op)
				if _, err := bc.decode(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBinaryResultRoundTrip4K(b *testing.B) {
	r := Result{Data: make([]byte, 4096)}
	buf := AppendResult(nil, &r)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendResult(buf[:0], &r)
		if _, err := DecodeResult(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBinaryReaddirRoundTrip: AppendResult and DecodeResult of a
// listing of 100 entries ("." and ".." included), the result of a readdir:
// with each entry's d_off (as sysexec reports them) and without (as from a
// bridge older than Dirent.Off).
func BenchmarkBinaryReaddirRoundTrip(b *testing.B) {
	for _, offsets := range []bool{true, false} {
		r := Result{Entries: make([]Dirent, 100)}
		for i := range r.Entries {
			r.Entries[i] = Dirent{Name: fmt.Sprintf("file-%03d.go", i), Type: "file"}
			if offsets {
				r.Entries[i].Off = uint64(32 * (i + 1))
			}
		}
		r.Entries[0].Name, r.Entries[0].Type = ".", "dir"
		r.Entries[1].Name, r.Entries[1].Type = "..", "dir"
		b.Run(map[bool]string{true: "d_off", false: "no-d_off"}[offsets], func(b *testing.B) {
			buf := AppendResult(nil, &r)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendResult(buf[:0], &r)
				if _, err := DecodeResult(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFrameRoundTrip: encode a 4 KiB write op, frame it, read the frame
// back and decode it (DecodeOpNoCopy: the payload is ours), through a bufio
// pair over an in-memory stream.
func BenchmarkFrameRoundTrip(b *testing.B) {
	op := Op{Kind: WriteFile, Path: "dir/file", Data: make([]byte, 4096)}
	var stream bytes.Buffer
	w := bufio.NewWriterSize(&stream, 64<<10)
	r := bufio.NewReaderSize(&stream, 64<<10)
	payload := AppendOp(nil, &op)
	b.SetBytes(int64(FrameHeaderSize + len(payload)))
	b.ReportAllocs()
	var id uint64
	for b.Loop() {
		id++
		payload = AppendOp(payload[:0], &op)
		if err := WriteFrame(w, Frame{ID: id, Type: FrameOp, Payload: payload}); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		f, err := ReadFrame(r, 0)
		if err != nil || f.ID != id {
			b.Fatal(err)
		}
		if _, err := DecodeOpNoCopy(f.Payload); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCallerDecodeBounds: a caller claiming more groups than MaxGroups, or
// more than the bytes left, is refused, not allocated.
func TestCallerDecodeBounds(t *testing.T) {
	op := Op{Kind: Stat, Path: "a", Caller: &Caller{UID: 1, GID: 2, Groups: []uint32{3}}}
	b := AppendOp(nil, &op)
	n := len(b) - 8 // the group count, before the one group
	for _, tc := range []struct {
		name  string
		count uint32
		cut   int
	}{{"too many groups", MaxGroups + 1, 0}, {"groups past the end", 2, 0}, {"cut in the uid", 1, len(b) - 16}} {
		c := bytes.Clone(b)
		le.PutUint32(c[n:], tc.count)
		if tc.cut > 0 {
			c = c[:tc.cut]
		}
		if _, err := DecodeOp(c); err == nil {
			t.Errorf("%s: decoded", tc.name)
		}
	}
}
