package fusemount

import (
	"errors"
	"syscall"
)

// Errno is the one translation from a store error to the errno the kernel
// sees, shared by both adapters so that errno drift can never show up as a
// false divergence: the store reports filesystem errors as syscall.Errno
// (possibly wrapped); anything else (a closed store, a failed log write),
// and an Errno of 0 that claims no error, is EIO. nil is 0.
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
