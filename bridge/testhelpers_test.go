package bridge_test

// Helpers for the bridge's integration tests: every test runs the real
// lighthouse binary (built once in TestMain) as separate processes with
// real FUSE mounts, and talks to them over HTTP on 127.0.0.1 only.
//
// The test process never serves a mount (the bridge processes do), so it
// may make syscalls on a bridge's mount directly. Every bridge is stopped in
// t.Cleanup: SIGTERM, then, if it hangs, abort the FUSE connection, detach
// the mount lazily and SIGKILL. TestMain fails the run if any mount a test
// started is still there at the end.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/supervise"
	"github.com/lighthouse-fs/lighthouse/internal/supervise/supervisetest"
	"github.com/lighthouse-fs/lighthouse/internal/testbin"
)

const (
	startTimeout = 30 * time.Second // until the bridge is listening and ready
	stopTimeout  = 15 * time.Second // SIGTERM until exit
	opTimeout    = 60 * time.Second // one HTTP request
)

var (
	// lighthouseBin is the binary TestMain built.
	lighthouseBin string
	// skipReason, when set, skips every test that needs a bridge.
	skipReason string

	// mountsStarted are the mount points of every bridge the tests
	// started: TestMain checks that none is left mounted.
	mountsMu      sync.Mutex
	mountsStarted = map[string]bool{}

	// httpClient is shared: keep-alive connections per bridge.
	httpClient = &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
	}}
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	switch {
	case !fileExists("/dev/fuse"):
		skipReason = "no /dev/fuse: the bridge integration tests need FUSE (Linux, root, fuse3 installed)"
	case os.Geteuid() != 0:
		skipReason = "not root: the bridge integration tests mount with go-fuse's direct mount(2) and abort connections through fusectl"
	}
	if skipReason != "" {
		fmt.Fprintln(os.Stderr, "bridge integration tests SKIPPED:", skipReason)
		return m.Run()
	}
	bin, remove, err := testbin.BuildTemp()
	if err != nil {
		fmt.Fprintln(os.Stderr, "build lighthouse:", err)
		return 1
	}
	defer remove()
	lighthouseBin = bin
	code := m.Run()
	if leaked := leakedMounts(); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: FUSE mounts left behind (now detached): %s\n", strings.Join(leaked, ", "))
		return 1
	}
	return code
}

