package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/conformance"
	"github.com/lighthouse-fs/lighthouse/internal/supervise"
	"github.com/lighthouse-fs/lighthouse/internal/supervise/supervisetest"
	"github.com/lighthouse-fs/lighthouse/internal/testbin"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// frontStack is the harness as `lighthouse up` runs it: a bazil primary
// bridge and a go-fuse shadow bridge (lighthouse children, the suite's name
// cap) behind a proxy child that serves the front mount.
type frontStack struct {
	dir    string   // the front mount
	mounts []string // every mount of the stack, the front first
	api    string   // the proxy's API, http://host:port
	proxy  int      // the pid of the proxy, which serves the front mount
}

// startFront starts the stack under dir with the lighthouse command built
// for the test. The children run under umask 022, as a shell starts them,
// while the suite's own syscalls run under 0 (mounttest.Main): a mode the
// front or a bridge's executor changed with its own umask is a difference.
// Every child is stopped, and its mounts checked, in t.Cleanup.
func startFront(t *testing.T, dir string) *frontStack {
	t.Helper()
	bin, remove, err := testbin.BuildTemp()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remove)
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	s := &frontStack{dir: filepath.Join(dir, "front")}
	var urls []string
	for _, b := range []struct{ role, backend string }{{"primary", "bazil"}, {"shadow", "gofuse"}} {
		mnt := filepath.Join(dir, b.role, "mnt")
		p, f := supervisetest.Start(t, supervisetest.Child{Config: supervise.Config{Name: "the " + b.role + " bridge", Path: bin,
			Args: []string{"bridge", "--backend", b.backend, "--role", b.role, "--listen", "127.0.0.1:0", "--mount", mnt,
				"--data", filepath.Join(dir, b.role, "data"), "--sync", "none", "--name-max", strconv.Itoa(conformance.MountNameMax)},
			Log: filepath.Join(dir, b.role+".log"), Mounts: []string{mnt}}, Ready: "bridge listening addr="})
		url := "http://" + f["addr"]
		if _, err := p.WaitHTTP(context.Background(), url+"/readyz", 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if f["active_backend"] != b.backend {
			t.Fatalf("the %s bridge serves %q, not %s", b.role, f["active_backend"], b.backend)
		}
		urls = append(urls, url)
		s.mounts = append(s.mounts, mnt)
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p, f := supervisetest.Start(t, supervisetest.Child{Config: supervise.Config{Name: "the proxy", Path: bin,
		Args: []string{"proxy", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--primary", urls[0], "--shadow", urls[1], "--mount", s.dir},
		Log:  filepath.Join(dir, "proxy.log"), Mounts: []string{s.dir}}, Ready: "proxy listening api="})
	s.api, s.proxy = "http://"+f["api"], p.Pid()
	s.mounts = append([]string{s.dir}, s.mounts...)
	return s
}

// idle waits until the proxy has compared (or skipped) every op it served
// and no mirrored op is queued, and returns its status then.
func (s *frontStack) idle(t *testing.T) proxy.Status {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := s.status()
		if err != nil {
			t.Fatal(err)
		}
		queued := 0
		for _, b := range st.Bridges {
			queued += b.QueueDepth
		}
		if st.Pending == 0 && queued == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy is not idle after 2 minutes: %d ops pending, %d queued", st.Pending, queued)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *frontStack) status() (proxy.Status, error) {
	var st proxy.Status
	resp, err := http.Get(s.api + "/v1/info")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET %s/v1/info: %s", s.api, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// checkProxy checks, once the proxy is idle, that the front's ops went
// through it and that it compared them (the coverage a run's verdict
// needs), and logs the differences it judged between the two bridges:
// the libraries' own (the mknod and renameat2 cases, allowed by the
// allowlist) show there because the front forwards those ops.
func checkProxy(t *testing.T, s *frontStack) {
	t.Helper()
	st := s.idle(t)
	t.Logf("proxy: %d ops, %d compared (coverage %.4f), %d divergent, judged by class %v, skipped %v, %d resyncs, %d read-backs",
		st.Ops, st.Compared, st.Coverage, st.Divergent, st.ByClass, st.Skipped, st.Resyncs, st.Readbacks)
	if st.Ops == 0 || st.Coverage < verdict.DefaultMinCoverage {
		t.Errorf("the proxy compared %d of the front's %d ops (coverage %.4f, skipped %v): below the verdict's %.2f",
			st.Compared, st.Ops, st.Coverage, st.Skipped, verdict.DefaultMinCoverage)
	}
}

// target is the front mount as a conformance target held to bazil: the
// front must answer as the primary's own mount does.
func (s *frontStack) target() conformance.Target {
	t := conformance.DirTarget("front", s.dir)
	t.HeldTo = "bazil"
	t.Hold = conformance.HoldProcess(s.proxy)
	t.About = "the proxy's front mount (package front, served by go-fuse), where each kernel request becomes an op that the proxy " +
		"runs on a bazil primary bridge, whose answer the front gives, and mirrors to a go-fuse shadow bridge; " +
		"the bridges run under umask 022 with the suite's name cap. It must be indistinguishable from the primary's own mount. " +
		"`lighthouse compat --case` starts no front: a front difference is reproduced by `make compat` (TestConformance, with -v for every step)."
	return t
}
