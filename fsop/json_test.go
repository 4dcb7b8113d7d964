package fsop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func decodeString(body string, max int64) ([]Op, bool, error) {
	return DecodeRequest(strings.NewReader(body), max)
}

func TestDecodeRequestSingle(t *testing.T) {
	ops, batch, err := decodeString(`{"op":"write_file","path":"./a//b/","data":"aGVsbG8="}`, 0)
	if err != nil || batch {
		t.Fatalf("got batch %v, %v", batch, err)
	}
	want := []Op{{Kind: WriteFile, Path: "a/b", Data: []byte("hello")}}
	if !reflect.DeepEqual(ops, want) {
		t.Fatalf("got %+v, want %+v", ops, want)
	}
}

func TestDecodeRequestBatch(t *testing.T) {
	body := ` {"ops": [
		{"op": "mkdir", "path": "d"},
		{"op": "create", "path": "d/f", "exclusive": true},
		{"op": "mkdir", "path": "e", "mode": 448},
		{"op": "chown", "path": "d/f", "uid": 0, "gid": -1},
		{"op": "utimens", "path": "d/f", "atime_ns": 0, "mtime_ns": 1},
		{"op": "pwrite", "handle": 18446744073709551615, "offset": 2, "data": "AP8\/"},
		{"op": "fsync", "handle": 1},
		{"op": "fsync", "path": "d"}
	]} `
	ops, batch, err := decodeString(body, 0)
	if err != nil || !batch {
		t.Fatalf("got batch %v, %v", batch, err)
	}
	want := []Op{
		{Kind: Mkdir, Path: "d", Mode: 0o755},
		{Kind: Create, Path: "d/f", Mode: 0o644, Exclusive: true},
		{Kind: Mkdir, Path: "e", Mode: 0o700},
		{Kind: Chown, Path: "d/f", UID: 0, GID: -1},
		{Kind: Utimens, Path: "d/f", AtimeNs: 0, MtimeNs: 1},
		{Kind: Pwrite, Handle: 1<<64 - 1, Offset: 2, Data: []byte{0, 0xff, 0x3f}},
		{Kind: Fsync, Handle: 1},
		{Kind: Fsync, Path: "d"},
	}
	if !reflect.DeepEqual(ops, want) {
		t.Fatalf("got  %+v\nwant %+v", ops, want)
	}

	ops, batch, err = decodeString(`{"ops":[]}`, 0)
	if err != nil || !batch || ops == nil || len(ops) != 0 {
		t.Fatalf("empty batch: %v %v %v", ops, batch, err)
	}
}

// TestRequestRoundTrip: EncodeRequest writes what DecodeRequest accepts, and
// encoding/json's rendering of an Op (omitempty) is accepted too when no
// required field is zero.
func TestRequestRoundTrip(t *testing.T) {
	ops := sampleOps()
	var buf bytes.Buffer
	if err := EncodeRequest(&buf, ops, true); err != nil {
		t.Fatal(err)
	}
	got, batch, err := DecodeRequest(&buf, 0)
	if err != nil || !batch {
		t.Fatalf("batch %v, %v", batch, err)
	}
	if !reflect.DeepEqual(got, ops) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, ops)
	}
	for _, op := range ops {
		t.Run(string(op.Kind), func(t *testing.T) {
			buf.Reset()
			if err := EncodeRequest(&buf, []Op{op}, false); err != nil {
				t.Fatal(err)
			}
			got, _, err := DecodeRequest(&buf, 0)
			if err != nil || !reflect.DeepEqual(got, []Op{op}) {
				t.Fatalf("EncodeRequest: got %+v, %v", got, err)
			}
			std, err := json.Marshal(op)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err = DecodeRequest(bytes.NewReader(std), 0)
			if err != nil || !reflect.DeepEqual(got, []Op{op}) {
				t.Fatalf("json.Marshal %s: got %+v, %v", std, got, err)
			}
		})
	}
}

