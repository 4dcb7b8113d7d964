package sysexec

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// resolveFlags confine every lookup to the tree under the root fd: no
// absolute symlinks, no ".." above the root, no /proc magic links.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

// maxAgain bounds how often an openat2 that failed with EAGAIN is retried.
// With RESOLVE_BENEATH the kernel reports EAGAIN when a rename or mount raced
// with a ".." step and it could not prove the walk stayed beneath the root.
const maxAgain = 16

// escapeError is the refusal for a path or symlink that leaves the root.
func escapeError(p string) error {
	return fmt.Errorf("sysexec: %w: %q", fsop.ErrPathEscapes, p)
}

// cleanPath re-checks an (already validated) op path. It is cheap, and it
// keeps the confinement independent of the caller having run Validate: a
// base name handed to an *at syscall is then never "..", never contains a
// slash, and is "." only for the root itself.
func cleanPath(p string) (string, error) {
	c, err := fsop.CleanPath(p)
	if err != nil {
		return "", fmt.Errorf("sysexec: %w", err)
	}
	return c, nil
}

// outcome turns an error from an op into Exec's return values: a
// syscall.Errno is a filesystem answer and goes into Result.Errno; anything
// else (a path escape, a bad value) is a refused request.
func outcome(err error) (fsop.Result, error) {
	if err == nil {
		return fsop.Result{}, nil
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return fsop.ErrnoResult(en), nil
	}
	return fsop.Result{}, err
}

// pathPiece is the longest path one openat2 takes: PATH_MAX less its NUL.
const pathPiece = unix.PathMax - 1

// openat2 opens p (clean, relative) beneath the root. flags get O_CLOEXEC
// added. EXDEV (the walk would leave the root) becomes an escape error; every
// other failure is returned as the syscall.Errno.
//
// An op's path may be longer than PATH_MAX (up to fsop.MaxPathLen): a
// program that walks down with *at calls, as tar and cd do, goes deeper than
// any path from the root the kernel takes, and the front hands the bridge
// that path. It is walked in pieces of at most PATH_MAX-1 bytes cut at a
// slash, each piece's directory opened O_PATH beneath the previous one, so
// every lookup stays beneath the root. One difference from a single walk: a
// relative symlink in a later piece may not climb above that piece's
// directory (EXDEV, an escape), and MAXSYMLINKS counts per piece.
func (e *Executor) openat2(p string, flags, mode uint64) (int, error) {
	dir, own := e.root, false
	for len(p) > pathPiece {
		cut := strings.LastIndexByte(p[:pathPiece+1], '/')
		if cut <= 0 {
			// A name longer than a piece: the kernel's answer for it.
			cut = pathPiece
		}
		fd, err := e.openat2At(dir, p[:cut], unix.O_PATH|unix.O_DIRECTORY, 0)
		if own {
			unix.Close(dir)
		}
		if err != nil {
			return -1, err
		}
		dir, own, p = fd, true, strings.TrimLeft(p[cut:], "/")
	}
	fd, err := e.openat2At(dir, p, flags, mode)
	if own {
		unix.Close(dir)
	}
	return fd, err
}

// openat2At is one openat2 of p (shorter than PATH_MAX) beneath dir.
func (e *Executor) openat2At(dir int, p string, flags, mode uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Mode: mode, Resolve: resolveFlags}
	again := 0
	for {
		fd, err := unix.Openat2(dir, p, &how)
		switch err {
		case nil:
			return fd, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if again++; again < maxAgain {
				continue
			}
		case unix.EXDEV:
			return -1, escapeError(p)
		}
		return -1, err
	}
}

// openPath returns an O_PATH fd for the file p names, following a final
// symlink (beneath the root). The caller closes it.
func (e *Executor) openPath(p string) (int, error) {
	p, err := cleanPath(p)
	if err != nil {
		return -1, err
	}
	return e.openat2(p, unix.O_PATH, 0)
}

// openFile opens p with real open flags (O_CLOEXEC added), following a final
// symlink beneath the root. The caller closes it.
func (e *Executor) openFile(p string, flags int, mode uint32) (int, error) {
	p, err := cleanPath(p)
	if err != nil {
		return -1, err
	}
	return e.openat2(p, uint64(flags), uint64(mode))
}

// withPath runs fn on "/proc/self/fd/N", N being an O_PATH fd for the file p
// names (final symlink followed, beneath the root). It is for the syscalls
// that refuse an O_PATH fd (chmod, chown, utimensat, truncate, xattrs): the
// kernel follows that magic link to exactly the inode we resolved, so no
// path string is ever re-walked from outside the root.
func (e *Executor) withPath(p string, fn func(proc string) error) error {
	fd, err := e.openPath(p)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return fn(procPath(fd))
}

// procPath names fd through /proc/self/fd.
func procPath(fd int) string {
	return "/proc/self/fd/" + strconv.Itoa(fd)
}

// parent is a directory fd for the *at syscalls of the no-follow ops.
type parent struct {
	fd  int
	own bool // false for the root fd, which must stay open
}

func (d parent) close() {
	if d.own {
		unix.Close(d.fd)
	}
}

// openParent resolves the directory containing p beneath the root (its
// components, the last one included, may be symlinks that stay inside) and
// returns it with p's base name. The base name is never followed by the
// caller: it goes to an *at syscall, with AT_SYMLINK_NOFOLLOW where that
// applies. For the root itself ("."), the parent is the root fd and the base
// is ".", so the kernel answers as it would for "." (EEXIST, EINVAL, EBUSY).
func (e *Executor) openParent(p string) (parent, string, error) {
	p, err := cleanPath(p)
	if err != nil {
		return parent{}, "", err
	}
	if p == "." {
		return parent{fd: e.root}, ".", nil
	}
	dir, base := path.Dir(p), path.Base(p)
	if dir == "." {
		return parent{fd: e.root}, base, nil
	}
	fd, err := e.openat2(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return parent{}, "", err
	}
	return parent{fd: fd, own: true}, base, nil
}

// eintr retries fn while it fails with EINTR (as package os does). On a FUSE
// mount a signal (the Go runtime's preemption SIGURG included) can interrupt
// a request the server then abandons.
func eintr(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}

// eintrN is eintr for calls that return a count.
func eintrN(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if err != unix.EINTR {
			return n, err
		}
	}
}
