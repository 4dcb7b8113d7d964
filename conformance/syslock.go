package conformance

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Families about descriptors rather than data: ioctls, locks, poll,
// statfs's fields, xattr limits and a blocked call hit by a signal.

// Linux ABI numbers x/sys/unix does not name (amd64 and arm64 alike).
const (
	fsNodumpFl      = 0x40       // FS_NODUMP_FL
	fsIocGetversion = 0x80087601 // FS_IOC_GETVERSION: _IOR('v', 1, long)
	fsIocFsgetxattr = 0x801c581f // FS_IOC_FSGETXATTR: _IOR('X', 31, struct fsxattr)
	pollRdnorm      = 0x40
	pollWrnorm      = 0x100
	fsxattrSize     = 28
)

// ioctlCases: the FS_IOC ioctls that tools such as chattr, lsattr and
// xfs_io use.
func ioctlCases() []Case {
	get := func(call string, req uint) Step {
		return fdStep(call, 1, func(fd int) (string, error) {
			v, err := unix.IoctlGetUint32(fd, req)
			return fmt.Sprintf("%#x", v), err
		})
	}
	return []Case{{Name: "ioctl/fs-ioc", Sys: []Step{
		writeStep("f", []byte("x")), openStep(1, "f", unix.O_RDONLY, "O_RDONLY"),
		get("ioctl(fd1, FS_IOC_GETFLAGS)", unix.FS_IOC_GETFLAGS),
		fdStep("ioctl(fd1, FS_IOC_SETFLAGS, FS_NODUMP_FL|flags)", 1, func(fd int) (string, error) {
			v, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
			if err != nil {
				return "", err
			}
			v |= fsNodumpFl
			return "", unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(v))
		}),
		fdStep("ioctl(fd1, FS_IOC_GETVERSION)", 1, func(fd int) (string, error) {
			_, err := unix.IoctlGetUint32(fd, fsIocGetversion)
			return "a generation number", err // its value changes with every file
		}),
		fdStep("ioctl(fd1, FS_IOC_FSGETXATTR)", 1, func(fd int) (string, error) {
			var buf [fsxattrSize]byte // struct fsxattr; fsx_xflags comes first
			if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), fsIocFsgetxattr, uintptr(unsafe.Pointer(&buf[0]))); e != 0 {
				return "", e
			}
			return fmt.Sprintf("xflags=%#x", uint32(buf[0])|uint32(buf[1])<<8|uint32(buf[2])<<16|uint32(buf[3])<<24), nil
		}),
		fdStep("ioctl(fd1, FIONREAD)", 1, func(fd int) (string, error) {
			n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
			return fmt.Sprint(n), err
		}),
		closeStep(1)}}}
}

// lockCases: flock, POSIX and open-file-description locks between two
// descriptors of one process.
func lockCases() []Case {
	flock := func(h, how int, text string) Step {
		return fdStep(fmt.Sprintf("flock(fd%d, %s)", h, text), h, func(fd int) (string, error) { return "", unix.Flock(fd, how) })
	}
	fcntl := func(h, cmd int, typ int16, text string) Step {
		return fdStep(fmt.Sprintf("fcntl(fd%d, %s, {bytes 0-9})", h, text), h, func(fd int) (string, error) {
			lk := unix.Flock_t{Type: typ, Whence: 0, Start: 0, Len: 10}
			err := unix.FcntlFlock(uintptr(fd), cmd, &lk)
			if err != nil || (cmd != unix.F_GETLK && cmd != unix.F_OFD_GETLK) {
				return "", err
			}
			return describeLock(lk), nil
		})
	}
	open2 := []Step{writeStep("f", []byte("0123456789")),
		openStep(1, "f", unix.O_RDWR, "O_RDWR"), openStep(2, "f", unix.O_RDWR, "O_RDWR")}
	return []Case{
		{Name: "lock/flock", Sys: append(open2[:3:3], flock(1, unix.LOCK_EX, "LOCK_EX"), flock(2, unix.LOCK_EX|unix.LOCK_NB, "LOCK_EX|LOCK_NB"),
			flock(1, unix.LOCK_UN, "LOCK_UN"), flock(2, unix.LOCK_SH|unix.LOCK_NB, "LOCK_SH|LOCK_NB"), closeStep(1), closeStep(2))},
		{Name: "lock/posix", Sys: append(open2[:3:3], fcntl(1, unix.F_SETLK, unix.F_WRLCK, "F_SETLK F_WRLCK"),
			fcntl(2, unix.F_GETLK, unix.F_WRLCK, "F_GETLK F_WRLCK"), fcntl(2, unix.F_SETLK, unix.F_RDLCK, "F_SETLK F_RDLCK"), closeStep(1), closeStep(2))},
		{Name: "lock/ofd", Sys: append(open2[:3:3], fcntl(1, unix.F_OFD_SETLK, unix.F_WRLCK, "F_OFD_SETLK F_WRLCK"),
			fcntl(2, unix.F_OFD_SETLK, unix.F_WRLCK, "F_OFD_SETLK F_WRLCK"), fcntl(2, unix.F_OFD_GETLK, unix.F_WRLCK, "F_OFD_GETLK F_WRLCK"),
			fcntl(1, unix.F_OFD_SETLK, unix.F_UNLCK, "F_OFD_SETLK F_UNLCK"), fcntl(2, unix.F_OFD_SETLK, unix.F_WRLCK, "F_OFD_SETLK F_WRLCK"),
			closeStep(1), closeStep(2))},
		{Name: "lock/ofd-wait-interrupted", Sys: append(open2[:3:3], fcntl(1, unix.F_OFD_SETLK, unix.F_WRLCK, "F_OFD_SETLK F_WRLCK"),
			interruptedLockWait(), closeStep(1), closeStep(2))},
	}
}

