package shadow_test

import (
	"testing"

	"github.com/lighthouse-fs/lighthouse/internal/adaptertest"
	"github.com/lighthouse-fs/lighthouse/shadow"
)

// gofuse is the adapter as the shared suite sees it.
var gofuse = adaptertest.Adapter{
	Backend:       "gofuse",
	Mount:         shadow.Mount,
	Errno:         shadow.Errno, // go-fuse sends a method's syscall.Errno as is
	RenameFlags:   true,
	StickyBit:     true,
	PreEpochTimes: true,
	LazyUnmount:   true,
}

// The mount is served by a re-executed child: this process only makes
// syscalls on it.
func TestMain(m *testing.M) { adaptertest.Main(m, gofuse) }

func TestAdapter(t *testing.T) { adaptertest.Run(t, gofuse) }
