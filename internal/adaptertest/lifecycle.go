package adaptertest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/mounttest"
	"github.com/lighthouse-fs/lighthouse/store"
)

// options mounts with every option set to a non-default value: the mount
// shows its name, and the cached and uncached paths still agree (the
// timeouts themselves are the kernel's business).
func options(t *testing.T, a Adapter) {
	m := mounttest.Start(t, a.Backend, fusemount.Options{
		EntryTimeout: time.Second, AttrTimeout: time.Second, NegativeTimeout: time.Second,
		KeepCache: true, DirectIO: true, FSName: "custom-name",
	})
	m.Guard(t, guard, func() {
		if e, ok := fusemount.Find(m.Dir); !ok || e.Source != "custom-name" || e.FSType != "fuse.lighthouse" {
			t.Errorf("mount entry = %+v, %v", e, ok)
		}
		f := filepath.Join(m.Dir, "f")
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("stat before create: %v", err)
		}
		// A cached negative entry must not hide a file created through the
		// mount.
		writeFile(t, f, "direct")
		if got := readFile(t, f); got != "direct" {
			t.Errorf("read back %q", got)
		}
		must(t, os.Truncate(f, 2))
		if st := stat(t, f); st.Size != 2 {
			t.Errorf("size after truncate = %d, want 2", st.Size)
		}
		data := bytes.Repeat([]byte{7}, 300<<10)
		must(t, os.WriteFile(filepath.Join(m.Dir, "d"), data, 0o644))
		if b, err := os.ReadFile(filepath.Join(m.Dir, "d")); err != nil || !bytes.Equal(b, data) {
			t.Errorf("direct I/O read back %d bytes, %v", len(b), err)
		}
	})
}

// unmountInProcess mounts in this process (which then never touches the
// mount) and checks the Mount contract: unmount is idempotent, done has
// room for its result, receives nil after a clean unmount and is closed,
// and unmount does not hang when the kernel connection is already gone.
func unmountInProcess(t *testing.T, a Adapter) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	for _, abort := range []bool{false, true} {
		t.Run(fmt.Sprintf("aborted=%v", abort), func(t *testing.T) {
			dir := t.TempDir()
			st := store.OpenMemory(store.Options{})
			defer st.Close()
			unmount, done, err := a.Mount(dir, st, fusemount.Options{})
			must(t, err)
			defer fusemount.Unmount(dir) // only if a check below fails
			if cap(done) != 1 {
				t.Errorf("done has capacity %d, want 1", cap(done))
			}
			if abort {
				must(t, fusemount.Abort(dir))
			}
			start := time.Now()
			for i := range 2 {
				if err := unmount(); err != nil {
					t.Errorf("unmount #%d: %v", i+1, err)
				}
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("unmount took %v", d)
			}
			select {
			case err := <-done:
				t.Logf("serve loop: %v", err)
				if err != nil && !abort {
					t.Errorf("serve loop after a clean unmount: %v", err)
				}
				if _, open := <-done; open {
					t.Error("done not closed after its result")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("serve loop did not end")
			}
			if e, ok := fusemount.Find(dir); ok {
				t.Errorf("mount left behind: %+v", e)
			}
		})
	}
}

// stopLeavesNothing: stopping the server removes the mount.
func stopLeavesNothing(t *testing.T, a Adapter) {
	m := mounttest.Start(t, a.Backend, fusemount.Options{})
	m.Guard(t, guard, func() { writeFile(t, filepath.Join(m.Dir, "f"), "x") })
	must(t, m.Stop())
	if e, ok := fusemount.Find(m.Dir); ok {
		t.Errorf("mount still present after stop: %+v", e)
	}
}

// unmountBusy stops the server while a file on the mount is open: the
// polite unmount fails with EBUSY and the mount leaves the namespace
// anyway. With LazyUnmount the open file is still served until it is
// closed; otherwise the connection was aborted and it fails with ENOTCONN.
func unmountBusy(t *testing.T, a Adapter) {
	m := mounttest.Start(t, a.Backend, fusemount.Options{})
	var f *os.File
	m.Guard(t, guard, func() {
		var err error
		f, err = os.Create(filepath.Join(m.Dir, "held"))
		must(t, err)
	})
	defer f.Close()
	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- m.Stop() }()
	for deadline := time.Now().Add(guard); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := fusemount.Find(m.Dir); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("mount still in the namespace %v after stop", guard)
			f.Close()
			<-stopped // Stop ends by force
			return
		}
	}
	t.Logf("a busy mount left the namespace after %v", time.Since(start).Round(time.Millisecond))
	_, err := f.Write([]byte("x"))
	t.Logf("write on the held file after it left: %v", errnoName(err))
	switch {
	case a.LazyUnmount && err != nil:
		t.Errorf("write on a held file of a lazily detached mount: %v, want success", err)
	case !a.LazyUnmount && !errors.Is(err, unix.ENOTCONN):
		t.Errorf("write on a held file of an aborted mount: %v, want ENOTCONN", err)
	}
	f.Close() // the last user: a lazily detached server can end now
	if err := <-stopped; err != nil {
		t.Errorf("stop with a busy mount: %v", err)
	}
	if _, ok := fusemount.Find(m.Dir); ok {
		t.Error("mount left behind")
	}
}

// remountAfterCrash kills a server, leaving a stale mount (ENOTCONN), and
// mounts again on the same directory: Mount cleans it first.
func remountAfterCrash(t *testing.T, a Adapter) {
	m := mounttest.Start(t, a.Backend, fusemount.Options{})
	m.Kill()
	if _, ok := fusemount.Find(m.Dir); !ok {
		t.Fatal("no stale mount after the kill")
	}
	m2 := mounttest.StartConfig(t, mounttest.Config{Backend: a.Backend, Dir: m.Dir})
	m2.Guard(t, guard, func() { writeFile(t, filepath.Join(m2.Dir, "again"), "ok") })
	ms, err := fusemount.Mounts()
	must(t, err)
	n := 0
	for _, e := range ms {
		if e.Dir == m.Dir {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d mounts on %s, want 1", n, m.Dir)
	}
}