func describeLock(lk unix.Flock_t) string {
	typ := map[int16]string{unix.F_RDLCK: "F_RDLCK", unix.F_WRLCK: "F_WRLCK", unix.F_UNLCK: "F_UNLCK"}[lk.Type]
	if lk.Type == unix.F_UNLCK {
		return typ
	}
	holder := "another process"
	switch lk.Pid {
	case -1:
		holder = "an open file description (pid -1)"
	case int32(os.Getpid()):
		holder = "this process"
	}
	return fmt.Sprintf("%s %d-%d held by %s", typ, lk.Start, lk.Start+lk.Len-1, holder)
}

// interruptedLockWait blocks in F_OFD_SETLKW on fd2 behind fd1's lock,
// sends that thread a signal (Go's handlers set SA_RESTART), then frees
// the lock: the call either comes back with EINTR or was restarted and
// now succeeds.
func interruptedLockWait() Step {
	return step("fcntl(fd2, F_OFD_SETLKW F_WRLCK) + SIGUSR1 while blocked; then fd1 unlocks", func(e *Env) (string, error) {
		fd1, err := e.fd(1)
		if err != nil {
			return "", err
		}
		fd2, err := e.fd(2)
		if err != nil {
			return "", err
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, unix.SIGUSR1)
		defer signal.Stop(sig)
		tid := make(chan int, 1)
		res := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tid <- unix.Gettid()
			lk := unix.Flock_t{Type: unix.F_WRLCK, Len: 10}
			res <- unix.FcntlFlock(uintptr(fd2), unix.F_OFD_SETLKW, &lk)
		}()
		t := <-tid
		if !waitInSyscall(t, unix.SYS_FCNTL, 5*time.Second) {
			return "", fmt.Errorf("the waiting thread never blocked in fcntl")
		}
		if err := unix.Tgkill(os.Getpid(), t, unix.SIGUSR1); err != nil {
			return "", err
		}
		<-sig
		select {
		case err := <-res:
			return "returned at the signal", err
		case <-time.After(50 * time.Millisecond):
		}
		unlock := unix.Flock_t{Type: unix.F_UNLCK, Len: 10}
		if err := unix.FcntlFlock(uintptr(fd1), unix.F_OFD_SETLK, &unlock); err != nil {
			return "", err
		}
		select {
		case err := <-res:
			return "restarted, got the lock when fd1 let go", err
		case <-time.After(5 * time.Second):
			return "", fmt.Errorf("still blocked after fd1 unlocked")
		}
	})
}

// waitInSyscall waits until thread tid is blocked in syscall nr.
func waitInSyscall(tid int, nr int, d time.Duration) bool {
	path := fmt.Sprintf("/proc/self/task/%d/syscall", tid)
	return waitFor(d, func() bool {
		b, err := os.ReadFile(path)
		return err == nil && strings.HasPrefix(string(b), fmt.Sprint(nr)+" ")
	})
}

