package fsop

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// field is a bit set of the Op fields a Kind needs.
type field uint16

const (
	fPath field = 1 << iota
	fTo
	fTarget
	fHandle
	fName
)

// spec describes one Kind.
type spec struct {
	needs   field
	mutates bool // changes filesystem state (the proxy reads back the touched paths)
}

var specs = map[Kind]spec{
	Mkdir:       {fPath, true},
	Rmdir:       {fPath, true},
	Create:      {fPath, true},
	WriteFile:   {fPath, true},
	Append:      {fPath, true},
	Write:       {fPath, true},
	ReadFile:    {fPath, false},
	Read:        {fPath, false},
	Truncate:    {fPath, true},
	Stat:        {fPath, false},
	Lstat:       {fPath, false},
	Readdir:     {fPath, false},
	Unlink:      {fPath, true},
	Rename:      {fPath | fTo, true},
	Link:        {fPath | fTo, true},
	Symlink:     {fPath | fTarget, true},
	Readlink:    {fPath, false},
	Chmod:       {fPath, true},
	Chown:       {fPath, true},
	Utimens:     {fPath, true},
	Setxattr:    {fPath | fName, true},
	Getxattr:    {fPath | fName, false},
	Listxattr:   {fPath, false},
	Removexattr: {fPath | fName, true},
	Statfs:      {fPath, false},
	Fsync:       {0, false}, // path or handle
	Mknod:       {fPath, true},
	Open:        {fPath | fHandle, true},
	Pread:       {fHandle, false},
	Pwrite:      {fHandle, true},
	Ftruncate:   {fHandle, true},
	Close:       {fHandle, false},
}

// Kinds lists the Kinds workloads and client scripts cover, in a stable
// order (the per-kind metric label values). Mknod is known and the store
// carries it out, but it is not listed: no workload sends it (the built-in
// workload's coverage test holds it to this list). AllKinds lists it.
func Kinds() []Kind {
	return []Kind{Mkdir, Rmdir, Create, WriteFile, Append, Write, ReadFile, Read,
		Truncate, Stat, Lstat, Readdir, Unlink, Rename, Link, Symlink, Readlink,
		Chmod, Chown, Utimens, Setxattr, Getxattr, Listxattr, Removexattr, Statfs,
		Fsync, Open, Pread, Pwrite, Ftruncate, Close}
}

// KindNames lists the wire names of Kinds, in the same order (metric
// label values).
func KindNames() []string {
	kinds := Kinds()
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	return names
}

// AllKinds is Kinds and Mknod: every Kind this package defines.
func AllKinds() []Kind { return append(Kinds(), Mknod) }

// Known reports whether k is a Kind this package defines.
func (k Kind) Known() bool { _, ok := specs[k]; return ok }

// Mutates reports whether ops of kind k may change filesystem state.
func (k Kind) Mutates() bool { return specs[k].mutates }

// HandleBased reports whether op addresses an open handle rather than a path.
func (op *Op) HandleBased() bool {
	return op.Kind == Pread || op.Kind == Pwrite || op.Kind == Ftruncate ||
		op.Kind == Close || (op.Kind == Fsync && op.Handle != 0)
}

// Errors returned by Validate and CleanPath. Each means "bad request", never
// "the filesystem said no".
var (
	ErrUnknownOp   = errors.New("unknown op")
	ErrPathEscapes = errors.New("path escapes the mount")
	ErrBadPath     = errors.New("invalid path")
	ErrMissing     = errors.New("missing field")
	ErrBadValue    = errors.New("invalid value")
)

// MaxPathLen bounds a path on the wire; longer paths are refused as bad
// requests. It is larger than the kernel's PATH_MAX (4096) on purpose: PATH_MAX
// bounds one syscall's path, not a file's depth, and a program that walks
// down with *at calls reaches files whose path from the root is longer; the
// front forwards those with their path from the root, and the executors walk
// it in pieces. 64 KiB is 16 PATH_MAXes (326 levels of 200-byte names).
const MaxPathLen = 64 << 10

// MaxTargetLen is PATH_MAX, which bounds a symlink's target: symlink(2)
// copies at most that many bytes, NUL included, so a target of
// MaxTargetLen bytes or more is ENAMETOOLONG from the executors, as from
// the kernel. Validate refuses a longer one as a bad request.
const MaxTargetLen = 4096

// CleanPath returns p cleaned and relative to the mount root ("." for the
// root itself). It refuses absolute paths, NUL bytes, and paths whose ".."
// components would climb out of the root.
func CleanPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%w: empty", ErrBadPath)
	}
	if len(p) > MaxPathLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrBadPath, MaxPathLen)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("%w: contains a NUL byte", ErrBadPath)
	}
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: %q is absolute", ErrPathEscapes, p)
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: %q", ErrPathEscapes, p)
	}
	return c, nil
}

// Validate checks that op is well formed and cleans its paths in place. An
// error means the request is malformed; it says which field is wrong.
func (op *Op) Validate() error {
	s, ok := specs[op.Kind]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownOp, op.Kind)
	}
	needs := s.needs
	if op.Kind == Fsync && op.Handle == 0 {
		needs |= fPath
	}
	if needs&fPath != 0 {
		c, err := CleanPath(op.Path)
		if err != nil {
			return fmt.Errorf("path: %w", err)
		}
		op.Path = c
	}
	if needs&fTo != 0 {
		c, err := CleanPath(op.To)
		if err != nil {
			return fmt.Errorf("to: %w", err)
		}
		op.To = c
	}
	if needs&fTarget != 0 {
		// A symlink target is stored verbatim, like symlink(2); following it
		// is what the executors police.
		if op.Target == "" || len(op.Target) > MaxTargetLen || strings.IndexByte(op.Target, 0) >= 0 {
			return fmt.Errorf("target: %w", ErrBadPath)
		}
	}
	if needs&fHandle != 0 && op.Handle == 0 {
		return fmt.Errorf("%w: %s needs a non-zero handle", ErrMissing, op.Kind)
	}
	if needs&fName != 0 && op.Name == "" {
		return fmt.Errorf("%w: %s needs an xattr name", ErrMissing, op.Kind)
	}
	if needs&fName != 0 && strings.IndexByte(op.Name, 0) >= 0 {
		return fmt.Errorf("name: %w: an xattr name cannot contain a NUL byte", ErrBadValue)
	}
	if (op.Kind == Chown || op.Kind == Utimens) && op.Flags&^NoFollow != 0 {
		return fmt.Errorf("flags: %w: %s takes only NoFollow (%#x)", ErrBadValue, op.Kind, NoFollow)
	}
	if op.Kind == Mknod && !mknodType(op.Mode) {
		return fmt.Errorf("mode: %w: mknod needs a file type (S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK or S_IFREG) in the mode", ErrBadValue)
	}
	if op.Offset < 0 || op.Length < 0 || op.Size < 0 {
		return fmt.Errorf("%w: offset, length and size must not be negative", ErrBadValue)
	}
	return nil
}

// mknodType reports whether mode's file type is one mknod(2) makes.
func mknodType(mode uint32) bool {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFCHR, unix.S_IFBLK, unix.S_IFREG:
		return true
	}
	return false
}
