package bridge_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/fusemount"
)

// TestAbortedMountIsAFailureNotAnErrno: once the mount's FUSE connection
// has ended (here aborted through fusectl; in production, the bridge's
// server died while its executor still answered a handed connection),
// ops answer as a failed bridge, not with ENOTCONN or ECONNABORTED as if
// the filesystem had said so: a proxy would compare those as a
// divergence of the library (the shadow-kill end-to-end test counted one).
func TestAbortedMountIsAFailureNotAnErrno(t *testing.T) {
	for _, backend := range []string{"bazil", "gofuse"} {
		t.Run(backend, func(t *testing.T) {
			b := startBridge(t, bridgeOpts{Backend: backend})
			b.ok(t, fsop.Op{Kind: fsop.WriteFile, Path: "f", Data: []byte("x")})
			if err := fusemount.Abort(b.Mount); err != nil {
				t.Fatal(err)
			}
			status, res, body, err := b.tryOp(fsop.Op{Kind: fsop.Stat, Path: "f"})
			if err != nil {
				t.Fatalf("stat after the abort: %v (the bridge should still answer)", err)
			}
			if status == http.StatusOK {
				t.Fatalf("stat after the abort answered 200 with %+v, want a failure of the bridge", res)
			}
			if !strings.Contains(string(body), "FUSE connection ended") {
				t.Errorf("stat after the abort: %d %s, want it to say the FUSE connection ended", status, body)
			}
		})
	}
}