// leakedMounts detaches and names every mount a test started that is
// still mounted.
func leakedMounts() []string {
	mountsMu.Lock()
	defer mountsMu.Unlock()
	var leaked []string
	for dir := range mountsStarted {
		left, _ := supervise.Detach(dir)
		leaked = append(leaked, left...)
	}
	return leaked
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func requireFUSE(t testing.TB) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// bridgeOpts say how to start one bridge.
type bridgeOpts struct {
	// Backend and Fallback are passed as --backend and --fallback when set.
	Backend, Fallback string
	// Role is --role (default primary).
	Role string
	// Env is added to the environment (KEY=VALUE replaces KEY). Every
	// LIGHTHOUSE_* variable of the test's own environment is removed first.
	Env []string
	// Dir holds the mount point (Dir/m) and the store (Dir/d); empty means
	// a new t.TempDir(). Restart a bridge on the same data by reusing it.
	Dir string
	// Args are more flags (--sync, --op-timeout, --max-body, ...).
	Args []string
	// Command is run by the bridge when ready (after "--").
	Command []string
	// Degraded: wait for /v1/info instead of /readyz.
	Degraded bool
	// Bin is the lighthouse binary to run (default: the one TestMain
	// built).
	Bin string
}

// bridgeProc is one running `lighthouse bridge` process.
type bridgeProc struct {
	*supervise.Proc
	URL   string // http://127.0.0.1:PORT
	Dir   string
	Mount string
	Data  string
}

// startBridge starts a bridge and waits until it is ready. The bridge is
// stopped, and its mount checked gone, in t.Cleanup.
func startBridge(t testing.TB, o bridgeOpts) *bridgeProc {
	t.Helper()
	requireFUSE(t)
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Role == "" {
		o.Role = "primary"
	}
	b := &bridgeProc{Dir: o.Dir, Mount: filepath.Join(o.Dir, "m"), Data: filepath.Join(o.Dir, "d")}
	args := []string{"bridge", "--listen", "127.0.0.1:0", "--mount", b.Mount, "--data", b.Data, "--role", o.Role}
	if o.Backend != "" {
		args = append(args, "--backend", o.Backend)
	}
	if o.Fallback != "" {
		args = append(args, "--fallback", o.Fallback)
	}
	args = append(args, o.Args...)
	if len(o.Command) > 0 {
		args = append(append(args, "--"), o.Command...)
	}
	logFile, err := os.CreateTemp(o.Dir, "bridge-*.log") // a restarted bridge gets its own
	if err != nil {
		t.Fatal(err)
	}
	logFile.Close()
	bin := lighthouseBin
	if o.Bin != "" {
		bin = o.Bin
	}
	mountsMu.Lock()
	mountsStarted[b.Mount] = true
	mountsMu.Unlock()
	p, f := supervisetest.Start(t, supervisetest.Child{Config: supervise.Config{Name: "bridge " + strings.Join(args[1:], " "),
		Path: bin, Args: args, Env: bridgeEnv(o.Env), Log: logFile.Name(), Mounts: []string{b.Mount}},
		Ready: "bridge listening addr=", ReadyTimeout: startTimeout, StopTimeout: stopTimeout})
	b.Proc, b.URL = p, "http://"+f["addr"]
	ready := "/readyz"
	if o.Degraded {
		ready = "/v1/info"
	}
	if _, err := p.WaitHTTP(context.Background(), b.URL+ready, startTimeout); err != nil {
		t.Fatal(err)
	}
	return b
}

// PID is the bridge's process id.
func (b *bridgeProc) PID() int { return b.Pid() }

// bridgeEnv is the test's environment without LIGHTHOUSE_* variables, with
// extra applied on top.
func bridgeEnv(extra []string) []string {
	env := map[string]string{}
	var order []string
	set := func(kv string) {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIGHTHOUSE_") {
			set(kv)
		}
	}
	for _, kv := range extra {
		set(kv)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out
}

// --- HTTP ---

func (b *bridgeProc) get(path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.URL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	return doRequest(req)
}

func doRequest(req *http.Request) (int, []byte, error) {
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, body, fmt.Errorf("read response body: %w", err)
	}
	return resp.StatusCode, body, nil
}

// postRaw sends body to POST /v1/ops.
func (b *bridgeProc) postRaw(body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.URL+"/v1/ops", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return doRequest(req)
}

func encodeOps(ops []fsop.Op, batch bool) []byte {
	var buf bytes.Buffer
	if err := fsop.EncodeRequest(&buf, ops, batch); err != nil {
		panic(fmt.Sprintf("encode %+v: %v", ops, err))
	}
	return buf.Bytes()
}

// tryOp sends one op. A 200 is decoded into the result; any other status
// comes back with its body. Safe to call from any goroutine.
func (b *bridgeProc) tryOp(op fsop.Op) (int, fsop.Result, []byte, error) {
	status, body, err := b.postRaw(encodeOps([]fsop.Op{op}, false))
	if err != nil {
		return status, fsop.Result{}, body, err
	}
	var res fsop.Result
	if status == http.StatusOK {
		if err := json.Unmarshal(body, &res); err != nil {
			return status, res, body, fmt.Errorf("decode result %q: %w", body, err)
		}
	}
	return status, res, body, nil
}

// op sends one op and requires HTTP 200; the result may carry an errno.
func (b *bridgeProc) op(t testing.TB, op fsop.Op) fsop.Result {
	t.Helper()
	status, res, body, err := b.tryOp(op)
	if err != nil || status != http.StatusOK {
		t.Fatalf("%s %s: %d %s %v", op.Kind, op.Path, status, body, err)
	}
	return res
}

// ok sends one op and requires success (HTTP 200, errno "").
func (b *bridgeProc) ok(t testing.TB, op fsop.Op) fsop.Result {
	t.Helper()
	res := b.op(t, op)
	if res.Errno != "" {
		t.Fatalf("%s %s: %s", op.Kind, op.Path, res.Errno)
	}
	return res
}

