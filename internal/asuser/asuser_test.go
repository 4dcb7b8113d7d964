package asuser

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDoChangesOnlyItsThread(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The test's temporary directories above dir are 0700: calls in Do
	// are made relative to dir, which only needs search permission.
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	c := Cred{UID: 65534, GID: 65534, Groups: []uint32{4242}}
	var uid, gid int
	var groups []int
	err = Do(c, func() error {
		uid, gid = unix.Getuid(), unix.Getgid()
		var err error
		if groups, err = unix.Getgroups(); err != nil {
			return err
		}
		if err := unix.Faccessat(dfd, "secret", unix.R_OK, 0); !errors.Is(err, unix.EACCES) {
			t.Errorf("access of a 0600 root file as %v: %v, want EACCES", c, err)
		}
		fd, err := unix.Openat(dfd, "mine", unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		return unix.Close(fd)
	})
	if err != nil {
		t.Fatal(err)
	}
	if uid != 65534 || gid != 65534 || len(groups) != 1 || groups[0] != 4242 {
		t.Errorf("inside Do: uid %d gid %d groups %v, want 65534 65534 [4242]", uid, gid, groups)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "mine"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("file made in Do belongs to %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
	// The process, and any thread after Do, is still root.
	for i := 0; i < 20; i++ {
		if os.Geteuid() != 0 || unix.Getuid() != 0 {
			t.Fatalf("after Do: uid %d euid %d", unix.Getuid(), os.Geteuid())
		}
		if err := unix.Access(secret, unix.R_OK); err != nil {
			t.Fatalf("root lost access after Do: %v", err)
		}
	}
}
