package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fusemount"
)

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 20 * time.Second
	// bridgeSync is the bridges' fsync policy: none is what a killed
	// process survives (write before ack), and keeps 100k ops fast.
	bridgeSync = "none"
)

// testRoot returns a fresh directory for the test's mounts, stores and logs,
// and checks at the very end of the test (after every child stopped) that
// no FUSE mount is left below it, detaching any it finds.
func testRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir() // removed after the check below: cleanups run last-in first-out
	t.Cleanup(func() {
		ms, err := fusemount.Mounts()
		if err != nil {
			t.Errorf("list mounts: %v", err)
			return
		}
		for _, m := range ms {
			if strings.HasPrefix(m.Dir, root+"/") {
				t.Errorf("FUSE mount left on %s after every process stopped: detaching it", m.Dir)
				fusemount.Abort(m.Dir)
				if err := fusemount.Unmount(m.Dir); err != nil {
					t.Errorf("detach %s: %v", m.Dir, err)
				}
			}
		}
	})
	return root
}

// child is a lighthouse (or prometheus) process started by a test.
type child struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	mounts  []string // FUSE mounts it serves: checked when it stops
	killed  bool     // SIGKILLed on purpose
	stopped bool
	mu      sync.Mutex
}

// startChild starts bin with args, its output in root/name.log, and waits
// for a stderr line containing ready; it returns that line's key=value
// fields. The child is stopped in t.Cleanup.
func startChild(t *testing.T, root, name, ready, bin string, args ...string) (*child, map[string]string) {
	t.Helper()
	c := &child{t: t, name: name, logPath: filepath.Join(root, name+".log"), exited: make(chan struct{})}
	logFile, err := os.OpenFile(c.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Dir = "/" // never inside a mount
	c.cmd.Env = childEnv()
	c.cmd.Stdout = logFile
	// If the test binary dies, its children stop (and unmount) too.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	fields := make(chan map[string]string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if ready != "" && strings.Contains(line, ready) {
				select {
				case fields <- parseFields(line):
				default:
				}
			}
		}
		io.Copy(logFile, stderr)
	}()
	go func() {
		<-copied
		c.cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	t.Cleanup(c.stop)
	if ready == "" {
		return c, nil
	}
	select {
	case f := <-fields:
		return c, f
	case <-c.exited:
		t.Fatalf("%s exited before it was ready (%v):\n%s", name, c.cmd.ProcessState, c.tail(40))
	case <-time.After(readyTimeout):
		t.Fatalf("%s not ready after %v:\n%s", name, readyTimeout, c.tail(40))
	}
	return nil, nil
}

// childExtraEnv is added to the next children's environment (a test that
// needs, say, an admin token sets it and clears it in t.Cleanup).
var childExtraEnv []string

// childEnv is the test's environment without the variables that would
// change what a lighthouse process runs (backend overrides, admin token),
// plus childExtraEnv.
func childEnv() []string {
	env := append([]string{}, childExtraEnv...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIGHTHOUSE_") {
			env = append(env, kv)
		}
	}
	return env
}

