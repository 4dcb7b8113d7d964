package primary

import "github.com/lighthouse-fs/lighthouse/fusemount"

// fuseErr is the adapter's error translation, what a bazil method returns
// for a store error: nil, or fusemount.Errno's errno as a bare
// syscall.Errno (bazil's fuse.ToErrno sends a bare syscall.Errno as is and
// anything else, a wrapped one included, as EIO).
func fuseErr(err error) error {
	if err == nil {
		return nil
	}
	return fusemount.Errno(err)
}
