package harness_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/supervise"
	"github.com/lighthouse-fs/lighthouse/internal/supervise/supervisetest"
	"github.com/lighthouse-fs/lighthouse/internal/testbin"
	"github.com/lighthouse-fs/lighthouse/report"
	"github.com/lighthouse-fs/lighthouse/report/reporttest"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// bin is the command, built on first use: `up` starts its bridges from
// its own executable, so it cannot run inside a test binary.
var built testbin.Lazy

func TestMain(m *testing.M) {
	code := m.Run()
	built.Remove()
	os.Exit(code)
}

func lighthouseBin(t *testing.T) string { return built.Get(t) }

// runUp runs `lighthouse up args...` on free ports to its end (4 minutes
// at most) and returns its report (stdout) and stderr.
func runUp(t *testing.T, bin string, args ...string) (report, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(append([]string{"up"}, args...), portFlags(freePorts(t, 4))...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	t.Logf("report:\n%s", out.String())
	return out.String(), errOut.String(), err
}

// freePorts returns n loopback addresses nothing listens on (they are
// free when returned; the test then uses them at once).
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var lns []net.Listener
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return addrs
}

func portFlags(addrs []string) []string {
	return []string{"--listen", addrs[0], "--admin", addrs[1], "--primary-listen", addrs[2], "--shadow-listen", addrs[3]}
}

// fuseMountsUnder lists every FUSE mount at or below dir, from /proc.
func fuseMountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	ms, err := fusemount.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		if m.Dir == dir || strings.HasPrefix(m.Dir, dir+"/") {
			out = append(out, m.Dir)
		}
	}
	return out
}

// TestUp runs `lighthouse up` and `lighthouse workload` as a user would.
func TestUp(t *testing.T) {
	supervisetest.RequireFUSE(t)
	if testing.Short() {
		t.Skip("builds the binary and mounts three file systems")
	}
	bin := lighthouseBin(t)
	t.Run("workload", func(t *testing.T) { testUpWorkload(t, bin) })
	t.Run("port-in-use", func(t *testing.T) { testUpPortInUse(t, bin) })
	t.Run("divergence", func(t *testing.T) { testUpDivergence(t, bin) })
	t.Run("remote-workload", func(t *testing.T) { testRemoteWorkload(t, bin) })
	t.Run("json", func(t *testing.T) { testUpJSON(t, bin) })
	t.Run("html-interrupted", func(t *testing.T) { testUpHTMLInterrupted(t, bin) })
}

// testUpWorkload runs the whole harness as `make run` does, smaller and on
// free ports: both bridges really mounted, the proxy, the front mount, the
// workload, the report, a clean stop.
func testUpWorkload(t *testing.T, bin string) {
	dir := t.TempDir()
	report, stderr, err := runUp(t, bin, "--dir", dir, "--workload", "--ops", "3000", "--clients", "4")
	if err != nil {
		t.Fatalf("lighthouse up: %v\nstderr:\n%s\nprimary log:\n%s\nshadow log:\n%s", err, stderr,
			supervise.Tail(filepath.Join(dir, "primary.log"), 30), supervise.Tail(filepath.Join(dir, "shadow.log"), 30))
	}
	for _, want := range []string{`(?m)^VERDICT: PASS`, `(?m)^  ops sent +3000$`, `(?m)^  compared +\d+ of \d+`,
		`no FUSE mount left`, `serving path, served by bazil`,
		`bazil bridge, every op on its mount`, `gofuse bridge, every op on its mount`} {
		if !regexp.MustCompile(want).MatchString(report) {
			t.Errorf("report does not match %q", want)
		}
	}
	if left := fuseMountsUnder(t, dir); len(left) > 0 {
		for _, m := range left {
			fusemount.Abort(m)
			fusemount.Unmount(m)
		}
		t.Fatalf("mounts left under %s: %v", dir, left)
	}
	for _, f := range []string{"record.jsonl", "primary.log", "shadow.log", "proxy.log", "primary/data", "shadow/data"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("after the run: %v", err)
		}
	}
}

