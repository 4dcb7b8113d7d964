package bridge_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// TestSubtreeRestoreThroughMount: on each backend, a subtree restore
// (PUT /v1/snapshot?path=a) keeps the mount up (same FUSE connection), and
// afterwards stat, read and readdir through the mount show the new
// subtree, although the kernel had looked up the old one; the rest of the
// tree is untouched, and a file held open in the old subtree still reads
// its old data (an orphan). With kernel caching on, the bridge remounts
// instead, and the mount still shows the new subtree.
func TestSubtreeRestoreThroughMount(t *testing.T) {
	requireFUSE(t)
	for _, tc := range []struct {
		backend, source string
		args            []string
		remount         bool
	}{
		{backend: "bazil", source: "gofuse"},
		{backend: "gofuse", source: "bazil"},
		{backend: "gofuse", source: "bazil", args: []string{"--entry-timeout", "10s", "--attr-timeout", "10s"}, remount: true},
	} {
		name := tc.backend
		if tc.remount {
			name += "-caching"
		}
		t.Run(name, func(t *testing.T) {
			src := startBridge(t, bridgeOpts{Backend: tc.source, Role: "shadow"})
			dst := startBridge(t, bridgeOpts{Backend: tc.backend, Args: tc.args})
			common := []fsop.Op{
				{Kind: fsop.Mkdir, Path: "a", Mode: 0o755},
				{Kind: fsop.Mkdir, Path: "a/b", Mode: 0o755},
				{Kind: fsop.Mkdir, Path: "other", Mode: 0o755},
				{Kind: fsop.WriteFile, Path: "other/x", Data: []byte("outside")},
			}
			src.batch(t, common...)
			dst.batch(t, common...)
			src.batch(t,
				fsop.Op{Kind: fsop.WriteFile, Path: "a/b/new", Data: []byte("new data")},
				fsop.Op{Kind: fsop.Link, Path: "a/b/new", To: "a/new-link"},
				fsop.Op{Kind: fsop.Symlink, Path: "a/ln", Target: "b/new"},
				fsop.Op{Kind: fsop.Mkdir, Path: "a/c", Mode: 0o700},
				fsop.Op{Kind: fsop.Setxattr, Path: "a", Name: "user.side", Value: []byte("src")},
				fsop.Op{Kind: fsop.Chmod, Path: "a", Mode: 0o750},
			)
			dst.batch(t,
				fsop.Op{Kind: fsop.WriteFile, Path: "a/b/old", Data: []byte("old data")},
				fsop.Op{Kind: fsop.WriteFile, Path: "a/b/new", Data: []byte("dst's version, longer")},
				fsop.Op{Kind: fsop.Mkdir, Path: "a/gone", Mode: 0o755},
			)
			// The kernel learns the old subtree: lookups, attributes, pages,
			// and a file held open.
			for _, p := range []string{"a/b/old", "a/b/new", "a/gone"} {
				if _, err := os.Stat(filepath.Join(dst.Mount, p)); err != nil {
					t.Fatal(err)
				}
			}
			readMountFile(t, dst.Mount, "a/b/new")
			held, err := os.Open(filepath.Join(dst.Mount, "a/b/old"))
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			if tc.remount {
				held.Close() // an open file would keep the unmount from finishing
			}
			dst.ok(t, fsop.Op{Kind: fsop.Open, Path: "other/x", Handle: 7})
			srcTree, dstTree := walkTree(t, src), walkTree(t, dst)

			snap := getSubtree(t, src, "a")
			putSubtree(t, dst, "a", snap, http.StatusOK)

			// A handle outside the subtree survives unless the bridge
			// remounted (which closes every handle).
			res := dst.op(t, fsop.Op{Kind: fsop.Pread, Handle: 7, Length: 100})
			if kept := res.Errno == "" && string(res.Data) == "outside"; kept == tc.remount {
				t.Errorf("pread of a handle outside the subtree: %q %q (remount expected: %v)", res.Data, res.Errno, tc.remount)
			}
			got := walkTree(t, dst)
			for p, nd := range srcTree {
				if p == "." {
					continue
				}
				if diff := cmp.Diff(nd, got[p]); diff != "" {
					t.Errorf("%s through the mount (-source +restored):\n%s", p, diff)
				}
			}
			for p, nd := range dstTree {
				if strings.HasPrefix(p, "a/") || p == "a" || p == "." {
					continue
				}
				if diff := cmp.Diff(nd, got[p]); diff != "" {
					t.Errorf("%s outside the subtree changed (-before +after):\n%s", p, diff)
				}
			}
			// The test process's own view, through the kernel.
			if data, err := readMountFile(t, dst.Mount, "a/b/new"); err != nil || string(data) != "new data" {
				t.Errorf("read a/b/new through the mount: %q %v", data, err)
			}
			for _, p := range []string{"a/b/old", "a/gone"} {
				if _, err := os.Stat(filepath.Join(dst.Mount, p)); !errors.Is(err, syscall.ENOENT) {
					t.Errorf("stat %s after the restore: %v, want ENOENT", p, err)
				}
			}
			ents, err := os.ReadDir(filepath.Join(dst.Mount, "a"))
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if want := []string{"b", "c", "ln", "new-link"}; err != nil || !slices.Equal(names, want) {
				t.Errorf("readdir a: %v %v, want %v", names, err, want)
			}
			if st, err := os.Stat(filepath.Join(dst.Mount, "a")); err != nil || st.Mode().Perm() != 0o750 {
				t.Errorf("stat a: %v %v, want mode 0750", st, err)
			}
			if !tc.remount {
				held.Seek(0, io.SeekStart)
				if data, err := io.ReadAll(held); err != nil || string(data) != "old data" {
					t.Errorf("a file held open in the old subtree: %q %v, want its old data", data, err)
				}
			}
			if again := getSubtree(t, dst, "a"); !bytes.Equal(again, snap) {
				t.Error("the restored subtree's snapshot differs from the source's")
			}
			if v, _ := dst.metric(t, "lighthouse_bridge_subtree_restores_total"); v != 1 {
				t.Errorf("lighthouse_bridge_subtree_restores_total = %v, want 1", v)
			}
			if status, _, err := dst.get("/readyz"); err != nil || status != http.StatusOK {
				t.Errorf("/readyz after the restore: %d %v", status, err)
			}
		})
	}
}

