package fsop

import "golang.org/x/sys/unix"

// Open flags as open(2) accepts them (the kernel's VALID_OPEN_FLAGS).
const (
	validOpenFlags = unix.O_RDONLY | unix.O_WRONLY | unix.O_RDWR | unix.O_CREAT |
		unix.O_EXCL | unix.O_NOCTTY | unix.O_TRUNC | unix.O_APPEND | unix.O_NONBLOCK |
		unix.O_DSYNC | unix.O_SYNC | unix.O_ASYNC | unix.O_DIRECT | unix.O_LARGEFILE |
		unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_NOATIME | unix.O_CLOEXEC |
		unix.O_PATH | unix.O_TMPFILE
	pathOpenFlags = unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_PATH | unix.O_CLOEXEC
	oTmpfileOnly  = unix.O_TMPFILE &^ unix.O_DIRECTORY // __O_TMPFILE
)

// OpenHow returns the flags and mode open(2) would really use for an open
// op's flags and mode, as the kernel's build_open_how normalizes them:
// unknown bits are dropped, O_PATH keeps only the flags it allows, and the
// mode counts only when the open can create. Every executor applies it, so
// a lenient open(2) and a strict openat2(2) agree.
func OpenHow(flags int, mode uint32) (int, uint32) {
	f := int(uint32(flags)) & validOpenFlags
	if f&unix.O_PATH != 0 {
		f &= pathOpenFlags
	}
	if f&(unix.O_CREAT|oTmpfileOnly) == 0 {
		mode = 0
	}
	return f, mode & 0o7777
}
