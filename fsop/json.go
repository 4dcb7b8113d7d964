package fsop

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The public API (POST /v1/ops, docs/protocol.md) speaks JSON: one op object,
// or {"ops": [...]} for a batch. DecodeRequest is strict on purpose: a typo
// in a field name, a field the op does not use, a number where a string
// belongs, or a path that leaves the mount is a 400 that names the field,
// never a silently different operation.

// MaxBatch is the largest number of ops in one batch request.
const MaxBatch = 1000

// DefaultMaxRequest is the body bound DecodeRequest uses when given
// maxBytes <= 0.
const DefaultMaxRequest = 32 << 20

// Errors of the JSON API, beside the sentinels of Validate. Every error
// DecodeRequest returns wraps one of them, except read errors of the body.
var (
	// ErrBadJSON: the body is not JSON, has trailing data, or is not an
	// object.
	ErrBadJSON = errors.New("invalid JSON")
	// ErrUnknownField: a field name that no op has, or that this op does
	// not use.
	ErrUnknownField = errors.New("unknown field")
)

// RequestError is the error DecodeRequest returns for a malformed request
// (the bridge answers it with HTTP 400, or 413 when it wraps ErrTooLarge).
type RequestError struct {
	// Index is the position of the offending op in a batch, or -1 when the
	// error is not about one op of a batch.
	Index int
	Err   error
}

func (e *RequestError) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("op %d: %v", e.Index, e.Err)
	}
	return e.Err.Error()
}

func (e *RequestError) Unwrap() error { return e.Err }

// fieldError is an error with an exact message that wraps a sentinel.
type fieldError struct {
	msg string
	err error
}

func (e *fieldError) Error() string { return e.msg }
func (e *fieldError) Unwrap() error { return e.err }

func errorf(sentinel error, format string, args ...any) error {
	return &fieldError{msg: fmt.Sprintf(format, args...), err: sentinel}
}

// jsonFields are the op fields by JSON name, in the order error messages and
// EncodeRequest list them. The bits are the binary codec's.
var jsonFields = [...]struct {
	name string
	bit  uint32
}{
	{"path", bPath}, {"to", bTo}, {"target", bTarget}, {"name", bName},
	{"value", bValue}, {"handle", bHandle}, {"flags", bFlags}, {"mode", bMode},
	{"exclusive", bExclusive}, {"offset", bOffset}, {"length", bLength},
	{"size", bSize}, {"uid", bUID}, {"gid", bGID}, {"atime_ns", bAtime},
	{"mtime_ns", bMtime}, {"data", bData}, {"rdev", bRdev},
}

// kindFields are the fields each kind uses: any other field is refused.
var kindFields = map[Kind]uint32{
	Mkdir:       bPath | bMode,
	Rmdir:       bPath,
	Create:      bPath | bMode | bExclusive,
	WriteFile:   bPath | bData,
	Append:      bPath | bData,
	Write:       bPath | bOffset | bData,
	ReadFile:    bPath,
	Read:        bPath | bOffset | bLength,
	Truncate:    bPath | bSize,
	Stat:        bPath,
	Lstat:       bPath,
	Readdir:     bPath,
	Unlink:      bPath,
	Rename:      bPath | bTo | bFlags,
	Link:        bPath | bTo,
	Symlink:     bPath | bTarget,
	Readlink:    bPath,
	Chmod:       bPath | bMode,
	Chown:       bPath | bUID | bGID | bFlags,
	Utimens:     bPath | bAtime | bMtime | bFlags,
	Setxattr:    bPath | bName | bValue | bFlags,
	Getxattr:    bPath | bName | bLength,
	Listxattr:   bPath | bLength,
	Removexattr: bPath | bName,
	Statfs:      bPath,
	Fsync:       bPath | bHandle, // exactly one of them
	Mknod:       bPath | bMode | bRdev,
	Open:        bPath | bHandle | bFlags | bMode,
	Pread:       bHandle | bOffset | bLength,
	Pwrite:      bHandle | bOffset | bData,
	Ftruncate:   bHandle | bSize,
	Close:       bHandle,
}