// TestSubtreeEndpointErrors: the codes of GET and PUT /v1/snapshot?path=.
func TestSubtreeEndpointErrors(t *testing.T) {
	requireFUSE(t)
	b := startBridge(t, bridgeOpts{Backend: "gofuse"})
	b.batch(t,
		fsop.Op{Kind: fsop.Mkdir, Path: "a", Mode: 0o755},
		fsop.Op{Kind: fsop.WriteFile, Path: "a/f", Data: []byte("x")},
		fsop.Op{Kind: fsop.Link, Path: "a/f", To: "out"},
	)
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"a", http.StatusConflict, "cross_link"},
		{"missing", http.StatusNotFound, "ENOENT"},
		{"out", http.StatusBadRequest, "ENOTDIR"},
		{"../a", http.StatusBadRequest, "EINVAL"},
	} {
		status, body, err := b.get("/v1/snapshot?path=" + tc.path)
		if err != nil || status != tc.status || !strings.Contains(string(body), `"code":"`+tc.code+`"`) {
			t.Errorf("GET ?path=%s: %d %s %v, want %d code %s", tc.path, status, body, err, tc.status, tc.code)
		}
	}
	status, body, _ := b.get("/v1/snapshot?path=a")
	if !strings.Contains(string(body), `"inside":"a/f"`) || !strings.Contains(string(body), `"outside":"out"`) {
		t.Errorf("cross_link body %d %s, want both names", status, body)
	}
	whole, _ := getSnapshot(t, b)
	putSubtree(t, b, ".", whole, http.StatusBadRequest)
}

func getSubtree(t *testing.T, b *bridgeProc, path string) []byte {
	t.Helper()
	status, snap, err := b.get("/v1/snapshot?path=" + path)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /v1/snapshot?path=%s: %d %s %v", path, status, snap, err)
	}
	return snap
}

func putSubtree(t *testing.T, b *bridgeProc, path string, snap []byte, want int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, b.URL+"/v1/snapshot?path="+path, bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	status, resp, err := doRequest(req)
	if err != nil || status != want {
		t.Fatalf("PUT /v1/snapshot?path=%s: %d %s %v, want %d", path, status, resp, err, want)
	}
}
