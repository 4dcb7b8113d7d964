package fsop

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// The encoders of the JSON API: requests as DecodeRequest reads them, and
// result bodies.

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
	allowed |= bCaller
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
		case bCaller:
			b = appendJSONCaller(b, op.Caller)
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

func appendJSONCaller(b []byte, c *Caller) []byte {
	b = append(b, `{"uid":`...)
	b = strconv.AppendUint(b, uint64(c.UID), 10)
	b = append(b, `,"gid":`...)
	b = strconv.AppendUint(b, uint64(c.GID), 10)
	if len(c.Groups) > 0 {
		b = append(b, `,"groups":[`...)
		for i, g := range c.Groups {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(g), 10)
		}
		b = append(b, ']')
	}
	return append(b, '}')
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
