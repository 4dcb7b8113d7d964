package fusemount

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/internal/caps"
)

// lookupRoot is a directory that finds nothing and records every name it
// is asked for.
type lookupRoot struct {
	fs.Inode
	mu    sync.Mutex
	asked []string
}

func (r *lookupRoot) Lookup(_ context.Context, name string, _ *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	r.mu.Lock()
	r.asked = append(r.asked, name)
	r.mu.Unlock()
	return nil, syscall.ENOENT
}

func (r *lookupRoot) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode, out.Ino = syscall.S_IFDIR|0o755, 1
	return 0
}

func (r *lookupRoot) wasAsked(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.asked {
		if n == name {
			return true
		}
	}
	return false
}

// TestServeGoFuseStaged: in a staged mount the served root sees the name
// go-fuse keeps for itself in its own root, the bind is the connection's
// only mount (nosuid, nodev), and unmounting it, politely or lazily, ends
// the serve loop.
func TestServeGoFuseStaged(t *testing.T) {
	if !caps.Has(caps.SysAdmin) {
		t.Skip("needs CAP_SYS_ADMIN (mount(2))")
	}
	for _, how := range []string{"polite", "lazy"} {
		t.Run(how, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mnt")
			if err := CleanStale(dir); err != nil {
				t.Fatal(err)
			}
			zero := time.Duration(0)
			opts := &fs.Options{
				MountOptions: fuse.MountOptions{FsName: "staged-test", Name: "lighthouse-test", DirectMount: true},
				EntryTimeout: &zero, AttrTimeout: &zero, NegativeTimeout: &zero,
			}
			root := &lookupRoot{}
			unmount, done, err := ServeGoFuseStaged(dir, root, fs.StableAttr{Ino: 1, Mode: syscall.S_IFDIR}, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = Unmount(dir) })

			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dir, ".go-fuse-epoll-hack"), &st); !errors.Is(err, unix.ENOENT) {
				t.Errorf("lstat of .go-fuse-epoll-hack: %v (ino %d), want ENOENT from the served root", err, st.Ino)
			}
			if !root.wasAsked(".go-fuse-epoll-hack") {
				t.Error("the served root was never asked for .go-fuse-epoll-hack")
			}
			if err := unix.Lstat(dir, &st); err != nil || st.Ino != 1 {
				t.Errorf("lstat of the mount point: ino %d, %v; want the served root's 1", st.Ino, err)
			}
			var sfs unix.Statfs_t
			if err := unix.Statfs(dir, &sfs); err != nil {
				t.Fatal(err)
			}
			if want := int64(unix.ST_NOSUID | unix.ST_NODEV); sfs.Flags&want != want {
				t.Errorf("mount flags %#x, want nosuid and nodev", sfs.Flags)
			}
			e, ok := Find(dir)
			if !ok {
				t.Fatalf("%s is not listed as a FUSE mount", dir)
			}
			ms, err := Mounts()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if m.Minor == e.Minor && m.Dir != dir || strings.Contains(m.Dir, ".lighthouse-stage-") {
					t.Errorf("a second mount of the connection is left: %+v", m)
				}
			}

			if how == "polite" {
				err = unmount()
			} else {
				err = Unmount(dir)
			}
			if err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve loop: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the serve loop did not end after the unmount")
			}
			if _, ok := Find(dir); ok {
				t.Errorf("%s is still mounted", dir)
			}
		})
	}
}