// pollCases: poll on a regular file and on a directory.
func pollCases() []Case {
	poll := func(h int) Step {
		return fdStep(fmt.Sprintf("poll({fd%d, POLLIN|POLLOUT}, 0)", h), h, func(fd int) (string, error) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLOUT}}
			n, err := unix.Poll(fds, 0)
			return fmt.Sprintf("n=%d revents=%s", n, describePoll(fds[0].Revents)), err
		})
	}
	return []Case{{Name: "poll/file-and-dir", Sys: []Step{writeStep("f", []byte("x")),
		openStep(1, "f", unix.O_RDWR, "O_RDWR"), openStep(2, ".", unix.O_RDONLY|unix.O_DIRECTORY, "O_RDONLY|O_DIRECTORY"),
		poll(1), poll(2), closeStep(1), closeStep(2)}}}
}

func describePoll(ev int16) string {
	var parts []string
	for _, f := range []struct {
		bit  int16
		name string
	}{{unix.POLLIN, "POLLIN"}, {unix.POLLOUT, "POLLOUT"}, {pollRdnorm, "POLLRDNORM"}, {pollWrnorm, "POLLWRNORM"}, {unix.POLLERR, "POLLERR"}, {unix.POLLHUP, "POLLHUP"}, {unix.POLLNVAL, "POLLNVAL"}} {
		if ev&f.bit != 0 {
			parts = append(parts, f.name)
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}

// statfsFieldCases: the statfs fields an application reads, one per row.
func statfsFieldCases() []Case {
	field := func(name string, show func(*unix.Statfs_t) string) Step {
		return step(fmt.Sprintf("statfs(\".\").%s", name), func(e *Env) (string, error) {
			var st unix.Statfs_t
			if err := unix.Statfs(e.Dir, &st); err != nil {
				return "", err
			}
			return show(&st), nil
		})
	}
	return []Case{{Name: "statfs/fields", Sys: []Step{
		field("f_type", func(s *unix.Statfs_t) string { return fmt.Sprintf("%#x", s.Type) }),
		field("f_bsize", func(s *unix.Statfs_t) string { return fmt.Sprint(s.Bsize) }),
		field("f_frsize", func(s *unix.Statfs_t) string { return fmt.Sprint(s.Frsize) }),
		field("f_namelen", func(s *unix.Statfs_t) string { return fmt.Sprint(s.Namelen) }),
		field("f_flags", func(s *unix.Statfs_t) string { return describeMountFlags(s.Flags) }),
	}}}
}

func describeMountFlags(f int64) string {
	var parts []string
	for _, m := range []struct {
		bit  int64
		name string
	}{{unix.ST_RDONLY, "ST_RDONLY"}, {unix.ST_NOSUID, "ST_NOSUID"}, {unix.ST_NODEV, "ST_NODEV"}, {unix.ST_NOEXEC, "ST_NOEXEC"}, {unix.ST_RELATIME, "ST_RELATIME"}, {unix.ST_NOATIME, "ST_NOATIME"}} {
		if f&m.bit != 0 {
			parts = append(parts, m.name)
		}
	}
	return strings.Join(parts, "|")
}

// xattrLimitCases: names and values at and past the kernel's limits (255
// bytes, 64 KiB). They are wire ops, so they run on the store too.
func xattrLimitCases() []Case {
	name := func(n int) string { return "user." + strings.Repeat("x", n-len("user.")) }
	val := func(n int) string { return string(pattern(n)) }
	return []Case{
		{Name: "xattrlim/name-255", Ops: []fsop.Op{create("f"), setxattr("f", name(255), "v", 0), getxattr("f", name(255), 0)}},
		{Name: "xattrlim/name-256", Ops: []fsop.Op{create("f"), setxattr("f", name(256), "v", 0), getxattr("f", name(256), 0)}},
		{Name: "xattrlim/value-4000", Ops: []fsop.Op{create("f"), setxattr("f", "user.v", val(4000), 0), getxattr("f", "user.v", 0)}},
		{Name: "xattrlim/value-64k", Ops: []fsop.Op{create("f"), setxattr("f", "user.v", val(65536), 0), getxattr("f", "user.v", 0)}},
		{Name: "xattrlim/value-64k-plus-1", Ops: []fsop.Op{create("f"), setxattr("f", "user.v", val(65537), 0)}},
	}
}
