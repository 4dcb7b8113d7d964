package primary

import (
	"errors"
	"syscall"
)

// Errno is the one translation from a store error to the errno the kernel
// sees: store errors are syscall.Errno (possibly wrapped), anything else is
// EIO. nil is 0. shadow.Errno must agree on every input.
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) && e != 0 {
		return e
	}
	return syscall.EIO
}

// fuseErr returns what a bazil method returns for err: nil, or the errno
// (bazil sends a bare syscall.Errno as is and anything else as EIO, so it
// must never see a wrapped one).
func fuseErr(err error) error {
	if err == nil {
		return nil
	}
	return Errno(err)
}
