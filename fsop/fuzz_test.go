package fsop

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// Run one for a while with, for example:
//
//	go test ./fsop -run '^$' -fuzz '^FuzzDecodeRequest$' -fuzztime 60s
//
// Crashers found are kept in testdata/fuzz/<FuzzName>/ and replayed by every
// plain `go test`.

// checkPath fails t unless p is a path CleanPath returns unchanged, with no
// NUL, no leading "/" and no ".." component.
func checkPath(t *testing.T, what, p string) {
	t.Helper()
	c, err := CleanPath(p)
	if err != nil || c != p {
		t.Fatalf("%s %q: CleanPath gives %q, %v", what, p, c, err)
	}
	if strings.IndexByte(p, 0) >= 0 || strings.HasPrefix(p, "/") {
		t.Fatalf("%s %q has a NUL or is absolute", what, p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			t.Fatalf("%s %q has a .. component", what, p)
		}
	}
}

// smallSeeds are sampleOps with short data: the fuzzer minimizes every new
// interesting input, and minimizing one grown from a 4 KiB seed takes its
// whole minimize budget (60 s by default) with no progress reported.
func smallSeeds() []Op {
	ops := sampleOps()
	for i := range ops {
		if len(ops[i].Data) > 8 {
			ops[i].Data = ops[i].Data[:8]
		}
	}
	return ops
}

func FuzzDecodeRequest(f *testing.F) {
	var buf bytes.Buffer
	for _, op := range smallSeeds() {
		buf.Reset()
		if err := EncodeRequest(&buf, []Op{op}, false); err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.Clone(buf.Bytes()))
	}
	buf.Reset()
	if err := EncodeRequest(&buf, smallSeeds()[:5], true); err != nil {
		f.Fatal(err)
	}
	f.Add(bytes.Clone(buf.Bytes()))
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `{"ops":[]}`, `{"ops":null}`, `{"ops":[{}]}`,
		`{"op":"stat","path":"../x"}`, `{"op":"stat","path":"a/../../x"}`,
		`{"op":"stat","path":"/etc"}`, `{"op":"stat","path":"a\u0000b"}`,
		`{"op":"stat","path":"./a/./b/../c/"}`, `{"op":"stat","path":"."}`,
		`{"op":"stat","path":"a\/b"}`, `{"op":"stat","path":"\ud800"}`,
		`{"op":"rename","path":"a","to":"b/.."}`, `{"op":"symlink","path":"l","target":"/abs"}`,
		`{"op":"write_file","path":"f","data":"aGk\u003d"}`, `{"op":"write_file","path":"f","data":"aGk"}`,
		`{"op":"chown","path":"f","uid":-1,"gid":4294967294}`, `{"op":"chown","path":"f","uid":1}`,
		`{"op":"fsync","handle":1}`, `{"op":"fsync","path":"a","handle":1}`,
		`{"op":"open","path":"f","flags":65,"mode":420,"handle":18446744073709551615}`,
		`{"op":"read","path":"f","offset":1e3}`, `{"op":"read","path":"f","length":-0}`,
		`{"op":"stat","path":"a"} `, `{"op":"stat","path":"a"}{}`, `{"op":"stat","path":"a","path":"b"}`,
		`{"OP":"stat","PATH":"a"}`, `{"op":"mkdri","path":"a"}`, "{\"op\":\"stat\",\"path\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, batch, err := DecodeRequest(bytes.NewReader(body), 1<<20)
		if err != nil {
			if ops != nil || batch {
				t.Fatalf("error %v with ops %v, batch %v", err, ops, batch)
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if !batch && len(ops) != 1 || len(ops) > MaxBatch {
			t.Fatalf("batch %v with %d ops", batch, len(ops))
		}
		for i := range ops {
			op := ops[i]
			if !op.Kind.Known() {
				t.Fatalf("op %d: unknown kind %q accepted", i, op.Kind)
			}
			needs := specs[op.Kind].needs
			if op.Kind == Fsync && op.Handle == 0 {
				needs |= fPath
			}
			if needs&fPath != 0 {
				checkPath(t, "path", op.Path)
			} else if op.Path != "" {
				t.Fatalf("op %d (%s): path %q on an op that takes none", i, op.Kind, op.Path)
			}
			if needs&fTo != 0 {
				checkPath(t, "to", op.To)
			}
			if again := op; again.Validate() != nil || !reflect.DeepEqual(again, op) {
				t.Fatalf("op %d: Validate is not idempotent on %+v", i, op)
			}
		}
		// What was accepted re-encodes to an equal request.
		var buf bytes.Buffer
		if err := EncodeRequest(&buf, ops, batch); err != nil {
			t.Fatalf("EncodeRequest of accepted ops: %v", err)
		}
		again, batch2, err := DecodeRequest(&buf, 0)
		if err != nil || batch2 != batch || !reflect.DeepEqual(again, ops) {
			t.Fatalf("re-encoded request %s:\n got %+v, %v\nwant %+v", buf.Bytes(), again, err, ops)
		}
	})
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"", ".", "..", "/", "a", "a/", "a/b", "./a", "a/..", "a/../..", "../a",
		"a/./b//c/", "/a", "a\x00b", "...", "..a", "a/..b", "a/b/../../..",
		strings.Repeat("a/", 2048), strings.Repeat("x", 4097),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, err := CleanPath(p)
		if err != nil {
			if c != "" {
				t.Fatalf("%q: error %v with output %q", p, err, c)
			}
			return
		}
		if c == "" || strings.HasPrefix(c, "/") || strings.IndexByte(c, 0) >= 0 {
			t.Fatalf("%q -> %q: empty, absolute or with a NUL", p, c)
		}
		if strings.HasPrefix(p, "/") || strings.IndexByte(p, 0) >= 0 || len(p) > MaxPathLen {
			t.Fatalf("%q accepted", p)
		}
		for _, part := range strings.Split(c, "/") {
			if part == ".." || part == "" || (part == "." && c != ".") {
				t.Fatalf("%q -> %q has a %q component", p, c, part)
			}
		}
		if c2, err := CleanPath(c); err != nil || c2 != c {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", p, c, c2, err)
		}
	})
}