// TestEncodeRequestZeroes: required fields are written even when zero, and
// mkdir's mode 0 stays 0 rather than becoming the default.
func TestEncodeRequestZeroes(t *testing.T) {
	ops := []Op{
		{Kind: Chown, Path: "f"},
		{Kind: Utimens, Path: "f"},
		{Kind: Chmod, Path: "f"},
		{Kind: Mkdir, Path: "d"},
		{Kind: WriteFile, Path: "e", Data: []byte{}},
	}
	var buf bytes.Buffer
	if err := EncodeRequest(&buf, ops, true); err != nil {
		t.Fatal(err)
	}
	const want = `{"ops":[{"op":"chown","path":"f","uid":0,"gid":0},{"op":"utimens","path":"f","atime_ns":0,"mtime_ns":0},` +
		`{"op":"chmod","path":"f","mode":0},{"op":"mkdir","path":"d","mode":0},{"op":"write_file","path":"e","data":""}]}`
	if buf.String() != want {
		t.Fatalf("got  %s\nwant %s", buf.String(), want)
	}
	got, _, err := DecodeRequest(&buf, 0)
	if err != nil || !reflect.DeepEqual(got, ops) {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestEncodeRequestErrors(t *testing.T) {
	tests := []struct {
		name  string
		ops   []Op
		batch bool
		want  string
	}{
		{name: "two ops, not a batch", ops: make([]Op, 2), want: "one op, not 2"},
		{name: "unknown kind", ops: []Op{{Kind: "mkdri"}}, want: `unknown op "mkdri"`},
		{name: "unused field", ops: []Op{{Kind: Stat, Path: "a", Size: 3}}, want: `"size" set but not used by stat`},
		{name: "fsync both", ops: []Op{{Kind: Fsync, Path: "a", Handle: 1}}, want: "not both"},
		{name: "invalid UTF-8", ops: []Op{{}, {Kind: Stat, Path: "\xff"}}, batch: true, want: "op 0: unknown op"},
		{name: "invalid UTF-8 path", ops: []Op{{Kind: Stat, Path: "\xff"}}, want: "path is not valid UTF-8"},
		{name: "too many", ops: make([]Op, MaxBatch+1), batch: true, want: "at most 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := EncodeRequest(&buf, tt.ops, tt.batch)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Fatalf("wrote %q on error", buf.String())
			}
		})
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		max   int64
		want  string // exact message
		is    error  // sentinel it wraps
		index int    // RequestError.Index
	}{
		{name: "empty body", body: " \n", want: `empty request body: want one op object, or {"ops": [...]}`, is: ErrBadJSON, index: -1},
		{name: "not an object", body: `"stat"`, want: "request body must be a JSON object, got a string", is: ErrBadJSON, index: -1},
		{name: "bare array", body: `[{"op":"stat","path":"a"}]`, want: `request body must be a JSON object, got an array (a batch is {"ops": [...]})`, is: ErrBadJSON, index: -1},
		{name: "null body", body: `null`, want: "request body must be a JSON object, got null", is: ErrBadJSON, index: -1},
		{name: "syntax error", body: `{"op":"stat",}`, want: "invalid JSON at byte 13: invalid character '}' looking for beginning of object key string", is: ErrBadJSON, index: -1},
		{name: "truncated", body: `{"op":"stat","path":"a"`, want: "invalid JSON: the body ends in the middle of a value", is: ErrBadJSON, index: -1},
		{name: "trailing object", body: `{"op":"stat","path":"a"} {"op":"stat","path":"b"}`, want: "trailing data after the JSON value at byte 24", is: ErrBadJSON, index: -1},
		{name: "trailing garbage", body: `{"op":"stat","path":"a"}x`, want: "trailing data after the JSON value at byte 24", is: ErrBadJSON, index: -1},
		{name: "duplicate field", body: `{"op":"stat","path":"a","path":"b"}`, want: `duplicate field "path"`, is: ErrBadJSON, index: -1},
		{name: "missing op", body: `{"path":"a"}`, want: `missing field "op" (the op name, e.g. "stat")`, is: ErrMissing, index: -1},
		{name: "capitalised op", body: `{"Op":"stat","path":"a"}`, want: `unknown field "Op" (field names are lower case: "op")`, is: ErrUnknownField, index: -1},
		{name: "op not a string", body: `{"op":3}`, want: "op: want a string, got a number", is: ErrBadValue, index: -1},
		{name: "unknown op", body: `{"op":"mkdri","path":"a"}`, want: `unknown op "mkdri"`, is: ErrUnknownOp, index: -1},
		{name: "unknown field", body: `{"op":"stat","path":"a","recursive":true}`, want: `unknown field "recursive"`, is: ErrUnknownField, index: -1},
		{name: "capitalised field", body: `{"op":"stat","Path":"a"}`, want: `unknown field "Path" (field names are lower case: "path")`, is: ErrUnknownField, index: -1},
		{name: "field the op does not use", body: `{"op":"read","path":"a","size":3}`, want: `field "size" is not used by read (read takes "path", "offset", "length")`, is: ErrUnknownField, index: -1},
		{name: "path on a handle op", body: `{"op":"close","handle":1,"path":"a"}`, want: `field "path" is not used by close (close takes "handle")`, is: ErrUnknownField, index: -1},
		{name: "ops inside an op", body: `{"ops":[{"op":"stat","path":"a","ops":[]}]}`, want: `op 0: field "ops" belongs at the top level of a batch body`, is: ErrUnknownField, index: 0},
		{name: "caller not an object", body: `{"op":"stat","path":"a","caller":1000}`, want: `caller: want an object {"uid": N, "gid": N, "groups": [N, ...]}, got a number`, is: ErrBadValue, index: -1},
		{name: "caller without gid", body: `{"op":"stat","path":"a","caller":{"uid":1000}}`, want: `caller: needs both "uid" and "gid"`, is: ErrMissing, index: -1},
		{name: "caller unknown member", body: `{"op":"stat","path":"a","caller":{"uid":1,"gid":1,"pid":3}}`, want: `caller: json: unknown field "pid" (want uid and gid from 0 to 4294967295, groups a list of them)`, is: ErrBadValue, index: -1},
		{name: "caller uid negative", body: `{"op":"stat","path":"a","caller":{"uid":-1,"gid":1}}`, want: `caller: json: cannot unmarshal number -1 into Go struct field .uid of type uint32 (want uid and gid from 0 to 4294967295, groups a list of them)`, is: ErrBadValue, index: -1},
		{name: "path not a string", body: `{"op":"stat","path":7}`, want: "path: want a string, got a number", is: ErrBadValue, index: -1},
		{name: "path null", body: `{"op":"stat","path":null}`, want: "path: want a string, got null", is: ErrBadValue, index: -1},
		{name: "path not UTF-8", body: "{\"op\":\"stat\",\"path\":\"a\xffb\"}", want: "path: the string is not valid UTF-8", is: ErrBadValue, index: -1},
		{name: "lone high surrogate", body: `{"op":"stat","path":"a\ud800b"}`, want: "path: the escape at byte 1 is half of a UTF-16 surrogate pair: the string is not valid UTF-8", is: ErrBadValue, index: -1},
		{name: "lone low surrogate", body: `{"op":"stat","path":"\\\udc00"}`, want: "path: the escape at byte 2 is half of a UTF-16 surrogate pair: the string is not valid UTF-8", is: ErrBadValue, index: -1},
		{name: "reversed surrogates", body: `{"op":"stat","path":"\udc00\ud800"}`, want: "path: the escape at byte 0 is half of a UTF-16 surrogate pair: the string is not valid UTF-8", is: ErrBadValue, index: -1},
		{name: "NUL in xattr name", body: `{"op":"getxattr","path":"f","name":"user.a\u0000b"}`, want: "name: invalid value: an xattr name cannot contain a NUL byte", is: ErrBadValue, index: -1},
		{name: "mode as octal string", body: `{"op":"chmod","path":"a","mode":"0644"}`, want: "mode: want a non-negative integer (decimal: 0o644 is 420), got a string", is: ErrBadValue, index: -1},
		{name: "mode fractional", body: `{"op":"chmod","path":"a","mode":1.5}`, want: "mode: want a non-negative integer (decimal: 0o644 is 420), got 1.5", is: ErrBadValue, index: -1},
		{name: "mode negative", body: `{"op":"chmod","path":"a","mode":-1}`, want: "mode: -1 is out of range (want a non-negative integer (decimal: 0o644 is 420))", is: ErrBadValue, index: -1},
		{name: "mode too big", body: `{"op":"chmod","path":"a","mode":4294967296}`, want: "mode: 4294967296 is out of range (want a non-negative integer (decimal: 0o644 is 420))", is: ErrBadValue, index: -1},
		{name: "offset negative", body: `{"op":"read","path":"a","offset":-1,"length":1}`, want: "offset: -1 is out of range (want a non-negative integer)", is: ErrBadValue, index: -1},
		{name: "length overflow", body: `{"op":"read","path":"a","length":99999999999999999999}`, want: "length: 99999999999999999999 is out of range (want a non-negative integer)", is: ErrBadValue, index: -1},
		{name: "exclusive not a bool", body: `{"op":"create","path":"a","exclusive":1}`, want: "exclusive: want true or false, got a number", is: ErrBadValue, index: -1},
		{name: "invalid base64", body: `{"op":"write_file","path":"f","data":"aGVsbG8"}`, want: "data: invalid base64 at byte 4 (want standard base64 with padding, RFC 4648 section 4)", is: ErrBadValue, index: -1},
		{name: "url-safe base64", body: `{"op":"write_file","path":"f","data":"-_-_"}`, want: "data: invalid base64 at byte 0 (want standard base64 with padding, RFC 4648 section 4)", is: ErrBadValue, index: -1},
		{name: "value not base64", body: `{"op":"setxattr","path":"f","name":"user.a","value":"héllo"}`, want: "value: invalid base64 at byte 1 (want standard base64 with padding, RFC 4648 section 4)", is: ErrBadValue, index: -1},
		{name: "data as array", body: `{"op":"write_file","path":"f","data":[1,2]}`, want: "data: want a base64 string, got an array", is: ErrBadValue, index: -1},
		{name: "path escapes", body: `{"op":"stat","path":"../x"}`, want: `path: path escapes the mount: "../x"`, is: ErrPathEscapes, index: -1},
		{name: "path escapes after cleaning", body: `{"op":"stat","path":"a/../../x"}`, want: `path: path escapes the mount: "a/../../x"`, is: ErrPathEscapes, index: -1},
		{name: "absolute path", body: `{"op":"stat","path":"/etc/passwd"}`, want: `path: path escapes the mount: "/etc/passwd" is absolute`, is: ErrPathEscapes, index: -1},
		{name: "NUL in path", body: `{"op":"stat","path":"a\u0000b"}`, want: "path: invalid path: contains a NUL byte", is: ErrBadPath, index: -1},
		{name: "empty path", body: `{"op":"stat","path":""}`, want: "path: invalid path: empty", is: ErrBadPath, index: -1},
		{name: "path too long", body: `{"op":"stat","path":"` + strings.Repeat("a/", 32769) + `"}`, want: "path: invalid path: longer than 65536 bytes", is: ErrBadPath, index: -1},
		{name: "rename to escapes", body: `{"op":"rename","path":"a","to":"../b"}`, want: `to: path escapes the mount: "../b"`, is: ErrPathEscapes, index: -1},
		{name: "missing path", body: `{"op":"stat"}`, want: `missing field "path" (stat needs "path")`, is: ErrMissing, index: -1},
		{name: "rename missing to", body: `{"op":"rename","path":"a"}`, want: `missing field "to" (rename needs "path", "to")`, is: ErrMissing, index: -1},
		{name: "symlink missing target", body: `{"op":"symlink","path":"l"}`, want: `missing field "target" (symlink needs "path", "target")`, is: ErrMissing, index: -1},
		{name: "symlink empty target", body: `{"op":"symlink","path":"l","target":""}`, want: "target: invalid path", is: ErrBadPath, index: -1},
		{name: "chown missing gid", body: `{"op":"chown","path":"a","uid":0}`, want: `missing field "gid" (chown needs "path", "uid", "gid"; -1 leaves an id unchanged)`, is: ErrMissing, index: -1},
		{name: "chown missing both", body: `{"op":"chown","path":"a"}`, want: `missing fields "uid", "gid" (chown needs "path", "uid", "gid"; -1 leaves an id unchanged)`, is: ErrMissing, index: -1},
		{name: "chown uid out of range", body: `{"op":"chown","path":"a","uid":-2,"gid":0}`, want: "uid: -2 is out of range (want -1 (unchanged) or an id from 0 to 4294967294)", is: ErrBadValue, index: -1},
		{name: "utimens missing mtime", body: `{"op":"utimens","path":"a","atime_ns":5}`, want: `missing field "mtime_ns" (utimens needs "path", "atime_ns", "mtime_ns")`, is: ErrMissing, index: -1},
		{name: "chmod missing mode", body: `{"op":"chmod","path":"a"}`, want: `missing field "mode" (chmod needs "path", "mode")`, is: ErrMissing, index: -1},
		{name: "getxattr missing name", body: `{"op":"getxattr","path":"a"}`, want: `missing field "name" (getxattr needs "path", "name")`, is: ErrMissing, index: -1},
		{name: "close missing handle", body: `{"op":"close"}`, want: `missing field "handle" (close needs "handle")`, is: ErrMissing, index: -1},
		{name: "handle zero", body: `{"op":"close","handle":0}`, want: "handle: 0 is out of range (want a non-zero integer below 2^64; handles are caller-chosen ids)", is: ErrBadValue, index: -1},
		{name: "handle negative", body: `{"op":"close","handle":-1}`, want: "handle: -1 is out of range (want a non-zero integer below 2^64)", is: ErrBadValue, index: -1},
		{name: "handle as string", body: `{"op":"close","handle":"1"}`, want: "handle: want a non-zero integer below 2^64, got a string", is: ErrBadValue, index: -1},
		{name: "fsync both", body: `{"op":"fsync","path":"a","handle":1}`, want: `fsync takes either "path" or "handle", not both`, is: ErrBadValue, index: -1},
		{name: "fsync neither", body: `{"op":"fsync"}`, want: `missing field "path" or "handle" (fsync needs one of them)`, is: ErrMissing, index: -1},
		{name: "body too large", body: `{"op":"stat","path":"abc"}`, max: 10, want: "request body is larger than 10 bytes", is: ErrTooLarge, index: -1},
		{name: "ops not an array", body: `{"ops":{"op":"stat"}}`, want: "ops: want an array of op objects, got an object", is: ErrBadValue, index: -1},
		{name: "ops null", body: `{"ops":null}`, want: "ops: want an array of op objects, got null", is: ErrBadValue, index: -1},
		{name: "batch with an op field", body: `{"ops":[],"op":"stat"}`, want: `a batch has only the "ops" field, found "op" too`, is: ErrUnknownField, index: -1},
		{name: "batch element not an object", body: `{"ops":[{"op":"stat","path":"a"},1]}`, want: "op 1: an op must be a JSON object, got a number", is: ErrBadJSON, index: 1},
		{name: "batch unknown op", body: `{"ops":[{"op":"mkdir","path":"a"},{"op":"stat","path":"a"},{"op":"stat","path":"a"},{"op":"mkdri","path":"b"}]}`, want: `op 3: unknown op "mkdri"`, is: ErrUnknownOp, index: 3},
		{name: "batch path escapes", body: `{"ops":[{"op":"stat","path":"a"},{"op":"stat","path":"../x"}]}`, want: `op 1: path: path escapes the mount: "../x"`, is: ErrPathEscapes, index: 1},
		{name: "batch too many", body: `{"ops":[` + strings.Repeat(`{"op":"stat","path":"a"},`, MaxBatch) + `{"op":"stat","path":"a"}]}`, want: "ops: a batch has at most 1000 ops", is: ErrTooLarge, index: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, batch, err := decodeString(tt.body, tt.max)
			if err == nil {
				t.Fatalf("accepted: %+v (batch %v)", ops, batch)
			}
			if err.Error() != tt.want {
				t.Errorf("message\n got %s\nwant %s", err, tt.want)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %v", err, tt.is)
			}
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %T is not a *RequestError", err)
			}
			if re.Index != tt.index {
				t.Errorf("Index %d, want %d", re.Index, tt.index)
			}
			if ops != nil || batch {
				t.Errorf("returned ops %v, batch %v with the error", ops, batch)
			}
		})
	}
}