// requiredFields are the fields a kind must carry explicitly: those Validate
// needs, plus values whose zero would be a silent and surprising request
// (chown to root, utimens to 1970, chmod to 000).
func requiredFields(k Kind) uint32 {
	var m uint32
	needs := specs[k].needs
	for _, f := range [...]struct {
		need field
		bit  uint32
	}{{fPath, bPath}, {fTo, bTo}, {fTarget, bTarget}, {fHandle, bHandle}, {fName, bName}} {
		if needs&f.need != 0 {
			m |= f.bit
		}
	}
	switch k {
	case Chown:
		m |= bUID | bGID
	case Utimens:
		m |= bAtime | bMtime
	case Chmod, Mknod:
		m |= bMode
	}
	return m
}

// fieldNames lists the JSON names of the fields in mask, quoted.
func fieldNames(mask uint32) string {
	var names []string
	for _, f := range jsonFields {
		if mask&f.bit != 0 {
			names = append(names, strconv.Quote(f.name))
		}
	}
	return strings.Join(names, ", ")
}

// DecodeRequest reads a request body of at most maxBytes (maxBytes <= 0:
// DefaultMaxRequest) and decodes it: one op object, or {"ops": [...]} with
// at most MaxBatch ops (batch is then true). Every op is validated (Validate:
// paths cleaned in place) and has its defaults applied (mkdir mode 0o755,
// create mode 0o644 when absent).
//
// A malformed request gives a *RequestError whose message names the op (in
// a batch) and the field: `op 3: unknown op "mkdri"`, `path: path escapes
// the mount: "../x"`. A body over maxBytes gives a *RequestError wrapping
// ErrTooLarge. Only a failure to read r gives another error. Pass the raw
// body: DecodeRequest enforces maxBytes itself (an http.MaxBytesReader with
// the same bound in front would turn a too-large body into a read error).
func DecodeRequest(r io.Reader, maxBytes int64) ([]Op, bool, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRequest
	}
	limit := maxBytes
	if limit < math.MaxInt64 {
		limit++ // one byte more than allowed proves the body too large
	}
	body, err := io.ReadAll(io.LimitReader(r, limit))
	if int64(len(body)) > maxBytes {
		return nil, false, &RequestError{Index: -1, Err: errorf(ErrTooLarge, "request body is larger than %d bytes", maxBytes)}
	}
	if err != nil {
		return nil, false, fmt.Errorf("read request body: %w", err)
	}
	ops, batch, err := parseRequest(body)
	if err != nil {
		if _, ok := err.(*RequestError); !ok {
			err = &RequestError{Index: -1, Err: err}
		}
		return nil, false, err
	}
	return ops, batch, nil
}

func parseRequest(body []byte) ([]Op, bool, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, false, errorf(ErrBadJSON, `empty request body: want one op object, or {"ops": [...]}`)
	}
	members, err := parseObject(body, "request body")
	if err != nil {
		return nil, false, err
	}
	for _, m := range members {
		if m.key != "ops" {
			continue
		}
		if len(members) > 1 {
			other := members[0].key
			if other == "ops" {
				other = members[1].key
			}
			return nil, false, errorf(ErrUnknownField, `a batch has only the "ops" field, found %q too`, other)
		}
		ops, err := parseBatch(m.val)
		return ops, true, err
	}
	op, err := opFromMembers(members)
	if err != nil {
		return nil, false, err
	}
	return []Op{op}, false, nil
}

