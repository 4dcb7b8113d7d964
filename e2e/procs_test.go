package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/supervise"
	"github.com/lighthouse-fs/lighthouse/internal/supervise/supervisetest"
	"github.com/lighthouse-fs/lighthouse/metrics"
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
				if _, err := supervise.Detach(m.Dir); err != nil {
					t.Errorf("detach %s: %v", m.Dir, err)
				}
			}
		}
	})
	return root
}

// child is a lighthouse (or prometheus) process started by a test.
type child struct{ *supervise.Proc }

// startChild starts bin with args, its output in root/name.log, serving
// the FUSE mounts listed (checked when it stops), and waits for a log line
// containing ready; it returns that line's key=value fields. The child is
// stopped in t.Cleanup.
func startChild(t *testing.T, root, name, ready string, mounts []string, bin string, args ...string) (*child, map[string]string) {
	t.Helper()
	p, f := supervisetest.Start(t, supervisetest.Child{Config: supervise.Config{Name: name, Path: bin, Args: args, Env: childEnv(),
		Log: filepath.Join(root, name+".log"), AppendLog: true, Mounts: mounts}, Ready: ready, ReadyTimeout: readyTimeout, StopTimeout: stopTimeout})
	return &child{p}, f
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

// tail returns the last n lines of the child's log, indented.
func (c *child) tail(n int) string { return supervisetest.Tail(c.Proc, n) }

// stop ends the child now as its cleanup would (SIGTERM, then abort,
// kill, detach); the cleanup reports what went wrong.
func (c *child) stop() { c.Stop(stopTimeout) }

// kill ends the child with SIGKILL, as a crash would; its mounts stay
// behind (stale): the caller owns them.
func (c *child) kill() { c.Kill() }

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
	return startBridgeOf(t, lighthouseBin, root, backend, role, listen, bridgeSync)
}

// startBridgeOf is startBridge for the lighthouse binary bin and the fsync
// policy sync.
func startBridgeOf(t *testing.T, bin, root, backend, role, listen, sync string) *bridgeProc {
	t.Helper()
	b := &bridgeProc{backend: backend, role: role, mnt: filepath.Join(root, "mnt-"+role), data: filepath.Join(root, "data-"+role)}
	name := role
	for i := 2; ; i++ { // a restarted bridge gets a log of its own
		if _, err := os.Stat(filepath.Join(root, name+".log")); err != nil {
			break
		}
		name = fmt.Sprintf("%s-%d", role, i)
	}
	c, f := startChild(t, root, name, "bridge listening", []string{b.mnt}, bin, "bridge",
		"--backend", backend, "--role", role, "--listen", listen, "--mount", b.mnt, "--data", b.data, "--sync", sync)
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
	return startProxyOf(t, lighthouseBin, root, nil, primary, shadow, extra...)
}

// startProxyOf is startProxy for the lighthouse binary bin, serving the
// FUSE mounts listed (a front mount: checked when it stops).
func startProxyOf(t *testing.T, bin, root string, mounts []string, primary, shadow *bridgeProc, extra ...string) *proxyProc {
	t.Helper()
	args := append([]string{"proxy", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--primary", primary.url(), "--shadow", shadow.url()}, extra...)
	c, f := startChild(t, root, "proxy", "proxy listening", mounts, bin, args...)
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

// scrape reads url's Prometheus text format.
func scrape(t *testing.T, url string) metrics.Families {
	t.Helper()
	f, err := metrics.Scrape(context.Background(), url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return f
}
