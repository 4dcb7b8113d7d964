package front_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/fusemount"
)

// capabilityAsks counts the getxattr ops of security.capability on path.
func capabilityAsks(ops []fsop.Op, path string) int {
	n := 0
	for _, op := range ops {
		if op.Kind == fsop.Getxattr && op.Path == path && op.Name == "security.capability" {
			n++
		}
	}
	return n
}

// writeBlocks writes n blocks to p, opened with flag|O_WRONLY, one
// write(2) each: the kernel asks getxattr("security.capability") before
// every one.
func writeBlocks(t *testing.T, p string, flag, n int) {
	t.Helper()
	f, err := os.OpenFile(p, flag|os.O_WRONLY, 0o644)
	must(t, "create", err)
	for i := range n {
		if _, err := f.Write([]byte(fmt.Sprintf("block %d\n", i))); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	must(t, "close", f.Close())
}

// TestMissingXattrsRemembered: with the attribute cache on, the kernel's
// getxattr of a missing security.capability before each write reaches
// the bridges once, not once per write, and not at all for a file the
// front created; a setxattr or removexattr through the front makes the
// next getxattr ask again. Without the cache every one is sent.
func TestMissingXattrsRemembered(t *testing.T) {
	const blocks = 5
	t.Run("no cache", func(t *testing.T) {
		m := startFront(t, fusemount.Options{}, true)
		m.guard(t, time.Minute, func() { writeBlocks(t, filepath.Join(m.dir, "f"), os.O_CREATE|os.O_EXCL, blocks) })
		if got := capabilityAsks(m.ops(t), "f"); got < blocks {
			t.Errorf("without the attribute cache: %d getxattr ops of security.capability for %d writes, want one per write", got, blocks)
		}
	})
	t.Run("cache", func(t *testing.T) {
		m := startFront(t, fusemount.Options{AttrTimeout: time.Hour}, true)
		p := filepath.Join(m.dir, "f")
		buf := make([]byte, 64)
		m.guard(t, time.Minute, func() {
			writeBlocks(t, p, os.O_CREATE|os.O_EXCL, blocks)
			if got := capabilityAsks(m.ops(t), "f"); got != 0 {
				t.Errorf("with the attribute cache: %d getxattr ops of security.capability for %d writes to a file the front created, want 0", got, blocks)
			}

			// Missing, remembered, then set through the front: seen.
			_, err := unix.Getxattr(p, "user.k", buf)
			mustErrno(t, "getxattr user.k before setxattr", err, unix.ENODATA)
			must(t, "setxattr", unix.Setxattr(p, "user.k", []byte("v1"), 0))
			if n, err := unix.Getxattr(p, "user.k", buf); err != nil {
				t.Errorf("getxattr user.k after setxattr: %v; want v1", err)
			} else if string(buf[:n]) != "v1" {
				t.Errorf("getxattr user.k after setxattr: %q, want v1", buf[:n])
			}
			// Removed through the front: missing again, and that is
			// remembered too.
			must(t, "removexattr", unix.Removexattr(p, "user.k"))
			before := len(m.ops(t))
			for range 3 {
				_, err := unix.Getxattr(p, "user.k", buf)
				mustErrno(t, "getxattr user.k after removexattr", err, unix.ENODATA)
			}
			asked := 0
			for _, op := range m.ops(t)[before:] {
				if op.Kind == fsop.Getxattr {
					asked++
				}
			}
			if asked != 1 {
				t.Errorf("3 getxattrs of a removed attribute sent %d getxattr ops, want 1", asked)
			}
			// The removexattr dropped what was remembered of
			// security.capability too: asked once, then remembered.
			before = len(m.ops(t))
			writeBlocks(t, p, os.O_APPEND, blocks)
			if got := capabilityAsks(m.ops(t)[before:], "f"); got != 1 {
				t.Errorf("with the attribute cache: %d getxattr ops of security.capability for %d writes, want 1", got, blocks)
			}
		})
	})
}
