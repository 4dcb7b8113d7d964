package bridge_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// TestModesAsGiven: a bridge started under umask 077 creates what the API
// asks with exactly the mode in the op, on both libraries: its executor
// makes the syscalls with umask 0 (issue 20: a front mount's ops, whose
// modes the kernel had already masked, were masked a second time).
func TestModesAsGiven(t *testing.T) {
	requireFUSE(t)
	for _, backend := range []string{"bazil", "gofuse"} {
		t.Run(backend, func(t *testing.T) {
			old := unix.Umask(0o077) // the bridge and its executor inherit it
			b := startBridge(t, bridgeOpts{Backend: backend})
			unix.Umask(old)
			for i, mode := range []uint32{0o777, 0o666, 0o620, 0o755, 0o700} {
				dir, file, opened := fmt.Sprintf("d%d", i), fmt.Sprintf("f%d", i), fmt.Sprintf("o%d", i)
				b.ok(t, fsop.Op{Kind: fsop.Mkdir, Path: dir, Mode: mode})
				b.ok(t, fsop.Op{Kind: fsop.Create, Path: file, Mode: mode})
				b.ok(t, fsop.Op{Kind: fsop.Open, Path: opened, Handle: uint64(i + 1), Flags: os.O_CREATE | os.O_WRONLY, Mode: mode})
				b.ok(t, fsop.Op{Kind: fsop.Close, Handle: uint64(i + 1)})
				for _, name := range []string{dir, file, opened} {
					var st unix.Stat_t
					if err := unix.Lstat(filepath.Join(b.Mount, name), &st); err != nil {
						t.Fatal(err)
					}
					if got := st.Mode & 0o7777; got != mode {
						t.Errorf("%s made with mode %#o: the mount shows %#o", name, mode, got)
					}
				}
			}
		})
	}
}