// testUpPortInUse: a port already taken is named, with the likely cause,
// before anything is started or removed.
func testUpPortInUse(t *testing.T, bin string) {
	dir := t.TempDir()
	addrs := freePorts(t, 4)
	ln, err := net.Listen("tcp", addrs[2]) // the primary bridge's
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	keep := filepath.Join(dir, "primary", "data", "keep")
	if err := os.MkdirAll(keep, 0o755); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "run.html")
	out, err := exec.Command(bin, append([]string{"up", "--dir", dir, "--workload", "--html", page}, portFlags(addrs)...)...).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != verdict.ExitInfra {
		t.Fatalf("err %v, want exit status 4 (infrastructure); output:\n%s", err, out)
	}
	// --html writes a page even then: what failed, and no verdict, counts
	// or "None" under divergences for a run that compared nothing.
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatalf("no page for a run that failed before the proxy started: %v\noutput:\n%s", err, out)
	}
	for _, want := range []string{"failed before the proxy started", "exit status 4", "is in use by pid"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, not := range []string{`id="verdict"`, `id="divergences"`, "None."} {
		if strings.Contains(string(html), not) {
			t.Errorf("the page of a run that compared nothing has %q", not)
		}
	}
	for _, want := range []string{"primary bridge port " + addrs[2] + " is in use by pid " + strconv.Itoa(os.Getpid()) + " (", "another `lighthouse up`"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("the data of a possibly running instance was touched: %v", err)
	}
	if left := fuseMountsUnder(t, dir); len(left) > 0 {
		t.Errorf("mounts left: %v", left)
	}
}

// testUpDivergence: a shadow bridge that corrupts some reads makes the
// verdict FAIL, with exit status 1, examples in the report and the
// divergence log written.
func testUpDivergence(t *testing.T, bin string) {
	dir := t.TempDir()
	args := append([]string{"up", "--dir", dir, "--workload", "--ops", "2000", "--clients", "2", "--front=false",
		"--inject-divergence", "0.05"}, portFlags(freePorts(t, 4))...)
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	report := stdout.String()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("err %v, want exit status 1\nreport:\n%s\nstderr:\n%s", err, report, stderr.String())
	}
	for _, want := range []string{`(?m)^VERDICT: FAIL: \d+ divergences \(see .*divergences\.jsonl\)$`,
		`(?m)^    first +\S+ \S+`, `(?m)^    gofuse vs bazil|bazil vs gofuse`, `no FUSE mount left`} {
		if !regexp.MustCompile(want).MatchString(report) {
			t.Errorf("report does not match %q:\n%s", want, report)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "divergences.jsonl")); err != nil || st.Size() == 0 {
		t.Errorf("divergence log: %v", err)
	}
	if left := fuseMountsUnder(t, dir); len(left) > 0 {
		t.Errorf("mounts left: %v", left)
	}
}

// startUp runs `lighthouse up` without a workload on free ports until the
// test ends, and returns its addresses (proxy, admin, primary, shadow).
func startUp(t *testing.T, bin string, extra ...string) []string {
	t.Helper()
	dir := t.TempDir()
	addrs := freePorts(t, 4)
	args := append(append([]string{"up", "--dir", dir, "--front=false"}, portFlags(addrs)...), extra...)
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("lighthouse up did not stop on SIGINT within 30s")
		}
		if left := fuseMountsUnder(t, dir); len(left) > 0 {
			t.Errorf("mounts left: %v", left)
		}
	})
	waitListening(t, addrs[1], &out)
	return addrs
}

// waitListening waits until something listens on addr (`up`'s admin port:
// it opens once the bridges and the proxy are up), a minute at most.
func waitListening(t *testing.T, addr string, out *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lighthouse up: nothing listens on %s after a minute:\n%s", addr, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testRemoteWorkload: `lighthouse workload` against a running harness
// passes on agreeing bridges, fails when the target is not the proxy
// behind --admin, and fails on a shadow that corrupts reads.
func testRemoteWorkload(t *testing.T, bin string) {
	run := func(addrs []string, target string, extra ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"workload", "--target", "http://" + target, "--admin", "http://" + addrs[1],
			"--ops", "1500", "--clients", "4"}, extra...)...)
		out, err := cmd.Output()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &ee):
			return string(out), ee.ExitCode()
		}
		t.Fatalf("lighthouse workload: %v", err)
		return "", -1
	}
	agree := startUp(t, bin)
	if out, code := run(agree, agree[0]); code != 0 || !strings.Contains(out, "PASS") ||
		!regexp.MustCompile(`(?m)^proxy ops / compared / read back +1500 / 1500 / \d+$`).MatchString(out) {
		t.Errorf("agreeing bridges: exit %d, want 0 and 1500 compared:\n%s", code, out)
	}
	if out, code := run(agree, agree[2]); code != verdict.ExitInfra || !strings.Contains(out, "is --target that proxy?") {
		t.Errorf("target is the primary bridge, not the proxy: exit %d, want 4:\n%s", code, out)
	}
	status, err := exec.Command(bin, "status", "--admin", "http://"+agree[1], "--json").Output()
	var st report.StatusJSON
	if err != nil || json.Unmarshal(status, &st) != nil || st.Schema != report.SchemaStatus || st.Proxy == nil || st.Proxy.Ops < 1500 {
		t.Errorf("status --json: %v, want schema %s and the run's ops:\n%s", err, report.SchemaStatus, status)
	}
	corrupt := startUp(t, bin, "--inject-divergence", "0.05")
	out, code := run(corrupt, corrupt[0], "--json")
	var v verdict.RunJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("workload --json: %v:\n%s", err, out)
	}
	if code != 1 || v.Schema != verdict.SchemaRun || v.Command != "workload" || v.Outcome != verdict.Fail || v.ExitStatus != 1 ||
		v.Divergent == 0 || v.DivergencesByClass["data"] == 0 || v.Clients.OpsSent != 1500 || v.Oracle.Verified == 0 {
		t.Errorf("corrupting shadow, --json: exit %d, want 1, a FAIL with data divergences, 1500 ops sent and reads verified:\n%s", code, out)
	}
}

