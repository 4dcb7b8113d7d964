package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/replay"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// runReplay runs `lighthouse replay args...` to the end and returns its
// stdout, stderr and exit code.
func runReplay(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, lighthouseBin, append([]string{"replay"}, args...)...)
	cmd.Dir = "/"
	cmd.Env = childEnv()
	// If the test dies, replay stops its bridges (they unmount).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("lighthouse replay %v: %v\n%s", args, err, stderr.String())
		}
		code = ee.ExitCode()
	}
	t.Logf("lighthouse replay %s: exit %d after %v\n%s%s", strings.Join(args, " "), code,
		time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	return stdout.String(), stderr.String(), code
}

var opsReplayed = regexp.MustCompile(`ops replayed\s+(\d+)`)

// TestReplayRecord: a workload through a proxy started with --record, then
// `lighthouse replay` of that file on fresh bridges (exit 0, the same
// number of ops); crafted divergence lines, one of a known difference (the
// sticky bit) and one that is not allowlisted (renameat2 leaves go-fuse's
// tree different, so a later stat differs), each reproduced; and a bad
// line, refused with its line number.
func TestReplayRecord(t *testing.T) {
	requireE2E(t)
	timed(t)
	root := testRoot(t)
	prim := startBridge(t, root, "bazil", "primary", "127.0.0.1:0")
	shad := startBridge(t, root, "gofuse", "shadow", "127.0.0.1:0")
	record := filepath.Join(root, "record.jsonl")
	px := startProxy(t, root, prim, shad, "--record", record)

	const clients = 4
	api := newAPIClient(px.url(), clients)
	sent := setup(t, api, clients)
	res := workload{clients: clients, ops: 250, seed: 6, exec: api.exec}.run(context.Background())
	api.close()
	sent += res.ops.Load()
	t.Logf("workload: %s", res)
	if res.errors.Load() != 0 {
		t.Fatalf("client errors: %v", res.errs)
	}
	st := waitProxyIdle(t, px, sent)
	t.Logf("proxy: ops %d, compared %d, divergent %d, by class %v", st.Ops, st.Compared, st.Divergent, st.ByClass)
	px.stop() // flushes the record
	if n := countLines(t, record); int64(n) != sent {
		t.Fatalf("%s has %d lines, %d ops were sent", record, n, sent)
	}

	out, _, code := runReplay(t, record, "--dir", filepath.Join(root, "replay-record"))
	if code != 0 {
		t.Errorf("replay of the record exited %d, want 0", code)
	}
	if m := opsReplayed.FindStringSubmatch(out); m == nil || m[1] != strconv.FormatInt(sent, 10) {
		t.Errorf("replay reported %v ops replayed, want %d", m, sent)
	}

	// Divergence lines, as --divergence-log writes them.
	sticky := proxy.Divergence{Time: time.Now(), Seq: 3, Class: compare.ClassAllowed,
		Op:     fsop.Op{Kind: fsop.Stat, Path: "d"},
		Recent: []fsop.Op{{Kind: fsop.Mkdir, Path: "d", Mode: 0o755}, {Kind: fsop.Chmod, Path: "d", Mode: 0o1777}}}
	drift := proxy.Divergence{Time: time.Now(), Seq: 9, Class: compare.ClassErrno,
		Op: fsop.Op{Kind: fsop.Stat, Path: "y"},
		Recent: []fsop.Op{{Kind: fsop.WriteFile, Path: "x", Data: []byte("hi")},
			{Kind: fsop.Rename, Path: "x", To: "y", Flags: fsop.RenameNoReplace}}}
	allowedFile := writeLines(t, filepath.Join(root, "allowed.jsonl"), sticky)
	out, _, code = runReplay(t, allowedFile, "--dir", filepath.Join(root, "replay-allowed"))
	if code != 0 {
		t.Errorf("replay of an allowlisted divergence exited %d, want 0", code)
	}
	if !strings.Contains(out, "line 1: seq 3 stat \"d\"") || !strings.Contains(out, "reproduced (allowed)") {
		t.Errorf("replay did not report the sticky-bit divergence as reproduced and allowed")
	}
	out, _, code = runReplay(t, allowedFile, "--json", "--dir", filepath.Join(root, "replay-json"))
	var rj replay.ReplayJSON
	if err := json.Unmarshal([]byte(out), &rj); err != nil || code != 0 || rj.Schema != replay.SchemaReplay ||
		rj.Outcome != verdict.Pass || rj.Ops != 3 || len(rj.DivergenceLines) != 1 || rj.DivergencesByClass[compare.ClassAllowed] != 1 {
		t.Errorf("replay --json: exit %d, %v, want one object of schema %s: %+v", code, err, replay.SchemaReplay, rj)
	}

	// The drift line was a false divergence the proxy once logged: after
	// bazil refused the renameat2 that go-fuse performed (allowed), the stat
	// differed. The proxy now resyncs the subtree the rename left different
	// at once: the stat after it is compared on equal copies, or (when it
	// was admitted while the resync ran) not compared. Either way replay
	// shows the line not reproduced, names the allowed rename before it,
	// and exits 0.
	bothFile := writeLines(t, filepath.Join(root, "divergences.jsonl"), sticky, drift)
	out, _, code = runReplay(t, bothFile, "--dir", filepath.Join(root, "replay-divergences"))
	if code != 0 {
		t.Errorf("replay of an allowed divergence and its follow-up exited %d, want 0", code)
	}
	if !regexp.MustCompile(`line 2: seq 9 stat "y" .*not reproduced: (both bridges answered the same|the op was not compared \(resync\)); earlier ops diverged: allowed on rename "x"`).MatchString(out) {
		t.Errorf("replay did not report line 2 as not reproduced after the allowed rename:\n%s", out)
	}

	// A bad line: the error names it, before any bridge starts.
	bad := filepath.Join(root, "bad.jsonl")
	var buf bytes.Buffer
	json.NewEncoder(&buf).Encode(proxy.Record{Seq: 1, Op: fsop.Op{Kind: fsop.Stat, Path: "."}})
	buf.WriteString(`{"seq": 2, "op": {"op": "mkdri", "path": "a"}}` + "\n")
	if err := os.WriteFile(bad, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runReplay(t, bad)
	if code != 2 || !strings.Contains(stderr, bad+":2:") || !strings.Contains(stderr, "mkdri") {
		t.Errorf("bad line 2: exit %d, stderr %q; want exit 2 (usage) and an error naming %s:2 and the op", code, stderr, bad)
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	n := 0
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func writeLines(t *testing.T, path string, lines ...proxy.Divergence) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