// parseBatch decodes the value of "ops": an array of op objects.
func parseBatch(raw json.RawMessage) ([]Op, error) {
	if t := jsonType(raw); t != "an array" {
		return nil, errorf(ErrBadValue, `ops: want an array of op objects, got %s`, t)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '['
		return nil, syntaxError(err)
	}
	ops := []Op{}
	for dec.More() {
		if len(ops) == MaxBatch {
			return nil, errorf(ErrTooLarge, "ops: a batch has at most %d ops", MaxBatch)
		}
		var el json.RawMessage
		if err := dec.Decode(&el); err != nil {
			return nil, syntaxError(err)
		}
		i := len(ops)
		members, err := parseObject(el, "an op")
		if err != nil {
			return nil, &RequestError{Index: i, Err: err}
		}
		op, err := opFromMembers(members)
		if err != nil {
			return nil, &RequestError{Index: i, Err: err}
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// member is one "key": value of a JSON object, in document order.
type member struct {
	key string
	val json.RawMessage
}

// parseObject splits a JSON object into its members, refusing anything but
// one object (what names the value in messages), duplicate keys, and
// trailing data.
func parseObject(raw []byte, what string) ([]member, error) {
	if t := jsonType(raw); t != "an object" {
		hint := ""
		if t == "an array" && what == "request body" {
			hint = ` (a batch is {"ops": [...]})`
		}
		return nil, errorf(ErrBadJSON, "%s must be a JSON object, got %s%s", what, t, hint)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, syntaxError(err)
	}
	var members []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		key, _ := tok.(string) // the decoder only yields string keys here
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, syntaxError(err)
		}
		for _, m := range members {
			if m.key == key {
				return nil, errorf(ErrBadJSON, "duplicate field %q", key)
			}
		}
		members = append(members, member{key, val})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, syntaxError(err)
	}
	if rest := bytes.TrimSpace(raw[dec.InputOffset():]); len(rest) > 0 {
		return nil, errorf(ErrBadJSON, "trailing data after the JSON value at byte %d", dec.InputOffset())
	}
	return members, nil
}

// syntaxError rewords a decoder error for a client.
func syntaxError(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return errorf(ErrBadJSON, "invalid JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errorf(ErrBadJSON, "invalid JSON: the body ends in the middle of a value")
	}
	return errorf(ErrBadJSON, "invalid JSON: %v", err)
}

// jsonType names the type of a JSON value for messages.
func jsonType(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// opFromMembers builds, checks and validates one op from its members.
func opFromMembers(members []member) (Op, error) {
	var op Op
	var kindRaw json.RawMessage
	for _, m := range members {
		if m.key == "op" {
			kindRaw = m.val
		}
	}
	if kindRaw == nil {
		// Report an unknown field first: {"Op": "stat"} is a typo, not a
		// missing op.
		for _, m := range members {
			if _, ok := fieldBit(m.key); !ok {
				return Op{}, unknownField(m.key)
			}
		}
		return Op{}, errorf(ErrMissing, `missing field "op" (the op name, e.g. "stat")`)
	}
	k, err := jsonString("op", kindRaw)
	if err != nil {
		return Op{}, err
	}
	kind, ok := kindByName[k]
	if !ok {
		return Op{}, errorf(ErrUnknownOp, "%v %q", ErrUnknownOp, k)
	}
	op.Kind = kind
	allowed := kindFields[op.Kind]

	var have uint32
	for _, m := range members {
		if m.key == "op" {
			continue
		}
		bit, ok := fieldBit(m.key)
		if !ok {
			return Op{}, unknownField(m.key)
		}
		if allowed&bit == 0 {
			return Op{}, errorf(ErrUnknownField, "field %q is not used by %s (%s takes %s)",
				m.key, op.Kind, op.Kind, fieldNames(allowed))
		}
		if err := setField(&op, m.key, bit, m.val); err != nil {
			return Op{}, err
		}
		have |= bit
	}

	if op.Kind == Fsync {
		switch have & (bPath | bHandle) {
		case bPath | bHandle:
			return Op{}, errorf(ErrBadValue, `fsync takes either "path" or "handle", not both`)
		case 0:
			return Op{}, errorf(ErrMissing, `missing field "path" or "handle" (fsync needs one of them)`)
		}
	}
	if missing := requiredFields(op.Kind) &^ have; missing != 0 {
		s := ""
		if more := missing & (missing - 1); more != 0 {
			s = "s"
		}
		note := ""
		if op.Kind == Chown {
			note = "; -1 leaves an id unchanged"
		}
		return Op{}, errorf(ErrMissing, "missing field%s %s (%s needs %s%s)",
			s, fieldNames(missing), op.Kind, fieldNames(requiredFields(op.Kind)), note)
	}
	if have&bMode == 0 {
		switch op.Kind {
		case Mkdir:
			op.Mode = 0o755
		case Create:
			op.Mode = 0o644
		}
	}
	if err := op.Validate(); err != nil {
		return Op{}, err
	}
	return op, nil
}

func fieldBit(name string) (uint32, bool) {
	for _, f := range jsonFields {
		if f.name == name {
			return f.bit, true
		}
	}
	return 0, false
}

func unknownField(name string) error {
	if name == "ops" {
		return errorf(ErrUnknownField, `field "ops" belongs at the top level of a batch body`)
	}
	lower := strings.ToLower(name)
	if _, ok := fieldBit(lower); ok || lower == "op" {
		return errorf(ErrUnknownField, "unknown field %q (field names are lower case: %q)", name, lower)
	}
	return errorf(ErrUnknownField, "unknown field %q", name)
}

// setField decodes the value of one op field.
func setField(op *Op, name string, bit uint32, raw json.RawMessage) error {
	var err error
	switch bit {
	case bPath:
		op.Path, err = jsonString(name, raw)
	case bTo:
		op.To, err = jsonString(name, raw)
	case bTarget:
		op.Target, err = jsonString(name, raw)
	case bName:
		op.Name, err = jsonString(name, raw)
	case bData:
		op.Data, err = jsonBytes(name, raw)
	case bValue:
		op.Value, err = jsonBytes(name, raw)
	case bExclusive:
		op.Exclusive, err = jsonBool(name, raw)
	case bMode:
		var v int64
		v, err = jsonInt(name, raw, 0, math.MaxUint32, "a non-negative integer (decimal: 0o644 is 420)")
		op.Mode = uint32(v)
	case bFlags:
		var v int64
		v, err = jsonInt(name, raw, math.MinInt, math.MaxInt, "an integer")
		op.Flags = int(v)
	case bOffset:
		op.Offset, err = jsonInt(name, raw, 0, math.MaxInt64, "a non-negative integer")
	case bLength:
		op.Length, err = jsonInt(name, raw, 0, math.MaxInt64, "a non-negative integer")
	case bSize:
		op.Size, err = jsonInt(name, raw, 0, math.MaxInt64, "a non-negative integer")
	case bUID:
		op.UID, err = jsonInt(name, raw, -1, math.MaxUint32-1, "-1 (unchanged) or an id from 0 to 4294967294")
	case bGID:
		op.GID, err = jsonInt(name, raw, -1, math.MaxUint32-1, "-1 (unchanged) or an id from 0 to 4294967294")
	case bAtime:
		op.AtimeNs, err = jsonInt(name, raw, math.MinInt64, math.MaxInt64, "an integer (nanoseconds since the epoch)")
	case bMtime:
		op.MtimeNs, err = jsonInt(name, raw, math.MinInt64, math.MaxInt64, "an integer (nanoseconds since the epoch)")
	case bHandle:
		op.Handle, err = jsonHandle(name, raw)
	case bRdev:
		var v int64
		v, err = jsonInt(name, raw, 0, math.MaxInt64, "a non-negative integer (a device number, makedev(3))")
		op.Rdev = uint64(v)
	}
	return err
}

func typeError(name, want string, raw []byte) error {
	return errorf(ErrBadValue, "%s: want %s, got %s", name, want, jsonType(raw))
}

// jsonString decodes a JSON string, refusing invalid UTF-8.
func jsonString(name string, raw []byte) (string, error) {
	if jsonType(raw) != "a string" {
		return "", typeError(name, "a string", raw)
	}
	inner := raw[1 : len(raw)-1]
	if !utf8.Valid(inner) {
		return "", errorf(ErrBadValue, "%s: the string is not valid UTF-8", name)
	}
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), nil
	}
	if i := loneSurrogate(inner); i >= 0 {
		return "", errorf(ErrBadValue, "%s: the escape at byte %d is half of a UTF-16 surrogate pair: the string is not valid UTF-8", name, i)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errorf(ErrBadValue, "%s: %v", name, err)
	}
	return s, nil
}

