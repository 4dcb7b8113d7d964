package fsop

import (
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
)

// StateArg is the argument of a ControlState request (and the query of
// GET /v1/state) for path, asking also for the digest of n bytes of its
// content from off (n 0: none; off < 0: the last n bytes, what an append
// wrote). Paths never hold a NUL byte, which separates the fields.
func StateArg(path string, off, n int64) string {
	if n <= 0 {
		return path
	}
	return path + "\x00" + strconv.FormatInt(off, 10) + "\x00" + strconv.FormatInt(n, 10)
}

// ParseStateArg splits what StateArg joined.
func ParseStateArg(arg string) (path string, off, n int64, err error) {
	path, rest, ok := strings.Cut(arg, "\x00")
	if !ok {
		return path, 0, 0, nil
	}
	o, l, ok := strings.Cut(rest, "\x00")
	if !ok {
		return "", 0, 0, fmt.Errorf("state argument %q: want path, offset and length", arg)
	}
	if off, err = strconv.ParseInt(o, 10, 64); err == nil {
		n, err = strconv.ParseInt(l, 10, 64)
	}
	if err != nil || n < 0 {
		return "", 0, 0, fmt.Errorf("state argument %q: bad offset or length", arg)
	}
	return path, off, n, nil
}

// StateRangeDigest returns the digest of the range a state request asked
// for: the second SHA-256 in the state's Value (the first is the whole
// content's). ok is false when the state has none (not a regular file, or
// no range asked).
func StateRangeDigest(state *Result) (digest []byte, ok bool) {
	if len(state.Value) != 2*sha256.Size {
		return nil, false
	}
	return state.Value[sha256.Size:], true
}
