package fsop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
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
	{"mtime_ns", bMtime}, {"data", bData}, {"rdev", bRdev}, {"caller", bCaller},
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
	kind, err := kindFromMembers(members)
	if err != nil {
		return Op{}, err
	}
	op := Op{Kind: kind}
	have, err := setFields(&op, members)
	if err != nil {
		return Op{}, err
	}
	if err := checkRequired(kind, have); err != nil {
		return Op{}, err
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

// kindFromMembers returns the kind named by the "op" member.
func kindFromMembers(members []member) (Kind, error) {
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
				return "", unknownField(m.key)
			}
		}
		return "", errorf(ErrMissing, `missing field "op" (the op name, e.g. "stat")`)
	}
	k, err := jsonString("op", kindRaw)
	if err != nil {
		return "", err
	}
	kind, ok := kindByName[k]
	if !ok {
		return "", errorf(ErrUnknownOp, "%v %q", ErrUnknownOp, k)
	}
	return kind, nil
}

// setFields sets the fields of op (its Kind set) from the members other
// than "op", refusing a field its kind does not use, and returns the bits
// of the fields set.
func setFields(op *Op, members []member) (uint32, error) {
	allowed := kindFields[op.Kind] | bCaller // any op may be made for a user
	var have uint32
	for _, m := range members {
		if m.key == "op" {
			continue
		}
		bit, ok := fieldBit(m.key)
		if !ok {
			return 0, unknownField(m.key)
		}
		if allowed&bit == 0 {
			return 0, errorf(ErrUnknownField, "field %q is not used by %s (%s takes %s)",
				m.key, op.Kind, op.Kind, fieldNames(allowed&^bCaller))
		}
		if err := setField(op, m.key, bit, m.val); err != nil {
			return 0, err
		}
		have |= bit
	}
	return have, nil
}

// checkRequired says which required fields of kind are missing from have.
func checkRequired(kind Kind, have uint32) error {
	if kind == Fsync {
		switch have & (bPath | bHandle) {
		case bPath | bHandle:
			return errorf(ErrBadValue, `fsync takes either "path" or "handle", not both`)
		case 0:
			return errorf(ErrMissing, `missing field "path" or "handle" (fsync needs one of them)`)
		}
	}
	missing := requiredFields(kind) &^ have
	if missing == 0 {
		return nil
	}
	s := ""
	if more := missing & (missing - 1); more != 0 {
		s = "s"
	}
	note := ""
	if kind == Chown {
		note = "; -1 leaves an id unchanged"
	}
	return errorf(ErrMissing, "missing field%s %s (%s needs %s%s)",
		s, fieldNames(missing), kind, fieldNames(requiredFields(kind)), note)
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
	case bCaller:
		op.Caller, err = jsonCaller(name, raw)
	}
	return err
}

// jsonCaller decodes {"uid": N, "gid": N, "groups": [N, ...]}: uid and gid
// required, groups at most MaxGroups, no other member.
func jsonCaller(name string, raw []byte) (*Caller, error) {
	if jsonType(raw) != "an object" {
		return nil, typeError(name, `an object {"uid": N, "gid": N, "groups": [N, ...]}`, raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var c struct {
		UID    *uint32  `json:"uid"`
		GID    *uint32  `json:"gid"`
		Groups []uint32 `json:"groups"`
	}
	if err := dec.Decode(&c); err != nil {
		return nil, errorf(ErrBadValue, "%s: %v (want uid and gid from 0 to 4294967295, groups a list of them)", name, err)
	}
	if c.UID == nil || c.GID == nil {
		return nil, errorf(ErrMissing, "%s: needs both \"uid\" and \"gid\"", name)
	}
	if len(c.Groups) > MaxGroups {
		return nil, errorf(ErrBadValue, "%s: %d groups, more than %d", name, len(c.Groups), MaxGroups)
	}
	return &Caller{UID: *c.UID, GID: *c.GID, Groups: c.Groups}, nil
}
