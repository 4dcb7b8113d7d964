// Package adaptertest is the one lifecycle and errno suite both FUSE
// adapters (primary/ on bazil, shadow/ on go-fuse) run, so that their tests
// cannot drift apart: Run(t, Adapter{...}) from each adapter's test.
//
// # What it checks
//
//   - errno: the adapter's store-error translation, as its library sends it
//     to the kernel, against one table.
//   - smoke: every kind of operation once, with real syscalls on a real
//     mount, in order on one fresh store (inode numbers included).
//   - lifecycle: cache options, unmount (clean, aborted, busy), a stale
//     mount left by a crash.
//
// The behaviour cases, compared op by op between the libraries and a plain
// directory, are the conformance suite's (conformance/); this suite checks
// that each adapter works and says where a library cannot do something
// (the Adapter fields), as its package doc does.
//
// # Processes
//
// The mounts are served by a re-executed test binary (internal/mounttest):
// call Main from TestMain. The test process makes syscalls on a mount it
// never serves; the one test that mounts in the test process (unmount)
// never touches the mount.
package adaptertest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/mounttest"
)

// Adapter is one FUSE adapter under test.
type Adapter struct {
	// Backend names Mount for the re-executed server (mounttest.Main).
	Backend string
	Mount   fusemount.MountFunc
	// Errno is the adapter's translation of a store error, as the errno its
	// library sends to the kernel (0 for success).
	Errno func(error) syscall.Errno

	// What the library can express; the adapter's package doc says why.

	// RenameFlags: renameat2's RENAME_NOREPLACE and RENAME_EXCHANGE reach
	// the store. Without them the kernel answers EINVAL (bazil answers
	// FUSE_RENAME2 with ENOSYS), except NOREPLACE onto an existing name,
	// which the VFS refuses with EEXIST before asking.
	RenameFlags bool
	// StickyBit: stat shows a directory's S_ISVTX (bazil's attribute
	// encoding drops it, although the store keeps it).
	StickyBit bool
	// PreEpochTimes: stat shows a time before 1970 with a fraction of a
	// second as set. bazil's attribute encoding (unixTime) divides the
	// nanoseconds toward zero and wraps the remainder into an unsigned
	// field: 1 s before 1970 plus 500 ns shows as 0.999999999 s after.
	PreEpochTimes bool
	// LazyUnmount: unmounting a busy mount detaches it and serves the open
	// files until they are closed (go-fuse). Without it the connection is
	// aborted and the open files fail with ENOTCONN (bazil).
	LazyUnmount bool
}

// guard bounds each group of syscalls on a mount: past it the connection
// is aborted and the test fails instead of hanging.
const guard = 60 * time.Second

// Main serves the adapter's mount in a re-executed test binary, or runs the
// tests. Call it from TestMain.
func Main(m *testing.M, a Adapter) {
	mounttest.Main(m, map[string]fusemount.MountFunc{a.Backend: a.Mount})
}

// Run runs the whole suite on a.
func Run(t *testing.T, a Adapter) {
	t.Run("errno", func(t *testing.T) { errnoTable(t, a.Errno) })
	t.Run("smoke", func(t *testing.T) { smoke(t, a) })
	t.Run("options", func(t *testing.T) { options(t, a) })
	t.Run("unmount", func(t *testing.T) { unmountInProcess(t, a) })
	t.Run("stop leaves nothing", func(t *testing.T) { stopLeavesNothing(t, a) })
	t.Run("unmount busy", func(t *testing.T) { unmountBusy(t, a) })
	t.Run("remount after crash", func(t *testing.T) { remountAfterCrash(t, a) })
	t.Run("other users", func(t *testing.T) { otherUsers(t, a) })
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func stat(t *testing.T, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Stat(path, &st))
	return st
}

func lstat(t *testing.T, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Lstat(path, &st))
	return st
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	must(t, os.WriteFile(path, []byte(data), 0o644))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return string(b)
}

func errnoName(err error) string {
	var e unix.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e) + " (" + e.Error() + ")"
	}
	return fmt.Sprint(err)
}

type dirent struct {
	name string
	ino  uint64
	typ  uint8
}

// getdents lists dir with getdents64 itself, in the order the filesystem
// returned: os.ReadDir hides "." and ".." and d_type.
func getdents(t *testing.T, dir string) []dirent {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	defer unix.Close(fd)
	var out []dirent
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(fd, buf)
		must(t, err)
		if n == 0 {
			return out
		}
		for b := buf[:n]; len(b) > 0; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
			reclen := binary.NativeEndian.Uint16(b[16:])
			name, _, _ := bytes.Cut(b[19:reclen], []byte{0})
			out = append(out, dirent{string(name), binary.NativeEndian.Uint64(b), b[18]})
			b = b[reclen:]
		}
	}
}
