package bridge_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/fusemount"
)

// TestBackendServesMount: for each library, an op sent to the HTTP API is
// executed on the real mount (the test process reads the file back through
// the mount), and the bridge reports its backend in /v1/info, in the
// lighthouse_fuse_backend_active gauge and to the `-- COMMAND` it runs.
func TestBackendServesMount(t *testing.T) {
	for _, tc := range []struct {
		name, backend, role string
	}{
		{name: "bazil", backend: "bazil", role: "primary"},
		{name: "gofuse", backend: "gofuse", role: "shadow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			seen := filepath.Join(dir, "active-backend") // outside the mount
			b := startBridge(t, bridgeOpts{Backend: tc.backend, Role: tc.role, Dir: dir,
				Command: []string{"sh", "-c", `printf %s "$LIGHTHOUSE_ACTIVE_FUSE_BACKEND" > ` + seen}})

			data := bytes.Repeat([]byte("lighthouse\x00\xff"), 1000)
			if res := b.ok(t, fsop.Op{Kind: fsop.WriteFile, Path: "hello.bin", Data: data}); res.N != int64(len(data)) {
				t.Errorf("write_file n = %d, want %d", res.N, len(data))
			}
			got, err := readMountFile(t, b.Mount, "hello.bin")
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("os.ReadFile through the mount: %d bytes, err %v; want the %d bytes written through the API", len(got), err, len(data))
			}
			if _, ok := fusemount.Find(b.Mount); !ok {
				t.Errorf("no FUSE mount on %s", b.Mount)
			}

			in := b.info(t)
			if in.ActiveBackend != tc.backend || in.Degraded || in.Role != tc.role || in.Mount != b.Mount {
				t.Errorf("/v1/info = %+v, want active %s, role %s, mount %s, not degraded", in, tc.backend, tc.role, b.Mount)
			}
			series := fmt.Sprintf(`lighthouse_fuse_backend_active{backend=%q,role=%q}`, tc.backend, tc.role)
			if v, ok := b.metric(t, series); !ok || v != 1 {
				t.Errorf("%s = %v (present %v), want 1", series, v, ok)
			}
			var cmdSaw []byte
			if !waitFor(10*time.Second, func() bool {
				cmdSaw, err = os.ReadFile(seen)
				return err == nil && len(cmdSaw) > 0
			}) {
				t.Fatalf("the -- command wrote nothing to %s: %v", seen, err)
			}
			if string(cmdSaw) != tc.backend {
				t.Errorf("the -- command saw LIGHTHOUSE_ACTIVE_FUSE_BACKEND=%q, want %q", cmdSaw, tc.backend)
			}
		})
	}
}

// TestBackendSelection: the first choice (flag or $LIGHTHOUSE_FUSE_BACKEND)
// is used when it mounts, the fallback when it does not, and the bridge
// runs degraded (ops on the store, no mount) when neither does. bazil
// needs fusermount3 (PATH=/nonexistent makes it unusable); go-fuse mounts
// with mount(2) as root and does not.
func TestBackendSelection(t *testing.T) {
	const noPath = "PATH=/nonexistent"
	for _, tc := range []struct {
		name              string
		backend, fallback string // flags
		env               []string
		want              string
	}{
		{name: "env-bazil-unusable-falls-back-to-gofuse", env: []string{"LIGHTHOUSE_FUSE_BACKEND=bazil", "LIGHTHOUSE_FUSE_FALLBACK=gofuse", noPath}, want: "gofuse"},
		{name: "env-unknown-first-choice-falls-back-to-bazil", env: []string{"LIGHTHOUSE_FUSE_BACKEND=nosuchfuse", "LIGHTHOUSE_FUSE_FALLBACK=bazil"}, want: "bazil"},
		{name: "flag-unknown-first-choice-falls-back-to-gofuse", backend: "nosuchfuse", fallback: "gofuse", want: "gofuse"},
		{name: "flag-wins-over-env", backend: "gofuse", env: []string{"LIGHTHOUSE_FUSE_BACKEND=bazil"}, want: "gofuse"},
		{name: "degraded-no-fallback", env: []string{"LIGHTHOUSE_FUSE_BACKEND=bazil", noPath}, want: "degraded"},
		{name: "degraded-unknown-fallback", backend: "bazil", fallback: "nosuchfuse", env: []string{noPath}, want: "degraded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			degraded := tc.want == "degraded"
			b := startBridge(t, bridgeOpts{Backend: tc.backend, Fallback: tc.fallback, Env: tc.env, Degraded: degraded})
			in := b.info(t)
			if in.ActiveBackend != tc.want || in.Degraded != degraded {
				t.Errorf("/v1/info active_backend %q degraded %v, want %q %v", in.ActiveBackend, in.Degraded, tc.want, degraded)
			}
			series := fmt.Sprintf(`lighthouse_fuse_backend_active{backend=%q,role="primary"}`, tc.want)
			if v, ok := b.metric(t, series); !ok || v != 1 {
				t.Errorf("%s = %v (present %v), want 1", series, v, ok)
			}
			// Ops work either way.
			data := []byte("still works\n")
			b.ok(t, fsop.Op{Kind: fsop.Mkdir, Path: "dir", Mode: 0o755})
			b.ok(t, fsop.Op{Kind: fsop.WriteFile, Path: "dir/f", Data: data})
			if res := b.ok(t, fsop.Op{Kind: fsop.ReadFile, Path: "dir/f"}); !bytes.Equal(res.Data, data) {
				t.Errorf("read_file = %q, want %q", res.Data, data)
			}
			_, mounted := fusemount.Find(b.Mount)
			got, err := os.ReadFile(filepath.Join(b.Mount, "dir/f"))
			if degraded {
				// No mount, and the ops went to the store, not to the
				// plain directory under the mount point.
				if mounted {
					t.Errorf("degraded bridge has a FUSE mount on %s", b.Mount)
				}
				if err == nil {
					t.Errorf("degraded: dir/f exists in the plain directory %s", b.Mount)
				}
				return
			}
			if !mounted {
				t.Errorf("no FUSE mount on %s", b.Mount)
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("read through the mount: %q %v, want %q", got, err, data)
			}
		})
	}
}

