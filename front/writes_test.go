package front_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/fusemount"
)

// pwrites are the pwrite ops logged so far, and their bytes.
func (m *frontMount) pwrites(t *testing.T) (n int, bytes int) {
	for _, op := range m.ops(t) {
		if op.Kind == fsop.Pwrite {
			n++
			bytes += len(op.Data)
		}
	}
	return n, bytes
}

// TestWriteBatching: consecutive writes on a handle become one pwrite op
// of up to 1 MiB, what the file holds is what was written, and an op on
// the file in between (an lstat) sees every write made before it.
func TestWriteBatching(t *testing.T) {
	m := startFront(t, fusemount.Options{}, true)
	block := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 10<<10) }
	var want []byte
	m.guard(t, time.Minute, func() {
		f, err := os.Create(filepath.Join(m.dir, "f"))
		must(t, "create", err)
		for i := range 150 { // 1.5 MiB in 10 KiB blocks: two batches
			_, err := f.Write(block(i))
			must(t, "write", err)
			want = append(want, block(i)...)
			if i == 120 {
				if st := lstat(t, filepath.Join(m.dir, "f")); st.Size != int64(len(want)) {
					t.Errorf("lstat after %d writes: size %d, want %d", i+1, st.Size, len(want))
				}
			}
		}
		must(t, "close", f.Close())
		got, err := os.ReadFile(filepath.Join(m.dir, "f"))
		must(t, "read back", err)
		if !bytes.Equal(got, want) {
			t.Errorf("read back %d bytes, not the %d written", len(got), len(want))
		}
	})
	n, b := m.pwrites(t)
	if b != len(want) {
		t.Errorf("pwrites carried %d bytes, want %d", b, len(want))
	}
	// Two batches of 1 MiB, cut by the lstat; a loaded machine may send a
	// batch early (idle 100 ms): unbatched would be 150.
	if n > 15 {
		t.Errorf("150 writes of 10 KiB became %d pwrite ops, want at most 15", n)
	}
	t.Logf("150 writes of 10 KiB: %d pwrite ops", n)

}

// TestWriteBatchingOrder: a write through a second handle of the same
// file lands after the first handle's gathered ones, as written.
func TestWriteBatchingOrder(t *testing.T) {
	m := startFront(t, fusemount.Options{}, false)
	p := filepath.Join(m.dir, "f")
	m.guard(t, time.Minute, func() {
		a, err := os.Create(p)
		must(t, "create", err)
		b, err := os.OpenFile(p, os.O_WRONLY, 0)
		must(t, "open again", err)
		_, err = a.WriteAt([]byte("aaaa"), 0)
		must(t, "write a", err)
		_, err = a.WriteAt([]byte("aaaa"), 4)
		must(t, "write a", err)
		_, err = b.WriteAt([]byte("bb"), 2)
		must(t, "write b", err)
		must(t, "close b", b.Close())
		must(t, "close a", a.Close())
		got, err := os.ReadFile(p)
		must(t, "read", err)
		if string(got) != "aabbaaaa" {
			t.Errorf("file holds %q, want aabbaaaa", got)
		}
	})
}

// TestWriteBatchingErrors: a gathered write that fails is reported by the
// handle's next request: close(2) returns it.
func TestWriteBatchingErrors(t *testing.T) {
	m := startFront(t, fusemount.Options{}, false, envENOSPC+"=40000")
	m.guard(t, time.Minute, func() {
		f, err := os.Create(filepath.Join(m.dir, "f"))
		must(t, "create", err)
		for range 4 { // the fourth reaches 40000: gathered, all succeed
			_, err := f.Write(make([]byte, 10<<10))
			must(t, "write", err)
		}
		if err := f.Close(); !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("close after writes past the limit: %v, want ENOSPC", err)
		}
	})
}

// TestWriteBatchingDelay: gathered writes reach the bridge on their own
// after a moment, with no other request from the program.
func TestWriteBatchingDelay(t *testing.T) {
	m := startFront(t, fusemount.Options{}, true)
	m.guard(t, time.Minute, func() {
		f, err := os.Create(filepath.Join(m.dir, "f"))
		must(t, "create", err)
		defer f.Close()
		_, err = f.Write([]byte("hello"))
		must(t, "write", err)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if n, _ := m.pwrites(t); n == 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no pwrite op %v after the write", 10*time.Second)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
