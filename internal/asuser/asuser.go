// Package asuser runs a function with another user's credentials, in a
// process running as root, without changing the process's own.
//
// Linux keeps credentials per thread; only libc (and Go's syscall.Setuid)
// broadcasts a change to every thread. Do locks its goroutine to a thread
// of its own, changes that thread's groups, gid and uid with the raw
// system calls, runs fn there and lets the goroutine end still locked, so
// the runtime ends the thread and the credentials with it. Everything fn
// does on the filesystem is checked as that user: permissions, and FUSE's
// allow_other check, which looks at the real, effective and saved ids.
package asuser

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Cred is a user to act as.
type Cred struct {
	UID, GID uint32
	Groups   []uint32 // supplementary groups; none when empty
}

func (c Cred) String() string {
	if len(c.Groups) == 0 {
		return fmt.Sprintf("uid %d gid %d", c.UID, c.GID)
	}
	return fmt.Sprintf("uid %d gid %d groups %v", c.UID, c.GID, c.Groups)
}

// Do runs fn as c and returns its error, or the error of dropping to c
// (the caller needs CAP_SETUID and CAP_SETGID: run as root).
func Do(c Cred, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine.
		if err := become(c); err != nil {
			done <- fmt.Errorf("act as %v: %w", c, err)
			return
		}
		done <- fn()
	}()
	return <-done
}

// become sets this thread's groups, then gid, then uid: once the uid is
// not 0 the others can no longer change.
func become(c Cred) error {
	var groups unsafe.Pointer
	if len(c.Groups) > 0 {
		groups = unsafe.Pointer(&c.Groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(c.Groups)), uintptr(groups), 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(c.GID), uintptr(c.GID), uintptr(c.GID)); e != 0 {
		return fmt.Errorf("setresgid: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(c.UID), uintptr(c.UID), uintptr(c.UID)); e != 0 {
		return fmt.Errorf("setresuid: %w", e)
	}
	return nil
}