// loneSurrogate returns the offset in a JSON string's inner bytes of a
// \uD800-\uDFFF escape that is not a high half followed by a low half
// (encoding/json would quietly turn it into U+FFFD), or -1.
func loneSurrogate(inner []byte) int {
	hex := func(i int) int {
		if i+6 > len(inner) || inner[i] != '\\' || inner[i+1] != 'u' {
			return -1
		}
		v, err := strconv.ParseUint(string(inner[i+2:i+6]), 16, 16)
		if err != nil {
			return -1
		}
		return int(v)
	}
	for i := 0; i < len(inner); i++ {
		if inner[i] != '\\' {
			continue
		}
		v := hex(i)
		switch {
		case v >= 0xD800 && v <= 0xDBFF:
			if lo := hex(i + 6); lo < 0xDC00 || lo > 0xDFFF {
				return i
			}
			i += 11 // the pair
		case v >= 0xDC00 && v <= 0xDFFF:
			return i
		default:
			i++ // the escaped character
		}
	}
	return -1
}

// jsonBytes decodes a base64 JSON string (standard alphabet, padded).
func jsonBytes(name string, raw []byte) ([]byte, error) {
	if jsonType(raw) != "a string" {
		return nil, typeError(name, "a base64 string", raw)
	}
	src := raw[1 : len(raw)-1]
	if bytes.IndexByte(src, '\\') >= 0 { // JSON escapes, e.g. "\/"
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errorf(ErrBadValue, "%s: %v", name, err)
		}
		src = []byte(s)
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	n, err := base64.StdEncoding.Decode(out, src)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return nil, errorf(ErrBadValue, "%s: invalid base64 at byte %d (want standard base64 with padding, RFC 4648 section 4)", name, int64(ce))
		}
		return nil, errorf(ErrBadValue, "%s: invalid base64: %v", name, err)
	}
	return out[:n], nil
}