// batch sends ops as one {"ops": [...]} request and requires HTTP 200.
func (b *bridgeProc) batch(t testing.TB, ops ...fsop.Op) []fsop.Result {
	t.Helper()
	status, body, err := b.postRaw(encodeOps(ops, true))
	if err != nil || status != http.StatusOK {
		t.Fatalf("batch of %d: %d %s %v", len(ops), status, body, err)
	}
	var out struct {
		Results []fsop.Result `json:"results"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("decode batch results %q: %v", body, err)
	}
	if len(out.Results) != len(ops) {
		t.Fatalf("batch of %d ops: %d results", len(ops), len(out.Results))
	}
	return out.Results
}

// info is GET /v1/info.
type info struct {
	ActiveBackend string `json:"active_backend"`
	Backend       string `json:"backend"`
	Fallback      string `json:"fallback"`
	Role          string `json:"role"`
	Mount         string `json:"mount"`
	Degraded      bool   `json:"degraded"`
	Inodes        int    `json:"inodes"`
	PID           int    `json:"pid"`
}

func (b *bridgeProc) info(t testing.TB) info {
	t.Helper()
	status, body, err := b.get("/v1/info")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /v1/info: %d %s %v", status, body, err)
	}
	var in info
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatalf("decode /v1/info %q: %v", body, err)
	}
	return in
}

// metric returns the value of the sample whose name and labels are exactly
// series (`name{k="v",...}` as the text format writes it), and whether it
// is there.
func (b *bridgeProc) metric(t testing.TB, series string) (float64, bool) {
	t.Helper()
	status, body, err := b.get("/metrics")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", status, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, value, ok := strings.Cut(line, " "); ok && name == series {
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v, true
		}
	}
	return 0, false
}

// --- mount access from the test process ---

// guard runs fn, a syscall on mount; if it takes longer than d the FUSE
// connection is aborted (so fn fails with ENOTCONN) and the test fails,
// instead of hanging.
func guard(t testing.TB, mount string, d time.Duration, fn func()) {
	t.Helper()
	timer := time.AfterFunc(d, func() {
		t.Errorf("syscall on %s hung for %v: FUSE connection aborted", mount, d)
		fusemount.Abort(mount)
	})
	defer timer.Stop()
	fn()
}

// readMountFile reads name through the mount, directly from this process.
func readMountFile(t testing.TB, mount, name string) ([]byte, error) {
	t.Helper()
	var data []byte
	var err error
	guard(t, mount, 20*time.Second, func() { data, err = os.ReadFile(filepath.Join(mount, name)) })
	return data, err
}

// --- processes ---

// childPIDs lists the children of pid (every thread's).
func childPIDs(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// executorPIDs are the children of a bridge started as executors
// (LIGHTHOUSE_EXECUTOR in their environment).
func executorPIDs(bridgePID int) []int {
	var out []int
	for _, c := range childPIDs(bridgePID) {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", c))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.HasPrefix(kv, []byte("LIGHTHOUSE_EXECUTOR=")) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// procStat returns the state letter and parent pid of pid from
// /proc/PID/stat.
func procStat(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0][0], ppid, true
}

// stopExecutor SIGSTOPs the executor of bridge b (as a hung one would
// behave) and returns its pid; it is killed at the end of the test if it
// is still b's child.
func stopExecutor(t *testing.T, b *bridgeProc) int {
	t.Helper()
	execs := executorPIDs(b.PID())
	if len(execs) != 1 {
		t.Fatalf("executor children of bridge %d: %v, want exactly one", b.PID(), execs)
	}
	hung := execs[0]
	t.Cleanup(func() {
		// Never leave a stopped process behind.
		if _, ppid, ok := procStat(hung); ok && ppid == b.PID() {
			syscall.Kill(hung, syscall.SIGKILL)
		}
	})
	if err := syscall.Kill(hung, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { s, _, _ := procStat(hung); return s == 'T' }) {
		t.Fatalf("executor %d did not stop", hung)
	}
	return hung
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Terminate sends SIGTERM and waits up to stopTimeout for the exit; it
// reports whether the process exited in time.
func (b *bridgeProc) Terminate() bool {
	b.Signal(syscall.SIGTERM)
	select {
	case <-b.Exited():
		return true
	case <-time.After(stopTimeout):
		return false
	}
}