// parseFields returns the key=value words of a log line.
func parseFields(line string) map[string]string {
	out := map[string]string{}
	for _, w := range strings.Fields(line) {
		if k, v, ok := strings.Cut(w, "="); ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

// tail returns the last n lines of the child's log.
func (c *child) tail(n int) string {
	b, _ := os.ReadFile(c.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// stop ends the child with SIGTERM (a bridge unmounts), waits, and makes
// sure none of its mounts is left: a child that does not stop in time has
// its FUSE connections aborted, its mounts detached and is killed.
func (c *child) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.stopped = true
	t := c.t
	if !c.killed {
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(stopTimeout):
			t.Errorf("%s did not stop within %v of SIGTERM: aborting its FUSE connection and killing it\n%s", c.name, stopTimeout, c.tail(20))
			for _, m := range c.mounts {
				fusemount.Abort(m)
			}
			c.cmd.Process.Kill()
			<-c.exited
		}
	}
	for _, m := range c.mounts {
		if _, ok := fusemount.Find(m); ok {
			t.Errorf("%s left a FUSE mount on %s: detaching it", c.name, m)
			fusemount.Abort(m)
			if err := fusemount.Unmount(m); err != nil {
				t.Errorf("detach %s: %v", m, err)
			}
		}
	}
	if !c.killed && c.cmd.ProcessState != nil && !c.cmd.ProcessState.Success() {
		t.Errorf("%s exited with %v after SIGTERM:\n%s", c.name, c.cmd.ProcessState, c.tail(20))
	}
	if t.Failed() {
		t.Logf("log of %s (%s):\n%s", c.name, c.logPath, c.tail(30))
	}
}

// kill ends the child with SIGKILL, as a crash would; its mounts stay
// behind (stale) and are no longer its to check: the caller owns them.
func (c *child) kill() {
	c.mu.Lock()
	c.killed = true
	c.mounts = nil
	c.mu.Unlock()
	c.cmd.Process.Kill()
	<-c.exited
}

// bridgeProc is a `lighthouse bridge` child.
type bridgeProc struct {
	*child
	backend, role string
	mnt, data     string
	addr          string // host:port it listens on
}

func (b *bridgeProc) url() string { return "http://" + b.addr }

// startBridge starts a bridge serving backend on root/mnt-role with its
// store in root/data-role, on listen ("127.0.0.1:0": a free port), and
// waits until it is ready (/readyz: a probe file went through the mount).
func startBridge(t *testing.T, root, backend, role, listen string) *bridgeProc {
	t.Helper()
	b := &bridgeProc{backend: backend, role: role, mnt: filepath.Join(root, "mnt-"+role), data: filepath.Join(root, "data-"+role)}
	name := role
	for i := 2; ; i++ { // a restarted bridge gets a log of its own
		if _, err := os.Stat(filepath.Join(root, name+".log")); err != nil {
			break
		}
		name = fmt.Sprintf("%s-%d", role, i)
	}
	c, f := startChild(t, root, name, "bridge listening", lighthouseBin, "bridge",
		"--backend", backend, "--role", role, "--listen", listen, "--mount", b.mnt, "--data", b.data, "--sync", bridgeSync)
	c.mounts = []string{b.mnt}
	b.child, b.addr = c, f["addr"]
	if f["active_backend"] != backend {
		t.Fatalf("%s bridge runs %q, not %s:\n%s", role, f["active_backend"], backend, c.tail(20))
	}
	waitOK(t, b.url()+"/readyz", readyTimeout)
	return b
}

// proxyProc is a `lighthouse proxy` child.
type proxyProc struct {
	*child
	api, admin string // host:port
}

func (p *proxyProc) url() string      { return "http://" + p.api }
func (p *proxyProc) adminURL() string { return "http://" + p.admin }

// startProxy starts a proxy in front of primary and shadow on free ports.
func startProxy(t *testing.T, root string, primary, shadow *bridgeProc, extra ...string) *proxyProc {
	t.Helper()
	args := append([]string{"proxy", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--primary", primary.url(), "--shadow", shadow.url()}, extra...)
	c, f := startChild(t, root, "proxy", "proxy listening", lighthouseBin, args...)
	p := &proxyProc{child: c, api: f["api"], admin: f["admin"]}
	waitOK(t, p.url()+"/readyz", readyTimeout)
	return p
}

// waitOK polls url until it answers 200.
func waitOK(t *testing.T, url string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not OK after %v: %s", url, limit, last)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// metricSample is one line of a Prometheus text exposition.
type metricSample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads url's Prometheus text format.
func scrape(t *testing.T, url string) []metricSample {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	var out []metricSample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		s := metricSample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
			s.name = line[:i]
			j := strings.LastIndexByte(line, '}')
			for _, kv := range splitLabels(line[i+1 : j]) {
				if k, v, ok := strings.Cut(kv, "="); ok {
					s.labels[k] = strings.Trim(v, `"`)
				}
			}
			rest = strings.TrimSpace(line[j+1:])
		} else {
			s.name, rest, _ = strings.Cut(line, " ")
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			t.Fatalf("scrape %s: bad line %q", url, line)
		}
		s.value = v
		out = append(out, s)
	}
	return out
}

// splitLabels splits `a="x",b="y,z"` at the commas between labels.
func splitLabels(s string) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// sumMetric adds the samples of name whose labels include match.
func sumMetric(samples []metricSample, name string, match map[string]string) float64 {
	var sum float64
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range match {
			if s.labels[k] != v {
				continue next
			}
		}
		sum += s.value
	}
	return sum
}
