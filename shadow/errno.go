package shadow

import (
	"errors"
	"syscall"
)

// Errno is the adapter's one error translation: the store reports
// filesystem errors as syscall.Errno (possibly wrapped), and anything else
// (a closed store, a failed log write) is an I/O error to the caller.
// primary.Errno must agree with it, value for value.
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && errno != 0 {
		return errno
	}
	return syscall.EIO
}
