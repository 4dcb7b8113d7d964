package fsop

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// Strict decoders of one JSON field value each: the wrong type or a value
// out of range is an ErrBadValue that names the field and says what it
// wants.

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
