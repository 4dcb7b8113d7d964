package asuser

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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

// TestDoFS: in DoFS the thread creates and is refused as the user; after
// it the same thread is root again, with its groups.
func TestDoFS(t *testing.T) {
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
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	runtime.LockOSThread() // the checks after DoFS run on its thread
	defer runtime.UnlockOSThread()
	before, err := groupsOfThread()
	if err != nil {
		t.Fatal(err)
	}
	c := Cred{UID: 1000, GID: 1001, Groups: []uint32{4242}}
	err = DoFS(c, func() error {
		if err := unix.Faccessat(dfd, "secret", unix.R_OK, unix.AT_EACCESS); !errors.Is(err, unix.EACCES) {
			t.Errorf("access of a 0600 root file as %v: %v, want EACCES", c, err)
		}
		if g, _ := groupsOfThread(); len(g) != 1 || g[0] != 4242 {
			t.Errorf("groups inside DoFS: %v", g)
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
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "mine"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Gid != 1001 {
		t.Errorf("file made in DoFS belongs to %d:%d, want 1000:1001", st.Uid, st.Gid)
	}
	after, err := groupsOfThread()
	if err != nil {
		t.Fatal(err)
	}
	if fsid(unix.SYS_SETFSUID) != 0 || fsid(unix.SYS_SETFSGID) != 0 || !slices.Equal(after, before) {
		t.Errorf("after DoFS: fsuid %d fsgid %d groups %v (before %v)", fsid(unix.SYS_SETFSUID), fsid(unix.SYS_SETFSGID), after, before)
	}
	if err := unix.Access(secret, unix.R_OK); err != nil {
		t.Errorf("root lost access after DoFS: %v", err)
	}
}

// BenchmarkDo: what running one call as another user costs over running it
// on a goroutine of its own (both wait for it): the thread Do ends is
// replaced by a new one for the next call.
func BenchmarkDo(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	b.Run("goroutine", func(b *testing.B) {
		for range b.N {
			done := make(chan error, 1)
			go func() { done <- unix.Access("/", unix.X_OK) }()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DoFS", func(b *testing.B) {
		for range b.N {
			if err := DoFS(Cred{UID: 1000, GID: 1000}, func() error { return unix.Access("/", unix.X_OK) }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("asuser.Do", func(b *testing.B) {
		for range b.N {
			if err := Do(Cred{UID: 1000, GID: 1000}, func() error { return unix.Access("/", unix.X_OK) }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
