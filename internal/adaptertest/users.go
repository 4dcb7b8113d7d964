package adaptertest

import (
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/asuser"
	"github.com/lighthouse-fs/lighthouse/internal/mounttest"
)

// nobody is the other user of otherUsers.
var nobody = asuser.Cred{UID: 65534, GID: 65534}

// otherUsers: by default (allow_other) another user's programs reach the
// store, own what they create and are refused what the modes refuse;
// with OwnerOnly the kernel refuses them everything.
func otherUsers(t *testing.T, a Adapter) {
	for _, ownerOnly := range []bool{false, true} {
		name := "allow_other"
		if ownerOnly {
			name = "owner only"
		}
		t.Run(name, func(t *testing.T) {
			m := mounttest.Start(t, a.Backend, fusemount.Options{OwnerOnly: ownerOnly})
			m.Guard(t, guard, func() {
				must(t, unix.Mkdir(filepath.Join(m.Dir, "pub"), 0o777))
				must(t, unix.Chmod(filepath.Join(m.Dir, "pub"), 0o777))
				writeFile(t, filepath.Join(m.Dir, "pub", "secret"), "s")
				must(t, unix.Chmod(filepath.Join(m.Dir, "pub", "secret"), 0o600))
				// The mount point's parents are the test's 0700 temporary
				// directories: the other user works relative to the root.
				root, err := unix.Open(m.Dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				must(t, err)
				defer unix.Close(root)
				var created, secret error
				must(t, asuser.Do(nobody, func() error {
					fd, err := unix.Openat(root, "pub/mine", unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
					if created = err; err == nil {
						unix.Close(fd)
					}
					fd, err = unix.Openat(root, "pub/secret", unix.O_RDONLY|unix.O_CLOEXEC, 0)
					if secret = err; err == nil {
						unix.Close(fd)
					}
					return nil
				}))
				if ownerOnly {
					if !errors.Is(created, unix.EACCES) || !errors.Is(secret, unix.EACCES) {
						t.Errorf("as %v on a mount without allow_other: create %v, open of a 0600 file %v; want EACCES for both", nobody, created, secret)
					}
					return
				}
				if created != nil {
					t.Fatalf("as %v: create in a 0777 directory: %v", nobody, created)
				}
				if !errors.Is(secret, unix.EACCES) {
					t.Errorf("as %v: open of root's 0600 file: %v, want EACCES (default_permissions)", nobody, secret)
				}
				if st := lstat(t, filepath.Join(m.Dir, "pub", "mine")); st.Uid != nobody.UID || st.Gid != nobody.GID {
					t.Errorf("a file %v created belongs to %d:%d", nobody, st.Uid, st.Gid)
				}
			})
		})
	}
}