func FuzzDecodeOp(f *testing.F) {
	for _, op := range append(smallSeeds(), everythingOp(), Op{}) {
		f.Add(AppendOp(nil, &op))
	}
	f.Add([]byte{})
	f.Add([]byte{CodecVersion})
	f.Add([]byte{CodecVersion, 0, 0, 0, 0, 0xff, 0xff, 0x01, 0x00})
	f.Add([]byte{CodecVersion, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := DecodeOp(b)
		if op2, err2 := DecodeOpNoCopy(b); (err == nil) != (err2 == nil) || !reflect.DeepEqual(op2, op) {
			t.Fatalf("DecodeOpNoCopy disagrees with DecodeOp: %v / %v", err2, err)
		}
		if err != nil {
			return
		}
		enc := AppendOp(nil, &op)
		again, err := DecodeOp(enc)
		if err != nil {
			t.Fatalf("re-encoded op does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, op) {
			t.Fatalf("decode(encode(x)) != x:\n got %#v\nwant %#v", again, op)
		}
		if enc2 := AppendOp(nil, &again); !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding is not stable")
		}
		if len(enc) > len(b) {
			t.Fatalf("canonical encoding (%d bytes) longer than the input (%d)", len(enc), len(b))
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	for _, r := range sampleResults() {
		if len(r.Data) > 8 {
			r.Data = r.Data[:8] // see smallSeeds
		}
		f.Add(AppendResult(nil, &r))
	}
	f.Add([]byte{})
	f.Add([]byte{CodecVersion, 0, 0, 0, 0, byte(rEntries), 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{CodecVersion, 0, 0, 0, 0, byte(rNames), 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResult(b)
		if r2, err2 := DecodeResultNoCopy(b); (err == nil) != (err2 == nil) || !reflect.DeepEqual(r2, r) {
			t.Fatalf("DecodeResultNoCopy disagrees with DecodeResult: %v / %v", err2, err)
		}
		if err != nil {
			return
		}
		enc := AppendResult(nil, &r)
		again, err := DecodeResult(enc)
		if err != nil {
			t.Fatalf("re-encoded result does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("decode(encode(x)) != x:\n got %#v\nwant %#v", again, r)
		}
		if enc2 := AppendResult(nil, &again); !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding is not stable")
		}
		if len(enc) > len(b) {
			t.Fatalf("canonical encoding (%d bytes) longer than the input (%d)", len(enc), len(b))
		}
	})
}