// TestHostileInput: malformed requests and paths that would leave the
// mount answer 400 (413 for a body over --max-body) and change nothing
// outside the mount: a canary directory next to the mount and data
// directories, and /etc, are snapshotted before and after.
func TestHostileInput(t *testing.T) {
	base := t.TempDir()
	canary := filepath.Join(base, "canary")
	outside := filepath.Join(filepath.Dir(base), "outside") // what "../../outside" from the mount root names
	if err := os.MkdirAll(filepath.Join(canary, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(canary, "victim"), []byte("do not touch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(canary, "sub", "passwd"), []byte("canary passwd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, p := range []string{"victim", "sub/passwd", "sub", "."} {
		os.Chtimes(filepath.Join(canary, p), old, old)
	}
	before := snapshotOutside(t, canary, outside)

	b := startBridge(t, bridgeOpts{Backend: "gofuse", Dir: base, Args: []string{"--max-body", "1048576"}})
	b.ok(t, fsop.Op{Kind: fsop.WriteFile, Path: "f", Data: []byte("inside\n")})
	b.ok(t, fsop.Op{Kind: fsop.Mkdir, Path: "sub", Mode: 0o755})
	// Symlinks created through the API that lead out of the mount. From
	// the mount root m/, "../canary" is the canary; from m/sub/,
	// "../../canary" is.
	escapes := map[string]string{
		"esc-etc":     "/etc",
		"esc-outside": "../../outside",
		"esc-canary":  "../canary",
		"sub/esc":     "../../canary",
	}
	for link, target := range escapes {
		b.ok(t, fsop.Op{Kind: fsop.Symlink, Path: link, Target: target})
		if res := b.ok(t, fsop.Op{Kind: fsop.Readlink, Path: link}); res.Target != target {
			t.Errorf("readlink %s = %q, want %q", link, res.Target, target)
		}
	}

	expect400 := func(t *testing.T, what string, body []byte) {
		t.Helper()
		status, resp, err := b.postRaw(body)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var e struct {
			Error string `json:"error"`
		}
		if status != http.StatusBadRequest || json.Unmarshal(resp, &e) != nil || e.Error == "" {
			t.Errorf("%s: %d %s, want 400 with an error", what, status, resp)
		}
	}

	t.Run("paths", func(t *testing.T) {
		for _, p := range []string{"../x", "/etc/passwd", "a/../../x", "..", "a\x00b", "", ".lighthouse-readyz", ".lighthouse-readyz/x"} {
			for _, op := range []fsop.Op{
				{Kind: fsop.Stat, Path: p},
				{Kind: fsop.WriteFile, Path: p, Data: []byte("pwned\n")},
				{Kind: fsop.Mkdir, Path: p, Mode: 0o755},
				{Kind: fsop.Rename, Path: "f", To: p},
				{Kind: fsop.Link, Path: "f", To: p},
			} {
				expect400(t, fmt.Sprintf("%s %q", op.Kind, p), encodeOps([]fsop.Op{op}, false))
			}
		}
	})

	t.Run("symlink-escapes", func(t *testing.T) {
		for link := range escapes {
			for _, p := range []string{link, link + "/passwd", link + "/victim", link + "/new"} {
				for _, op := range []fsop.Op{
					{Kind: fsop.Stat, Path: p},
					{Kind: fsop.ReadFile, Path: p},
					{Kind: fsop.Read, Path: p, Length: 10},
					{Kind: fsop.WriteFile, Path: p, Data: []byte("pwned\n")},
					{Kind: fsop.Append, Path: p, Data: []byte("pwned\n")},
					{Kind: fsop.Create, Path: p, Mode: 0o644},
					{Kind: fsop.Chmod, Path: p, Mode: 0o777},
					{Kind: fsop.Chown, Path: p, UID: 1234, GID: 1234},
					{Kind: fsop.Utimens, Path: p, AtimeNs: 1, MtimeNs: 1},
					{Kind: fsop.Setxattr, Path: p, Name: "user.pwned", Value: []byte("1")},
					{Kind: fsop.Removexattr, Path: p, Name: "user.x"},
					{Kind: fsop.Truncate, Path: p, Size: 0},
					{Kind: fsop.Readdir, Path: p},
					{Kind: fsop.Open, Path: p, Handle: 77, Flags: unix.O_RDWR | unix.O_CREAT, Mode: 0o644},
				} {
					expect400(t, fmt.Sprintf("%s %q", op.Kind, p), encodeOps([]fsop.Op{op}, false))
				}
				// Ops that do not follow a final symlink still may not walk
				// through one that leads out. (Renaming or linking onto the
				// symlink itself replaces or hits the link, inside the mount.)
				if p != link {
					for _, op := range []fsop.Op{
						{Kind: fsop.Link, Path: "f", To: p},
						{Kind: fsop.Rename, Path: "f", To: p},
						{Kind: fsop.Lstat, Path: p},
						{Kind: fsop.Unlink, Path: p},
						{Kind: fsop.Mkdir, Path: p, Mode: 0o755},
						{Kind: fsop.Symlink, Path: p, Target: "x"},
						{Kind: fsop.Rmdir, Path: p},
					} {
						expect400(t, fmt.Sprintf("%s %q", op.Kind, p), encodeOps([]fsop.Op{op}, false))
					}
				}
			}
		}
		// The links themselves are fine to look at without following.
		if res := b.ok(t, fsop.Op{Kind: fsop.Lstat, Path: "esc-etc"}); res.Stat.Mode&unix.S_IFMT != unix.S_IFLNK {
			t.Errorf("lstat esc-etc: mode %o, want a symlink", res.Stat.Mode)
		}
	})

	t.Run("malformed", func(t *testing.T) {
		for _, tc := range []struct{ name, body string }{
			{"unknown op", `{"op":"mkdri","path":"a"}`},
			{"path is a number", `{"op":"stat","path":5}`},
			{"mode is a string", `{"op":"chmod","path":"f","mode":"0644"}`},
			{"offset is a string", `{"op":"read","path":"f","offset":"0","length":1}`},
			{"fraction", `{"op":"truncate","path":"f","size":1.5}`},
			{"null", `{"op":"stat","path":null}`},
			{"exclusive is a string", `{"op":"create","path":"g","exclusive":"yes"}`},
			{"unknown field", `{"op":"stat","path":"f","recursive":true}`},
			{"field the op does not use", `{"op":"read","path":"f","size":1}`},
			{"invalid base64", `{"op":"write_file","path":"f","data":"!!!!"}`},
			{"url-safe base64", `{"op":"write_file","path":"f","data":"-_-_"}`},
			{"unpadded base64", `{"op":"write_file","path":"f","data":"aGk"}`},
			{"not JSON", `stat f`},
			{"array", `[{"op":"stat","path":"f"}]`},
			{"trailing data", `{"op":"stat","path":"f"} x`},
			{"empty", ``},
			{"read above 64 MiB", `{"op":"read","path":"f","offset":0,"length":67108865}`},
			{"batch with one bad op", `{"ops":[{"op":"write_file","path":"batch-bad","data":""},{"op":"stat","path":"../x"}]}`},
		} {
			expect400(t, tc.name, []byte(tc.body))
		}
		// Nothing of a batch with a malformed op ran.
		if res := b.op(t, fsop.Op{Kind: fsop.Stat, Path: "batch-bad"}); res.Errno != "ENOENT" {
			t.Errorf("stat batch-bad after a refused batch: errno %q, want ENOENT", res.Errno)
		}
		// pread above the read limit, on a real handle.
		b.ok(t, fsop.Op{Kind: fsop.Open, Path: "f", Handle: 42})
		expect400(t, "pread above 64 MiB", []byte(`{"op":"pread","handle":42,"offset":0,"length":67108865}`))
		b.ok(t, fsop.Op{Kind: fsop.Close, Handle: 42})
		// GET is not the ops endpoint's method.
		if status, _, _ := b.get("/v1/ops"); status != http.StatusMethodNotAllowed {
			t.Errorf("GET /v1/ops: %d, want 405", status)
		}
	})

	t.Run("max-body", func(t *testing.T) {
		big := encodeOps([]fsop.Op{{Kind: fsop.WriteFile, Path: "big", Data: make([]byte, 1<<20)}}, false)
		status, resp, err := b.postRaw(big)
		if err != nil || status != http.StatusRequestEntityTooLarge {
			t.Errorf("%d-byte body with --max-body 1048576: %d %s %v, want 413", len(big), status, resp, err)
		}
		if res := b.op(t, fsop.Op{Kind: fsop.Stat, Path: "big"}); res.Errno != "ENOENT" {
			t.Errorf("stat big after a 413: errno %q, want ENOENT", res.Errno)
		}
		// Just under the bound is accepted, and the bridge keeps serving.
		data := bytes.Repeat([]byte{0xa5}, 700<<10)
		b.ok(t, fsop.Op{Kind: fsop.WriteFile, Path: "big", Data: data})
		if got, err := readMountFile(t, b.Mount, "big"); err != nil || !bytes.Equal(got, data) {
			t.Errorf("read big through the mount: %d bytes %v, want %d", len(got), err, len(data))
		}
		if status, _, err := b.get("/readyz"); err != nil || status != http.StatusOK {
			t.Errorf("/readyz after a 413: %d %v", status, err)
		}
	})

	t.Run("batch", func(t *testing.T) {
		res := b.batch(t,
			fsop.Op{Kind: fsop.Mkdir, Path: "notes", Mode: 0o755},
			fsop.Op{Kind: fsop.WriteFile, Path: "notes/a", Data: []byte("A")},
			fsop.Op{Kind: fsop.Stat, Path: "notes/missing"},
			fsop.Op{Kind: fsop.ReadFile, Path: "notes/a"},
			fsop.Op{Kind: fsop.Rename, Path: "notes/a", To: "notes/b"},
			fsop.Op{Kind: fsop.Readdir, Path: "notes"},
		)
		if res[0].Errno != "" || res[1].N != 1 || res[2].Errno != "ENOENT" || string(res[3].Data) != "A" || res[4].Errno != "" {
			t.Errorf("batch results %+v", res)
		}
		var names []string
		for _, e := range res[5].Entries {
			names = append(names, e.Name)
		}
		sort.Strings(names)
		if strings.Join(names, " ") != ". .. b" {
			t.Errorf("readdir notes in the batch: %v, want . .. b", names)
		}
		// An empty batch is valid.
		status, body, err := b.postRaw([]byte(`{"ops":[]}`))
		if err != nil || status != http.StatusOK || strings.TrimSpace(string(body)) != `{"results":[]}` {
			t.Errorf(`{"ops":[]}: %d %s %v, want 200 {"results":[]}`, status, body, err)
		}
		// A batch refused while running (a symlink escape at op 1) ran op 0.
		status, body, err = b.postRaw(encodeOps([]fsop.Op{
			{Kind: fsop.WriteFile, Path: "ran-before-refusal", Data: []byte("x")},
			{Kind: fsop.Stat, Path: "esc-etc/passwd"},
			{Kind: fsop.WriteFile, Path: "after-refusal", Data: []byte("x")},
		}, true))
		if err != nil || status != http.StatusBadRequest || !strings.Contains(string(body), "op 1") {
			t.Errorf("batch refused at op 1: %d %s %v, want 400 naming op 1", status, body, err)
		}
		if res := b.op(t, fsop.Op{Kind: fsop.Stat, Path: "ran-before-refusal"}); res.Errno != "" {
			t.Errorf("op 0 of the refused batch did not run: %s", res.Errno)
		}
		if res := b.op(t, fsop.Op{Kind: fsop.Stat, Path: "after-refusal"}); res.Errno != "ENOENT" {
			t.Errorf("op 2 of the refused batch ran: errno %q", res.Errno)
		}
	})

	if status, _, err := b.get("/readyz"); err != nil || status != http.StatusOK {
		t.Errorf("/readyz after the hostile input: %d %v", status, err)
	}
	after := snapshotOutside(t, canary, outside)
	if diff := diffLines(before, after); diff != "" {
		t.Errorf("something outside the mount changed:\n%s", diff)
	}
}

// snapshotOutside describes what the hostile ops must not change: the
// canary tree (names, sizes, modes, owners, mtimes, ctimes, xattrs), the
// would-be "outside" path, /etc and /etc/passwd.
func snapshotOutside(t *testing.T, canary, outside string) []string {
	t.Helper()
	var out []string
	describe := func(p string) string {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Sprintf("%s: %v", p, err)
		}
		sz, _ := unix.Llistxattr(p, make([]byte, 4096))
		return fmt.Sprintf("%s mode=%o size=%d uid=%d gid=%d mtime=%d.%09d ctime=%d.%09d xattrs=%d",
			p, st.Mode, st.Size, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec, sz)
	}
	err := filepath.WalkDir(canary, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		line := describe(p)
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			line += fmt.Sprintf(" data=%q", data)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{outside, "/etc", "/etc/passwd", "/etc/pwned", "/etc/new"} {
		out = append(out, describe(p))
	}
	return out
}

func diffLines(a, b []string) string {
	var d []string
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			d = append(d, "- "+x, "+ "+y)
		}
	}
	return strings.Join(d, "\n")
}

// TestHungExecutor: an op that outlives --op-timeout (the executor is
// SIGSTOPped) answers 503 within a few seconds; the hung executor is
// replaced, the next op succeeds, and the executor start counter says 2.
func TestHungExecutor(t *testing.T) {
	for _, backend := range []string{"bazil", "gofuse"} {
		t.Run(backend, func(t *testing.T) {
			b := startBridge(t, bridgeOpts{Backend: backend, Args: []string{"--op-timeout", "2s"}})
			b.ok(t, fsop.Op{Kind: fsop.WriteFile, Path: "before", Data: []byte("1")})
			hung := stopExecutor(t, b)

			start := time.Now()
			status, _, body, err := b.tryOp(fsop.Op{Kind: fsop.WriteFile, Path: "during", Data: []byte("2")})
			elapsed := time.Since(start)
			if err != nil || status != http.StatusServiceUnavailable {
				t.Fatalf("op on a hung executor: %d %s %v, want 503", status, body, err)
			}
			if elapsed < 1500*time.Millisecond || elapsed > 10*time.Second {
				t.Errorf("503 after %v, want about the 2 s op timeout", elapsed)
			}
			t.Logf("op on the stopped executor: 503 after %v: %s", elapsed.Round(time.Millisecond), bytes.TrimSpace(body))

			// The very next op runs on a new executor.
			start = time.Now()
			status, res, body, err := b.tryOp(fsop.Op{Kind: fsop.WriteFile, Path: "after", Data: []byte("3")})
			if err != nil || status != http.StatusOK || res.Errno != "" {
				t.Fatalf("op after the executor was replaced: %d %s %v", status, body, err)
			}
			t.Logf("next op: 200 after %v", time.Since(start).Round(time.Millisecond))
			if v, _ := b.metric(t, "lighthouse_bridge_executor_starts_total"); v != 2 {
				t.Errorf("lighthouse_bridge_executor_starts_total = %v, want 2", v)
			}
			if _, ppid, ok := procStat(hung); ok && ppid == b.PID() {
				t.Errorf("the hung executor %d is still a child of the bridge", hung)
			}
			now := executorPIDs(b.PID())
			if len(now) != 1 || now[0] == hung {
				t.Errorf("executors now %v (hung one %d), want one new executor", now, hung)
			}
			for _, name := range []string{"before", "after"} {
				if got, err := readMountFile(t, b.Mount, name); err != nil || len(got) != 1 {
					t.Errorf("read %s through the mount: %q %v", name, got, err)
				}
			}
			if status, _, err := b.get("/readyz"); err != nil || status != http.StatusOK {
				t.Errorf("/readyz after the replacement: %d %v", status, err)
			}
		})
	}
}
