package dashboards

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/chromium"
	"github.com/lighthouse-fs/lighthouse/internal/supervise"
	"github.com/lighthouse-fs/lighthouse/internal/supervise/supervisetest"
	"github.com/lighthouse-fs/lighthouse/internal/testbin"
)

// The end-to-end test runs the real lighthouse binary (built by TestMain):
// a bazil and a go-fuse bridge on real FUSE mounts, the proxy in front of
// them, and Debian's Prometheus scraping all three every second, then runs
// every query of the dashboard through Prometheus's HTTP API.

var (
	lighthouseBin string
	e2eSkip       string
	reportPNG     = flag.String("report-png", "", "also screenshot the HTML report of the end-to-end run to this PNG (docs/report.png), with headless Chromium")
)

const prometheusBin = "/usr/bin/prometheus"

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	switch {
	case testing.Short():
		e2eSkip = "-short"
	case *update:
		e2eSkip = "-update only regenerates " + FileName
	case !exists(prometheusBin):
		e2eSkip = prometheusBin + " missing (Debian package prometheus)"
	case !exists("/dev/fuse"):
		e2eSkip = "no /dev/fuse: the end-to-end test mounts real FUSE filesystems"
	}
	if e2eSkip != "" {
		return m.Run()
	}
	bin, remove, err := testbin.BuildTemp()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer remove()
	lighthouseBin = bin
	return m.Run()
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// start runs bin with args, logging to dir/name.log, serving the FUSE
// mounts listed, and waits for a log line containing ready ("" for none);
// it returns that line's key=value fields. It is stopped (SIGTERM, then
// abort and SIGKILL) in t.Cleanup, and its mounts checked.
func start(t *testing.T, dir, name, ready string, mounts []string, bin string, args ...string) (*supervise.Proc, map[string]string) {
	t.Helper()
	return supervisetest.Start(t, supervisetest.Child{Config: supervise.Config{Name: name, Path: bin, Args: args,
		Log: filepath.Join(dir, name+".log"), Mounts: mounts}, Ready: ready})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitOK(t *testing.T, u string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not OK after 30s: %v", u, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// post sends a JSON body and decodes the JSON answer into out (if not nil).
func post(u string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err := http.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", u, resp.Status, bytes.TrimSpace(rb))
	}
	if out != nil {
		return json.Unmarshal(rb, out)
	}
	return nil
}

type opResult struct {
	Errno string `json:"errno"`
	Data  []byte `json:"data"`
}

// harness is the running system.
type harness struct {
	dir                  string
	primary, shadow      string // bridge host:port
	api, admin           string // proxy
	prom                 string // Prometheus base URL
	opsURL               string
	started, workloadEnd time.Time
	// quiet is held for reading by each batch of the background workload
	// and for writing while the proxy must drain (divergeAndResync).
	quiet sync.RWMutex
}

// batch runs ops through the proxy.
func (h *harness) batch(ops ...map[string]any) ([]opResult, error) {
	return batchAt(h.opsURL, ops...)
}

// batchAt runs ops through the ops endpoint at url (the proxy's, or a
// bridge's own behind the proxy's back).
func batchAt(url string, ops ...map[string]any) ([]opResult, error) {
	var out struct {
		Results []opResult `json:"results"`
	}
	err := post(url, map[string]any{"ops": ops}, &out)
	return out.Results, err
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// startServers starts a bazil primary and a go-fuse shadow bridge on real
// mounts and the proxy in front of them, each a process of the binary.
func startServers(t *testing.T) *harness {
	t.Helper()
	h := &harness{dir: t.TempDir(), started: time.Now()}
	t.Cleanup(func() { // after every process stopped (cleanups run last-in first-out)
		ms, _ := fusemount.Mounts()
		for _, m := range ms {
			if strings.HasPrefix(m.Dir, h.dir+"/") {
				t.Errorf("FUSE mount left on %s", m.Dir)
				supervise.Detach(m.Dir)
			}
		}
	})
	bridge := func(backend, role string) string {
		mnt := filepath.Join(h.dir, "mnt-"+role)
		p, f := start(t, h.dir, role, "bridge listening", []string{mnt}, lighthouseBin, "bridge",
			"--backend", backend, "--role", role, "--listen", "127.0.0.1:0", "--mount", mnt)
		if f["active_backend"] != backend {
			t.Fatalf("%s bridge runs %q, not %s:\n%s", role, f["active_backend"], backend, supervisetest.Tail(p, 20))
		}
		waitOK(t, "http://"+f["addr"]+"/readyz")
		return f["addr"]
	}
	h.primary, h.shadow = bridge(PrimaryBackend, "primary"), bridge(CandidateBackend, "shadow")
	_, f := start(t, h.dir, "proxy", "proxy listening", nil, lighthouseBin, "proxy",
		"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--primary", "http://"+h.primary, "--shadow", "http://"+h.shadow, "--phase", "shadow",
		// Every mutation read back: the read-back panels chart each, and
		// divergeAndResync's wait for them is exercised on every write.
		"--readback-rate", "1")
	h.api, h.admin = f["api"], f["admin"]
	h.opsURL = "http://" + h.api + "/v1/ops"
	waitOK(t, "http://"+h.api+"/readyz")
	return h
}

// startHarness starts two bridges, the proxy and a Prometheus scraping
// them every second.
func startHarness(t *testing.T) *harness {
	t.Helper()
	h := startServers(t)
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: bridge
    static_configs: [{targets: [%q, %q]}]
  - job_name: proxy
    static_configs: [{targets: [%q]}]
`, rules, h.primary, h.shadow, h.admin)
	cfgPath := filepath.Join(h.dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := freeAddr(t)
	start(t, h.dir, "prometheus", "", nil, prometheusBin, "--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(h.dir, "tsdb"), "--web.listen-address="+promAddr)
	h.prom = "http://" + promAddr
	waitOK(t, h.prom+"/-/ready")
	// Every target scraped once before the workload: counters then start at 0.
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := h.query(`count(up == 1)`, time.Now())
		if err == nil && len(res) == 1 && res[0].Value[1] == "3" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus does not scrape the 3 targets: %v %v", res, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	return h
}

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant query through Prometheus's HTTP API.
func (h *harness) query(expr string, at time.Time) ([]sample, error) {
	v := url.Values{"query": {expr}, "time": {fmt.Sprintf("%.3f", float64(at.UnixMilli())/1000)}}
	resp, err := http.Get(h.prom + "/api/v1/query?" + v.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("%s: %s", out.Status, out.Error)
	}
	if out.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %s, want vector", out.Data.ResultType)
	}
	var res []sample
	return res, json.Unmarshal(out.Data.Result, &res)
}

// value of the series of res whose labels include want, "" if none.
func valueOf(res []sample, want map[string]string) string {
	for _, s := range res {
		ok := true
		for k, v := range want {
			ok = ok && s.Metric[k] == v
		}
		if ok {
			return fmt.Sprint(s.Value[1])
		}
	}
	return ""
}

// workload runs client traffic through the proxy until stop is closed:
// writers, readers, renames and unlinks in a directory per worker.
func (h *harness) workload(t *testing.T, workers int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for c := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := fmt.Sprintf("w%d", c)
			if _, err := h.batch(map[string]any{"op": "mkdir", "path": d}); err != nil {
				t.Errorf("workload: %v", err)
				return
			}
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				f, g := fmt.Sprintf("%s/f%d", d, n%16), fmt.Sprintf("%s/g%d", d, n%16)
				payload := make([]byte, 64+rng.IntN(8192))
				for i := range payload {
					payload[i] = byte('a' + rng.IntN(26))
				}
				h.quiet.RLock()
				_, err := h.batch(
					map[string]any{"op": "write_file", "path": f, "data": b64(payload)},
					map[string]any{"op": "read_file", "path": f},
					map[string]any{"op": "stat", "path": f},
					map[string]any{"op": "append", "path": f, "data": b64(payload[:32])},
					map[string]any{"op": "read", "path": f, "offset": 16, "length": 512},
					map[string]any{"op": "readdir", "path": d},
					map[string]any{"op": "rename", "path": f, "to": g},
					map[string]any{"op": "lstat", "path": g},
					map[string]any{"op": "unlink", "path": g},
					map[string]any{"op": "stat", "path": f}, // ENOENT on both: an errno result
				)
				h.quiet.RUnlock()
				if err != nil {
					t.Errorf("workload: %v", err)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	return &wg
}

// adminStatus is the part of GET /admin/status the test reads.
type adminStatus struct {
	Rollout struct {
		State struct {
			Phase string `json:"phase"`
		} `json:"state"`
	} `json:"rollout"`
	Proxy struct {
		Resyncs int64 `json:"resyncs"`
		Pending int64 `json:"pending"`
	} `json:"proxy"`
}

func (h *harness) status(t *testing.T) adminStatus {
	t.Helper()
	resp, err := http.Get("http://" + h.admin + "/admin/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st adminStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// must runs ops and checks each answers the errno wanted ("" for success).
func (h *harness) must(t *testing.T, want []string, ops ...map[string]any) {
	t.Helper()
	res, err := h.batch(ops...)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Errno != want[i] {
			t.Fatalf("op %v: errno %q, want %q", ops[i], r.Errno, want[i])
		}
	}
}

// divergeAndResync shows both kinds of difference the panels chart. An
// allowed one: bazil's missing RENAME_NOREPLACE answers EINVAL where go-fuse
// performs the rename; the proxy counts it as allowed and undoes it on
// go-fuse, so the stat and unlink that follow are compared. And a lost
// write: the shadow loses a file behind the proxy's back (through its own
// API); an operator's resync of the subtree audits it (a divergence of
// class audit) before copying the record's copy, and a handle opened before
// the resync is reopened on the resynced bridge and stays mirrored.
func (h *harness) divergeAndResync(t *testing.T, k int) {
	t.Helper()
	d := fmt.Sprintf("ev%d", k)
	handle := 1000 + k
	h.must(t, []string{"", "", "", ""},
		map[string]any{"op": "mkdir", "path": d},
		map[string]any{"op": "write_file", "path": d + "/h", "data": b64([]byte("handle"))},
		map[string]any{"op": "write_file", "path": d + "/a", "data": b64([]byte("x"))},
		map[string]any{"op": "open", "path": d + "/h", "handle": handle, "flags": 2})
	h.must(t, []string{"EINVAL", "ENOENT", "ENOENT", ""},
		map[string]any{"op": "rename", "path": d + "/a", "to": d + "/b", "flags": 1},
		map[string]any{"op": "stat", "path": d + "/b"},
		map[string]any{"op": "unlink", "path": d + "/b"},
		// Ordered after the rename (and its undo) on the shadow: same name.
		map[string]any{"op": "write_file", "path": d + "/a", "data": b64([]byte("y"))})

	// Once that write has been judged, read-back included, the shadow
	// loses the file. Lost before a read-back of the write (one mutation in
	// ten is read back) ran, the loss would be that read-back's divergence
	// (class state) and the resync's audit would find it already known:
	// the workload pauses until nothing is pending.
	func() {
		h.quiet.Lock()
		defer h.quiet.Unlock() // also when a check below fails
		deadline := time.Now().Add(10 * time.Second)
		for h.status(t).Proxy.Pending != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the proxy still has %d ops pending 10s after the workload paused", h.status(t).Proxy.Pending)
			}
			time.Sleep(20 * time.Millisecond)
		}
		shadowOps := "http://" + h.shadow + "/v1/ops"
		if res, err := batchAt(shadowOps, map[string]any{"op": "read_file", "path": d + "/a"}); err != nil || len(res) != 1 || string(res[0].Data) != "y" {
			t.Fatalf("the shadow does not hold %s/a = \"y\" once the proxy has compared it: %+v %v", d, res, err)
		}
		if res, err := batchAt(shadowOps, map[string]any{"op": "unlink", "path": d + "/a"}); err != nil || len(res) != 1 || res[0].Errno != "" {
			t.Fatalf("unlink %s/a on the shadow: %+v %v", d, res, err)
		}
	}()

	before := h.status(t).Proxy.Resyncs
	h.adminPost(t, "/admin/resync", map[string]any{"bridge": CandidateBackend, "subtree": d})
	if after := h.status(t).Proxy.Resyncs; after <= before {
		t.Fatalf("resyncs %d after POST /admin/resync, %d before", after, before)
	}
	h.must(t, []string{"", ""},
		map[string]any{"op": "pread", "handle": handle, "offset": 0, "length": 6},
		map[string]any{"op": "close", "handle": handle})
}

func (h *harness) adminPost(t *testing.T, path string, body any) {
	t.Helper()
	if err := post("http://"+h.admin+path, body, nil); err != nil {
		t.Fatal(err)
	}
}

// e2eWindows are what Grafana's variables stand for in the end-to-end
// queries: rate windows of 30 s (1 s scrapes), the whole run as the range.
const (
	e2eRate     = "30s"
	e2eInterval = "5s"
	e2eRange    = "5m"
)

// TestPanelsEndToEnd runs every query of the dashboard against Prometheus
// scraping a real harness and requires each to return series.
func TestPanelsEndToEnd(t *testing.T) {
	if e2eSkip != "" {
		t.Skip(e2eSkip)
	}
	t0 := time.Now()
	h := startHarness(t)
	t.Logf("harness up in %v: bridges %s (bazil) %s (gofuse), proxy %s admin %s, prometheus %s",
		time.Since(t0).Round(time.Millisecond), h.primary, h.shadow, h.api, h.admin, h.prom)

	stop := make(chan struct{})
	wg := h.workload(t, 3, stop)
	stopOnce := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopOnce)
	at := func(d time.Duration) { time.Sleep(time.Until(h.started.Add(d))) }

	at(6 * time.Second)
	// The allowlisted divergence: bazil drops the sticky bit.
	h.must(t, []string{"", "", ""},
		map[string]any{"op": "mkdir", "path": "sticky"},
		map[string]any{"op": "chmod", "path": "sticky", "mode": 0o1777},
		map[string]any{"op": "stat", "path": "sticky"})
	for k, when := range []time.Duration{9, 16, 23} {
		at(when * time.Second)
		h.divergeAndResync(t, k)
	}
	at(28 * time.Second)
	h.adminPost(t, "/admin/promote", map[string]string{"phase": "canary", "reason": "dashboards e2e"})
	at(40 * time.Second)
	h.adminPost(t, "/admin/rollback?reason=dashboards+e2e", nil)
	if ph := h.status(t).Rollout.State.Phase; ph != "shadow" {
		t.Fatalf("phase after the rollback: %s", ph)
	}
	at(46 * time.Second)
	stopOnce()
	h.workloadEnd = time.Now()
	time.Sleep(3 * time.Second) // a few more scrapes
	end := time.Now()

	type row struct {
		panel string
		n     int
	}
	var rows []row
	results := map[string][]sample{}
	for _, qu := range Queries(Lighthouse()) {
		expr := Expand(qu.Expr, e2eRate, e2eInterval, e2eRange)
		res, err := h.query(expr, end)
		name := qu.Panel + " [" + qu.RefID + "]"
		if err != nil {
			t.Errorf("%s: %v\n  %s", name, err, expr)
			continue
		}
		if len(res) == 0 {
			t.Errorf("%s: no series\n  %s", name, expr)
		}
		rows = append(rows, row{name, len(res)})
		results[qu.Panel+" "+qu.RefID] = res
	}
	var tab strings.Builder
	tw := tabwriter.NewWriter(&tab, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "panel [query]\tseries")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\n", r.panel, r.n)
	}
	tw.Flush()
	t.Logf("%d queries, each run through %s/api/v1/query:\n%s", len(rows), h.prom, tab.String())

	// What the workload did shows as it should.
	for _, c := range []struct {
		query string
		want  map[string]string
		value string // "" for any, ">=N" for at least N
	}{
		{"Rollbacks in range by trigger A", map[string]string{"trigger": "manual"}, "1"},
		{"Phase A", map[string]string{"phase": "shadow"}, "1"},
		{"Proxy operations by served_by A", map[string]string{"served_by": CandidateBackend}, ""},
		{"Divergences since proxy start A", map[string]string{"class": "allowed", "op": "stat"}, ""},
		{"Divergences since proxy start A", map[string]string{"class": "allowed", "op": "rename"}, "3"},
		{"Divergences since proxy start A", map[string]string{"class": "errno", "op": "unlink"}, "0"},
		{"Divergences since proxy start A", map[string]string{"class": "audit"}, ""},
		{"Resync audit differences (cumulative) A", map[string]string{"bridge": CandidateBackend, "result": "counted"}, ">=3"},
		{"Resyncs (cumulative) A", map[string]string{"bridge": CandidateBackend, "result": "ok"}, ">=3"},
		{"annotation: Rollbacks Anno", map[string]string{"trigger": "manual"}, ""},
	} {
		got := valueOf(results[c.query], c.want)
		ok := got != ""
		if least, isMin := strings.CutPrefix(c.value, ">="); isMin {
			g, _ := strconv.ParseFloat(got, 64)
			l, _ := strconv.ParseFloat(least, 64)
			ok = ok && g >= l
		} else if c.value != "" {
			ok = ok && got == c.value
		}
		if !ok {
			t.Errorf("%s %v: value %q, want %q; all: %v", c.query, c.want, got, c.value, results[c.query])
		}
	}

	// The HTML report of the same run, from the same Prometheus.
	html := filepath.Join(h.dir, "report.html")
	cmd := exec.Command(lighthouseBin, "report", "--html", html, "--prometheus", h.prom,
		"--since", time.Since(h.started).Round(time.Second).String(), "--step", "1s", "--rate-window", "10s",
		"--admin", "http://"+h.admin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lighthouse report: %v\n%s", err, out)
	}
	checkReportInChromium(t, html, *reportPNG)
}

// checkReportInChromium loads the report in headless Chromium: the DOM it
// builds must hold both charts; png, if set, gets a screenshot.
func checkReportInChromium(t *testing.T, html, png string) {
	t.Helper()
	if _, err := os.Stat(chromium.Path); err != nil {
		t.Logf("chromium not installed: the report is not rendered")
		return
	}
	dom := chromium.DOM(t, html)
	for _, id := range []string{"divergence-chart", "latency-chart", "weight-chart"} {
		if !strings.Contains(dom, `<svg id="`+id+`"`) {
			t.Errorf("the DOM Chromium built from the report has no <svg id=%q>", id)
		}
	}
	if png != "" {
		chromium.Screenshot(t, html, png, 1280, 1600) // fails the test without a decodable PNG
		t.Logf("screenshot of the report: %s", png)
	}
}