// testUpJSON: `up --workload --json` prints only the verdict's object on
// stdout, which parses, with what the run counted; with --html it also
// writes the run's page, which a real browser renders with a PASS.
func testUpJSON(t *testing.T, bin string) {
	dir := t.TempDir()
	page := filepath.Join(dir, "run.html")
	out, stderr, err := runUp(t, bin, "--dir", dir, "--workload", "--json", "--ops", "1500", "--clients", "2", "--front=false", "--html", page)
	if err != nil {
		t.Fatalf("lighthouse up --json: %v\nstderr:\n%s", err, stderr)
	}
	var v verdict.RunJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("stdout is not one JSON object: %v:\n%s", err, out)
	}
	if v.Schema != verdict.SchemaRun || v.Command != "up --workload" || v.Outcome != verdict.Pass || v.ExitStatus != 0 ||
		v.Ops < 1500 || v.Coverage < v.MinCoverage || v.Clients.OpsSent != 1500 || v.Oracle.Verified == 0 ||
		len(v.Oracle.Mismatches) != 0 || !v.Drained || v.Skipped == nil || v.DivergencesByClass == nil {
		t.Errorf("up --workload --json: %+v", v)
	}
	if !strings.Contains(stderr, "html report: "+page) {
		t.Errorf("stderr does not name the page:\n%s", stderr)
	}
	dom := reporttest.CheckRunPage(t, page, filepath.Join(dir, "run.png"), verdict.Pass)
	for _, want := range []string{"ops sent by the workload</td><td>1500 in ", "reads checked by the workload", "ran at nice 19 while it only mirrored"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

// testUpHTMLInterrupted: an interactive `up --html` stopped by SIGINT (a
// Ctrl-C) writes its page: the verdict on what the proxy counted (a FAIL:
// the shadow corrupts reads), and each class's first divergences with
// their lines in divergences.jsonl, which hold divergences of that class.
func testUpHTMLInterrupted(t *testing.T, bin string) {
	dir := t.TempDir()
	page := filepath.Join(dir, "run.html")
	addrs := freePorts(t, 4)
	cmd := exec.Command(bin, append([]string{"up", "--dir", dir, "--front=false", "--html", page, "--inject-divergence", "0.05"}, portFlags(addrs)...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	waitListening(t, addrs[1], &out)
	if wout, err := exec.Command(bin, "workload", "--target", "http://"+addrs[0], "--admin", "http://"+addrs[1],
		"--ops", "1500", "--clients", "2").CombinedOutput(); err == nil {
		t.Fatalf("workload against a corrupting shadow passed:\n%s", wout)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("up after SIGINT: %v\n%s", waitErr, out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("up did not stop within a minute of SIGINT:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "html report: "+page) {
		t.Errorf("output does not name the page:\n%s", out.String())
	}
	dom := reporttest.CheckRunPage(t, page, filepath.Join(dir, "run.png"), verdict.Fail)
	if !strings.Contains(dom, "Judged on the ops the proxy counted") {
		t.Errorf("the page does not say what an interactive run's verdict is taken from")
	}
	log, err := os.ReadFile(filepath.Join(dir, "divergences.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(log), "\n")
	refs := regexp.MustCompile(`<h3 id="class-(\w+)">|divergences\.jsonl:(\d+)</code>`).FindAllStringSubmatch(dom, -1)
	class, checked := "", 0
	for _, m := range refs {
		if m[1] != "" {
			class = m[1]
			continue
		}
		n, _ := strconv.Atoi(m[2])
		var d struct{ Class string }
		if n < 1 || n > len(lines) || json.Unmarshal([]byte(lines[n-1]), &d) != nil || d.Class != class {
			t.Errorf("divergences.jsonl:%d is not a divergence of class %q", n, class)
		}
		checked++
	}
	if checked == 0 {
		t.Errorf("the page refers to no line of divergences.jsonl")
	}
	if left := fuseMountsUnder(t, dir); len(left) > 0 {
		t.Errorf("mounts left: %v", left)
	}
}
