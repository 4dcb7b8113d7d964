package shadow

import (
	"syscall"

	"github.com/lighthouse-fs/lighthouse/fusemount"
)

// Errno is the adapter's error translation: go-fuse sends the syscall.Errno
// a method returns to the kernel as is, so it is fusemount.Errno, the table
// both adapters share.
func Errno(err error) syscall.Errno { return fusemount.Errno(err) }
