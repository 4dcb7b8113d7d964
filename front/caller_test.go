package front

import (
	"os"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/internal/asuser"
)

// TestGroupsOf: the Groups line of /proc/PID/status, as getgroups(2) sees
// them, and none for a process that does not exist.
func TestGroupsOf(t *testing.T) {
	want, err := unix.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, g := range groupsOf(uint32(os.Getpid())) {
		got = append(got, int(g))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("groupsOf(self) = %v, getgroups = %v", got, want)
	}
	if os.Geteuid() == 0 {
		// A thread with groups of its own: FUSE names the thread.
		tids, done := make(chan int), make(chan struct{})
		go func() {
			_ = asuser.Do(asuser.Cred{UID: 1000, GID: 1000, Groups: []uint32{2000, 2001}}, func() error {
				tids <- unix.Gettid()
				<-done
				return nil
			})
		}()
		got := groupsOf(uint32(<-tids))
		close(done)
		if !slices.Equal(got, []uint32{2000, 2001}) {
			t.Errorf("groupsOf(a thread in groups 2000 and 2001) = %v", got)
		}
	}
	if g := groupsOf(1<<31 - 1); g != nil {
		t.Errorf("groupsOf(a pid that does not exist) = %v", g)
	}
}