// TestDecodeRequestExactLimit: a body of exactly maxBytes is accepted.
func TestDecodeRequestExactLimit(t *testing.T) {
	// A surrogate pair and an escaped backslash before a u are fine.
	if ops, _, err := decodeString(`{"op":"stat","path":"\ud83d\ude00\\ud800"}`, 0); err != nil || ops[0].Path != "\U0001F600\\ud800" {
		t.Errorf("surrogate pair: %+v %v", ops, err)
	}

	body := `{"op":"stat","path":"abc"}`
	if _, _, err := decodeString(body, int64(len(body))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := decodeString(body, int64(len(body)-1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over: %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestDecodeRequestReadError(t *testing.T) {
	_, _, err := DecodeRequest(failingReader{}, 0)
	var re *RequestError
	if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("got %v, want the read error, not a RequestError", err)
	}
}

func TestEncodeResults(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeResults(&buf, []Result{{Errno: ""}}, false); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "{\"errno\":\"\"}\n" {
		t.Fatalf("single success: %q", got)
	}

	buf.Reset()
	rs := []Result{
		{Errno: "ENOENT"},
		{Data: []byte("hi"), Entries: []Dirent{{"<a&b>", "file", 0}, {"c", "dir", 64}}},
		{Stat: &Attr{Mode: 0o100644, Size: 2, Nlink: 1}},
	}
	if err := EncodeResults(&buf, rs, true); err != nil {
		t.Fatal(err)
	}
	const want = `{"results":[{"errno":"ENOENT"},{"errno":"","data":"aGk=","entries":[{"name":"<a&b>","type":"file"},{"name":"c","type":"dir","off":64}]},` +
		`{"errno":"","stat":{"mode":33188,"size":2,"nlink":1,"uid":0,"gid":0,"atime_ns":0,"mtime_ns":0,"ctime_ns":0,"ino":0}}]}` + "\n"
	if buf.String() != want {
		t.Fatalf("batch:\n got %s\nwant %s", buf.String(), want)
	}
	var back struct{ Results []Result }
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || !reflect.DeepEqual(back.Results, rs) {
		t.Fatalf("decoding back: %+v, %v", back.Results, err)
	}

	buf.Reset()
	if err := EncodeResults(&buf, nil, true); err != nil || buf.String() != "{\"results\":[]}\n" {
		t.Fatalf("empty batch: %q, %v", buf.String(), err)
	}
	if err := EncodeResults(&buf, nil, false); err == nil {
		t.Fatal("single response with no result accepted")
	}
}

// TestKindTables: every kind has JSON fields, and the fields Validate needs
// are among them.
func TestKindTables(t *testing.T) {
	for _, k := range AllKinds() {
		f, ok := kindFields[k]
		if !ok {
			t.Errorf("kind %s has no kindFields entry", k)
		}
		if req := requiredFields(k); req&^f != 0 {
			t.Errorf("kind %s requires %s which it does not take", k, fieldNames(req&^f))
		}
	}
	if len(kindFields) != len(AllKinds()) {
		t.Errorf("kindFields has %d kinds, AllKinds() %d", len(kindFields), len(AllKinds()))
	}
}

func ExampleDecodeRequest() {
	body := `{"ops": [
		{"op": "mkdir", "path": "docs"},
		{"op": "write_file", "path": "docs/./hello.txt", "data": "aGVsbG8K"},
		{"op": "chown", "path": "docs", "uid": 1000, "gid": -1}
	]}`
	ops, batch, err := DecodeRequest(strings.NewReader(body), 1<<20)
	fmt.Println(batch, err)
	for _, op := range ops {
		fmt.Printf("%s %s mode=%#o data=%q uid=%d gid=%d\n", op.Kind, op.Path, op.Mode, op.Data, op.UID, op.GID)
	}

	_, _, err = DecodeRequest(strings.NewReader(`{"op": "stat", "path": "../etc"}`), 1<<20)
	fmt.Println(err)
	// Output:
	// true <nil>
	// mkdir docs mode=0755 data="" uid=0 gid=0
	// write_file docs/hello.txt mode=0 data="hello\n" uid=0 gid=0
	// chown docs mode=0 data="" uid=1000 gid=-1
	// path: path escapes the mount: "../etc"
}

func BenchmarkJSONRoundTrip4K(b *testing.B) {
	op := Op{Kind: Pwrite, Handle: 3, Offset: 8192, Data: make([]byte, 4096)}
	ops := []Op{op}
	b.Run("api", func(b *testing.B) {
		// EncodeRequest + DecodeRequest: what a client and a bridge pay.
		var buf bytes.Buffer
		if err := EncodeRequest(&buf, ops, false); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(buf.Len()))
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := EncodeRequest(&buf, ops, false); err != nil {
				b.Fatal(err)
			}
			if _, _, err := DecodeRequest(&buf, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		// json.Marshal + json.Unmarshal of the Op, for reference.
		enc, _ := json.Marshal(op)
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			enc, err := json.Marshal(op)
			if err != nil {
				b.Fatal(err)
			}
			var back Op
			if err := json.Unmarshal(enc, &back); err != nil {
				b.Fatal(err)
			}
		}
	})
}