func jsonBool(name string, raw []byte) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, typeError(name, "true or false", raw)
}

// jsonInt decodes a JSON integer in [lo, hi].
func jsonInt(name string, raw []byte, lo, hi int64, want string) (int64, error) {
	if jsonType(raw) != "a number" {
		return 0, typeError(name, want, raw)
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, errorf(ErrBadValue, "%s: want %s, got %s", name, want, raw)
	}
	if err != nil || v < lo || v > hi {
		return 0, errorf(ErrBadValue, "%s: %s is out of range (want %s)", name, raw, want)
	}
	return v, nil
}

func jsonHandle(name string, raw []byte) (uint64, error) {
	const want = "a non-zero integer below 2^64"
	if jsonType(raw) != "a number" {
		return 0, typeError(name, want, raw)
	}
	v, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		if raw[0] == '-' {
			return 0, errorf(ErrBadValue, "%s: %s is out of range (want %s)", name, raw, want)
		}
		return 0, errorf(ErrBadValue, "%s: want %s, got %s", name, want, raw)
	}
	if err != nil || v == 0 {
		return 0, errorf(ErrBadValue, "%s: %s is out of range (want %s; handles are caller-chosen ids)", name, raw, want)
	}
	return v, nil
}

// EncodeRequest writes ops as a request body DecodeRequest accepts: one op
// object (batch false: ops must hold exactly one op) or {"ops": [...]}. Each
// op carries the fields its kind uses: the required ones always (so a chown
// to uid 0 says "uid": 0, which json.Marshal's omitempty would drop), mode
// always for mkdir and create, the others when non-zero (data and value when
// non-nil). An op with a field its kind does not use, an unknown kind, or a
// string that is not UTF-8 is an error, and nothing is written.
func EncodeRequest(w io.Writer, ops []Op, batch bool) error {
	if !batch && len(ops) != 1 {
		return fmt.Errorf("encode request: a single request has one op, not %d", len(ops))
	}
	if len(ops) > MaxBatch {
		return fmt.Errorf("encode request: %d ops: %w (at most %d)", len(ops), ErrTooLarge, MaxBatch)
	}
	var b []byte
	if batch {
		b = append(b, `{"ops":[`...)
	}
	for i := range ops {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendJSONOp(b, &ops[i]); err != nil {
			if batch {
				return fmt.Errorf("encode request: op %d: %w", i, err)
			}
			return fmt.Errorf("encode request: %w", err)
		}
	}
	if batch {
		b = append(b, "]}"...)
	}
	_, err := w.Write(b)
	return err
}

