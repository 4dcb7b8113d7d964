package adaptertest

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/lighthouse-fs/lighthouse/store"
)

// errnoTable runs the one errno table on translate: an adapter's translation of
// a store error, as the errno its library sends to the kernel (0 for
// success). Both adapters run it, so their translations cannot drift apart.
func errnoTable(t *testing.T, translate func(error) syscall.Errno) {
	for _, tc := range []struct {
		name string
		err  error
		want syscall.Errno
	}{
		{"nil", nil, 0},
		{"enoent", syscall.ENOENT, syscall.ENOENT},
		{"enotempty", syscall.ENOTEMPTY, syscall.ENOTEMPTY},
		{"enodata", syscall.ENODATA, syscall.ENODATA},
		{"erange", syscall.ERANGE, syscall.ERANGE},
		{"exdev", syscall.EXDEV, syscall.EXDEV},
		{"wrapped", fmt.Errorf("lookup x: %w", syscall.ENOTEMPTY), syscall.ENOTEMPTY},
		{"wrapped enospc", fmt.Errorf("write log: %w", syscall.ENOSPC), syscall.ENOSPC},
		{"wrapped first", fmt.Errorf("%w: disk gone", syscall.EIO), syscall.EIO},
		{"doubly wrapped", fmt.Errorf("a: %w", fmt.Errorf("b: %w", syscall.EEXIST)), syscall.EEXIST},
		{"closed store", store.ErrClosed, syscall.EIO},
		{"plain error", errors.New("disk on fire"), syscall.EIO},
		{"errno 0", syscall.Errno(0), syscall.EIO}, // an error that claims no errno is still an error
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := translate(tc.err); got != tc.want {
				t.Errorf("translate(%v) = %v (%d), want %v (%d)", tc.err, got, got, tc.want, tc.want)
			}
		})
	}
}
