package primary_test

import (
	"syscall"
	"testing"

	"bazil.org/fuse"

	"github.com/lighthouse-fs/lighthouse/internal/adaptertest"
	"github.com/lighthouse-fs/lighthouse/primary"
)

// bazil is the adapter as the shared suite sees it. The false fields are
// what bazil cannot express (package doc, "What bazil cannot express").
var bazil = adaptertest.Adapter{
	Backend: "bazil",
	Mount:   primary.Mount,
	// What bazil sends the kernel for the adapter's answer: its own
	// fuse.ToErrno, as RespondError.
	Errno: func(err error) syscall.Errno {
		if e := primary.FuseErr(err); e != nil {
			return syscall.Errno(fuse.ToErrno(e))
		}
		return 0
	},
	RenameFlags:   false,
	StickyBit:     false,
	PreEpochTimes: false,
	LazyUnmount:   false,
}

// The mount is served by a re-executed child: this process only makes
// syscalls on it.
func TestMain(m *testing.M) { adaptertest.Main(m, bazil) }

func TestAdapter(t *testing.T) { adaptertest.Run(t, bazil) }