func appendJSONOp(b []byte, op *Op) ([]byte, error) {
	allowed, ok := kindFields[op.Kind]
	if !ok {
		return b, fmt.Errorf("%w %q", ErrUnknownOp, op.Kind)
	}
	set := opMask(op)
	if extra := set &^ allowed; extra != 0 {
		return b, fmt.Errorf("%w: %s set but not used by %s", ErrUnknownField, fieldNames(extra), op.Kind)
	}
	emit := set | requiredFields(op.Kind)
	switch op.Kind {
	case Mkdir, Create:
		emit |= bMode
	case Fsync:
		if op.Handle != 0 {
			if op.Path != "" {
				return b, fmt.Errorf(`%w: fsync takes either a path or a handle, not both`, ErrBadValue)
			}
			emit &^= bPath
		}
	}
	b = append(b, `{"op":`...)
	b = appendJSONString(b, string(op.Kind))
	for _, f := range jsonFields {
		if emit&f.bit == 0 {
			continue
		}
		b = append(b, ',', '"')
		b = append(b, f.name...)
		b = append(b, '"', ':')
		var s string
		switch f.bit {
		case bPath:
			s = op.Path
		case bTo:
			s = op.To
		case bTarget:
			s = op.Target
		case bName:
			s = op.Name
		case bData, bValue:
			v := op.Data
			if f.bit == bValue {
				v = op.Value
			}
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, v)
			b = append(b, '"')
			continue
		case bExclusive:
			b = strconv.AppendBool(b, op.Exclusive)
			continue
		case bHandle:
			b = strconv.AppendUint(b, op.Handle, 10)
			continue
		case bMode:
			b = strconv.AppendUint(b, uint64(op.Mode), 10)
			continue
		default:
			b = strconv.AppendInt(b, jsonIntValue(op, f.bit), 10)
			continue
		}
		if !utf8.ValidString(s) {
			return b, fmt.Errorf("%w: %s is not valid UTF-8 (the JSON API carries UTF-8 only)", ErrBadValue, f.name)
		}
		b = appendJSONString(b, s)
	}
	return append(b, '}'), nil
}

func jsonIntValue(op *Op, bit uint32) int64 {
	switch bit {
	case bFlags:
		return int64(op.Flags)
	case bOffset:
		return op.Offset
	case bLength:
		return op.Length
	case bSize:
		return op.Size
	case bUID:
		return op.UID
	case bGID:
		return op.GID
	case bAtime:
		return op.AtimeNs
	case bMtime:
		return op.MtimeNs
	case bRdev:
		return int64(op.Rdev)
	}
	return 0
}

// appendJSONString appends s (valid UTF-8) as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// EncodeResults writes results as a response body: the one result as an
// object (batch false: results must hold exactly one), or
// {"results": [...]} in op order. Fields follow Result's JSON tags: errno is
// always present ("" on success), other fields only when non-zero/non-empty,
// data and value in base64. Strings that are not valid UTF-8 (file names are
// bytes) are written with U+FFFD in place of the invalid bytes.
func EncodeResults(w io.Writer, results []Result, batch bool) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	var err error
	if batch {
		if results == nil {
			results = []Result{}
		}
		err = enc.Encode(struct {
			Results []Result `json:"results"`
		}{results})
	} else {
		if len(results) != 1 {
			return fmt.Errorf("encode results: a single response has one result, not %d", len(results))
		}
		err = enc.Encode(&results[0])
	}
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}
