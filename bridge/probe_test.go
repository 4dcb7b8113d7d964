package bridge_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// TestProbeNameUnreachable: no client op reaches the readiness probe's
// reserved name by any path (issue 13, item 8: a symlink "dl" to "." then
// mkdir "dl/.lighthouse-readyz" made /readyz 503 for good), and a leftover
// under that name (from an older bridge) does not keep the bridge not
// ready: the probe removes it.
func TestProbeNameUnreachable(t *testing.T) {
	for _, backend := range []string{"bazil", "gofuse"} {
		t.Run(backend, func(t *testing.T) {
			b := startBridge(t, bridgeOpts{Backend: backend})
			b.ok(t, fsop.Op{Kind: fsop.Symlink, Path: "dl", Target: "."})
			b.ok(t, fsop.Op{Kind: fsop.Mkdir, Path: "d", Mode: 0o755})
			for _, op := range []fsop.Op{
				{Kind: fsop.Mkdir, Path: "dl/.lighthouse-readyz", Mode: 0o755},
				{Kind: fsop.WriteFile, Path: "dl/.lighthouse-readyz", Data: []byte("x")},
				{Kind: fsop.Symlink, Path: "p", Target: ".lighthouse-readyz"},
				{Kind: fsop.Symlink, Path: "p", Target: "d/../.lighthouse-readyz"},
				{Kind: fsop.Rename, Path: "d", To: "dl/.lighthouse-readyz"},
				{Kind: fsop.Link, Path: "dl", To: "d/.lighthouse-readyz"},
			} {
				status, _, body, err := b.tryOp(op)
				if err != nil || status != http.StatusBadRequest {
					t.Errorf("%s %s -> %q %q: %d %s %v, want 400 (reserved)", op.Kind, op.Path, op.To, op.Target, status, body, err)
				}
			}
			if status, body, err := b.get("/readyz"); err != nil || status != http.StatusOK {
				t.Errorf("/readyz after the attempts: %d %s %v", status, body, err)
			}

			// A leftover directory tree under the probe's name, made
			// through the mount as an older bridge would have let a client.
			left := filepath.Join(b.Mount, ".lighthouse-readyz")
			if err := os.MkdirAll(filepath.Join(left, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(left, "sub", "f"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if res := b.ok(t, fsop.Op{Kind: fsop.Readdir, Path: "dl"}); hasEntry(res.Entries, ".lighthouse-readyz") {
				t.Errorf("readdir dl (a symlink to the root) shows the probe's name: %v", res.Entries)
			}
			if status, body, err := b.get("/readyz"); err != nil || status != http.StatusOK {
				t.Errorf("/readyz with a leftover directory at the probe's name: %d %s %v, want 200", status, body, err)
			}
			if _, err := os.Lstat(left); !os.IsNotExist(err) {
				t.Errorf("the leftover is still there after /readyz: %v", err)
			}
		})
	}
}

func hasEntry(entries []fsop.Dirent, name string) bool {
	for _, e := range entries {
		if e.Name == name {
			return true
		}
	}
	return false
}
