package conformance

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Step is one syscall of a case outside the wire vocabulary (mknod, mmap,
// locks, ioctls...). Such cases run only on targets that are directories
// (the reference and the mounts), from the process that runs the suite,
// never from the one serving the mount.
type Step struct {
	Call string // the call as an application would write it, shown in the report
	Run  func(e *Env) (string, error)
}

// Env is what a case's steps share: its directory and open descriptors.
type Env struct {
	Dir  string // the case's own, empty directory
	Root string // the target's root (the mount point), for reserved names
	dirf int    // Dir opened O_PATH, so calls can be relative to it
	fds  map[int]int
	hold func() (release func() error, err error) // Target.Hold
}

// at is the absolute path of name in the case's directory.
func (e *Env) at(name string) string { return filepath.Join(e.Dir, name) }

// fd returns descriptor h opened by an earlier step.
func (e *Env) fd(h int) (int, error) {
	fd, ok := e.fds[h]
	if !ok {
		return -1, unix.EBADF
	}
	return fd, nil
}

// procPath names name in the case's directory through /proc/self/fd, a
// path short enough for a Unix socket address wherever the directory is.
func (e *Env) procPath(name string) string {
	return fmt.Sprintf("/proc/self/fd/%d/%s", e.dirf, name)
}

func (e *Env) close() {
	for _, fd := range e.fds {
		_ = unix.Close(fd)
	}
	_ = unix.Close(e.dirf)
}

// runSys runs the steps of c in a new directory under t's root.
func runSys(t Target, c Case) ([]fsop.Result, error) {
	root := t.Root
	dir := filepath.Join(root, strings.ReplaceAll(c.Name, "/", "."))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("prepare case %s: %w", c.Name, err)
	}
	dirf, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("prepare case %s: %w", c.Name, err)
	}
	e := &Env{Dir: dir, Root: root, dirf: dirf, fds: map[int]int{}, hold: t.Hold}
	defer e.close()
	out := make([]fsop.Result, len(c.Sys))
	for i, s := range c.Sys {
		text, err := s.Run(e)
		out[i] = fsop.ErrnoResult(err)
		if err == nil && text != "" {
			out[i].Data = []byte(text)
		}
	}
	return out, nil
}

// Step constructors shared by the families.

func step(call string, run func(e *Env) (string, error)) Step { return Step{Call: call, Run: run} }

// do is a step with nothing to show but success or the errno.
func do(call string, run func(e *Env) error) Step {
	return Step{Call: call, Run: func(e *Env) (string, error) { return "", run(e) }}
}

// openStep opens name as descriptor h.
func openStep(h int, name string, flags int, flagText string) Step {
	return do(fmt.Sprintf("fd%d = open(%q, %s)", h, name, flagText), func(e *Env) error {
		fd, err := unix.Open(e.at(name), flags|unix.O_CLOEXEC, 0o644)
		if err == nil {
			e.fds[h] = fd
		}
		return err
	})
}

func closeStep(h int) Step {
	return do(fmt.Sprintf("close(fd%d)", h), func(e *Env) error {
		fd, err := e.fd(h)
		if err != nil {
			return err
		}
		delete(e.fds, h)
		return unix.Close(fd)
	})
}

// writeStep writes data to name (created if missing, truncated).
func writeStep(name string, data []byte) Step {
	call := fmt.Sprintf("write_file(%q, %d bytes)", name, len(data))
	if len(data) <= 16 {
		call = fmt.Sprintf("write_file(%q, %q)", name, data)
	}
	return do(call, func(e *Env) error { return os.WriteFile(e.at(name), data, 0o644) })
}

// lstatStep shows the type, permission bits and size of name.
func lstatStep(name string) Step {
	return step(fmt.Sprintf("lstat(%q)", name), func(e *Env) (string, error) {
		var st unix.Stat_t
		if err := unix.Lstat(e.at(name), &st); err != nil {
			return "", err
		}
		return describeStat(&st), nil
	})
}

func describeStat(st *unix.Stat_t) string {
	s := fmt.Sprintf("type=%s mode=%04o", fsop.DirentType(st.Mode), st.Mode&0o7777)
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		s += fmt.Sprintf(" size=%d", st.Size)
	}
	if t := st.Mode & unix.S_IFMT; t == unix.S_IFCHR || t == unix.S_IFBLK {
		s += fmt.Sprintf(" rdev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return s
}

// contentStep shows the size and a checksum of name's content.
func contentStep(name string) Step {
	return step(fmt.Sprintf("read_file(%q)", name), func(e *Env) (string, error) {
		b, err := os.ReadFile(e.at(name))
		if err != nil {
			return "", err
		}
		return describeBytes(b), nil
	})
}

// describeBytes is short data verbatim, long data by length and checksum.
func describeBytes(b []byte) string {
	if len(b) <= 16 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%d bytes crc32=%08x", len(b), crc32.ChecksumIEEE(b))
}
