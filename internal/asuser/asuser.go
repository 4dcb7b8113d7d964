// Package asuser runs a function with another user's credentials, in a
// process running as root, without changing the process's own.
//
// Do changes every id of a thread made for the call (what a test needs to
// act as another user entirely, FUSE's allow_other check included); DoFS
// changes only the filesystem credentials (fsuid, fsgid, groups) of the
// calling goroutine's thread for the call and restores them, which is all
// the kernel consults for permissions and a new file's owner, at a few
// system calls instead of a thread.
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
	if err := setGroups(c.Groups); err != nil {
		return err
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(c.GID), uintptr(c.GID), uintptr(c.GID)); e != 0 {
		return fmt.Errorf("setresgid: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(c.UID), uintptr(c.UID), uintptr(c.UID)); e != 0 {
		return fmt.Errorf("setresuid: %w", e)
	}
	return nil
}

// DoFS runs fn on the calling goroutine's thread with c's groups, gid and
// uid as the thread's filesystem credentials (setgroups, setfsgid,
// setfsuid), then restores root's. It panics if they cannot be restored:
// a thread left with another user's credentials must not serve another
// call. The caller must be root (fsuid 0, fsgid 0) with CAP_SETUID and
// CAP_SETGID.
func DoFS(c Cred, fn func() error) error {
	runtime.LockOSThread()
	saved, err := groupsOfThread()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("act as %v: %w", c, err)
	}
	if err := setGroups(c.Groups); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("act as %v: %w", c, err)
	}
	// setfsgid and setfsuid return the previous id and never an error;
	// the second call with -1 reads back what the first set.
	unix.RawSyscall(unix.SYS_SETFSGID, uintptr(c.GID), 0, 0)
	unix.RawSyscall(unix.SYS_SETFSUID, uintptr(c.UID), 0, 0)
	defer func() {
		restoreFS(saved)
		runtime.UnlockOSThread()
	}()
	if fsid(unix.SYS_SETFSUID) != c.UID || fsid(unix.SYS_SETFSGID) != c.GID {
		return fmt.Errorf("act as %v: setfsuid/setfsgid refused (not root?)", c)
	}
	return fn()
}

// restoreFS gives the thread back fsuid 0, fsgid 0 and groups, or panics.
func restoreFS(groups []uint32) {
	unix.RawSyscall(unix.SYS_SETFSUID, 0, 0, 0)
	unix.RawSyscall(unix.SYS_SETFSGID, 0, 0, 0)
	err := setGroups(groups)
	if err == nil && (fsid(unix.SYS_SETFSUID) != 0 || fsid(unix.SYS_SETFSGID) != 0) {
		err = fmt.Errorf("fsuid %d fsgid %d", fsid(unix.SYS_SETFSUID), fsid(unix.SYS_SETFSGID))
	}
	if err != nil {
		panic(fmt.Sprintf("asuser: cannot restore root's filesystem credentials on this thread: %v", err))
	}
}

// fsid reads the thread's fsuid or fsgid (call is SYS_SETFSUID or
// SYS_SETFSGID): setting -1 changes nothing and returns the current one.
func fsid(call uintptr) uint32 {
	r, _, _ := unix.RawSyscall(call, ^uintptr(0), 0, 0)
	return uint32(r)
}

// setGroups sets this thread's supplementary groups.
func setGroups(groups []uint32) error {
	var p unsafe.Pointer
	if len(groups) > 0 {
		p = unsafe.Pointer(&groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(p), 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	return nil
}

// groupsOfThread reads this thread's supplementary groups.
func groupsOfThread() ([]uint32, error) {
	n, _, e := unix.RawSyscall(unix.SYS_GETGROUPS, 0, 0, 0)
	if e != 0 {
		return nil, fmt.Errorf("getgroups: %w", e)
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]uint32, n)
	n, _, e = unix.RawSyscall(unix.SYS_GETGROUPS, n, uintptr(unsafe.Pointer(&out[0])), 0)
	if e != 0 {
		return nil, fmt.Errorf("getgroups: %w", e)
	}
	return out[:n], nil
}
