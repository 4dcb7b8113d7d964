package bridge_test

import (
	"testing"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/store"
)

// TestWriteFileIsOneGroup: on each backend, a write_file through the mount
// (a CREATE or a truncating SETATTR, then WRITEs, as the kernel sends
// them) is logged as one atomic group, so a crash between its records
// undoes it whole (store/crash_test.go kills a writer at random points).
func TestWriteFileIsOneGroup(t *testing.T) {
	for _, backend := range []string{"bazil", "gofuse"} {
		t.Run(backend, func(t *testing.T) {
			b := startBridge(t, bridgeOpts{Backend: backend})
			big := make([]byte, 600<<10) // several WRITE requests
			b.batch(t,
				fsop.Op{Kind: fsop.WriteFile, Path: "new", Data: big},
				fsop.Op{Kind: fsop.WriteFile, Path: "new", Data: []byte("truncated and rewritten")},
				fsop.Op{Kind: fsop.Mkdir, Path: "d", Mode: 0o755},
				fsop.Op{Kind: fsop.WriteFile, Path: "d/inner", Data: []byte("x")},
			)
			if !b.Terminate() {
				t.Fatal("bridge did not stop")
			}
			s, err := store.Open(b.Data, store.Options{Logf: t.Logf})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// The readiness probe's write_files are groups too.
			if rec := s.Recovery(); rec.GroupsEnded < 3 || rec.RolledBack != 0 {
				t.Fatalf("after 3 write_files through the %s mount: %+v, want at least 3 groups ended, none rolled back", backend, rec)
			}
		})
	}
}
