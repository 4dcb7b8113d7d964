package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"testing"
	"text/template"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

const prometheusBin = "/usr/bin/prometheus"

// promSeries is one element of a Prometheus instant query's vector.
type promSeries struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// promQuery runs an instant query through Prometheus's HTTP API.
func promQuery(t *testing.T, base, query string) []promSeries {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		t.Fatalf("query %s: %v", query, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSeries `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("query %s: %v", query, err)
	}
	if body.Status != "success" {
		t.Fatalf("query %s: %s %s", query, body.Status, body.Error)
	}
	return body.Data.Result
}

func (s promSeries) value() float64 {
	str, _ := s.Value[1].(string)
	v, _ := strconv.ParseFloat(str, 64)
	return v
}

// TestPrometheusScrapes: Debian's real Prometheus scrapes the proxy's admin
// /metrics and both bridges' /metrics every second (the config is
// deploy/prometheus/scrape.yml.tmpl); after a short workload every contract
// metric can be queried with its label names, from both libraries where it
// comes from the bridges.
func TestPrometheusScrapes(t *testing.T) {
	requireE2E(t)
	if _, err := os.Stat(prometheusBin); err != nil {
		t.Skipf("%s not found (%v): run deploy/install-deps.sh as root (it installs Debian's prometheus package), or apt-get install prometheus", prometheusBin, err)
	}
	timed(t)
	root := testRoot(t)
	prim := startBridge(t, root, "bazil", "primary", "127.0.0.1:0")
	shad := startBridge(t, root, "gofuse", "shadow", "127.0.0.1:0")
	px := startProxy(t, root, prim, shad)

	tmpl, err := template.ParseFiles(filepath.Join(moduleRoot, "deploy", "prometheus", "scrape.yml.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(root, "prometheus.yml")
	cfg, err := os.Create(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	err = tmpl.Execute(cfg, map[string]string{"Interval": "1s", "ProxyAdmin": px.admin, "Primary": prim.addr, "Shadow": shad.addr})
	if cerr := cfg.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startChild(t, root, "prometheus", "", nil, prometheusBin, "--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(root, "prometheus-data"), "--web.listen-address="+listen, "--log.level=warn")
	prom := "http://" + listen
	waitOK(t, prom+"/-/ready", 30*time.Second)

	// A divergence-free mix, then a known difference: bazil drops the
	// sticky bit from st_mode (allowlisted, counted under class allowed).
	const clients = 4
	api := newAPIClient(px.url(), clients)
	defer api.close()
	setup(t, api, clients)
	res := workload{clients: clients, ops: 300, seed: 5, exec: api.exec}.run(context.Background())
	t.Logf("workload: %s", res)
	if res.errors.Load() != 0 {
		t.Fatalf("client errors: %v", res.errs)
	}
	api.must(t, fsop.Op{Kind: fsop.Mkdir, Path: "sticky", Mode: 0o755})
	api.must(t, fsop.Op{Kind: fsop.Chmod, Path: "sticky", Mode: 0o1777})
	if st := api.must(t, fsop.Op{Kind: fsop.Stat, Path: "sticky"}); st.Stat == nil || st.Stat.Mode&0o1000 != 0 {
		t.Fatalf("stat of a 01777 directory through the proxy (bazil serves): %+v, want no sticky bit (bazil drops it)", st.Stat)
	}

	// Wait for a few scrapes of every target after the workload.
	scrapes := func() (n int, least float64) {
		least = -1
		for _, s := range promQuery(t, prom, `count_over_time(up[5s]) and up == 1`) {
			n++
			if least < 0 || s.value() < least {
				least = s.value()
			}
		}
		return n, least
	}
	for wait := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		if n, least := scrapes(); n == 3 && least >= 3 {
			break
		}
		if time.Now().After(wait) {
			n, least := scrapes()
			t.Fatalf("after 30s: %d targets up, the least scraped %v times in the last 5s (want 3 targets, 3 scrapes)", n, least)
		}
	}

	// Every series below must be there, with its label names.
	checks := []struct {
		query  string
		labels []string
		check  func([]promSeries) string // "" if fine
	}{
		{`lighthouse_fuse_operations_total`, []string{"backend", "op", "result"}, func(s []promSeries) string {
			if b := labelValues(s, "backend"); !slices.Contains(b, "bazil") || !slices.Contains(b, "gofuse") {
				return fmt.Sprintf("backends %v, want bazil and gofuse", b)
			}
			return ""
		}},
		{`lighthouse_fuse_operation_duration_seconds_bucket`, []string{"backend", "op", "le"}, func(s []promSeries) string {
			if b := labelValues(s, "backend"); !slices.Contains(b, "bazil") || !slices.Contains(b, "gofuse") {
				return fmt.Sprintf("backends %v, want bazil and gofuse", b)
			}
			return ""
		}},
		{`lighthouse_fuse_backend_active{job="lighthouse-bridge"}`, []string{"backend", "role"}, func(s []promSeries) string {
			var got []string
			for _, x := range s {
				if x.value() == 1 {
					got = append(got, x.Metric["backend"]+"/"+x.Metric["role"])
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, []string{"bazil/primary", "gofuse/shadow"}) {
				return fmt.Sprintf("active %v, want bazil/primary and gofuse/shadow", got)
			}
			return ""
		}},
		{`lighthouse_proxy_compared_total`, []string{"op"}, nil},
		{`lighthouse_proxy_operations_total`, []string{"op", "served_by", "result"}, nil},
		{`lighthouse_proxy_request_duration_seconds_bucket`, []string{"op", "served_by", "le"}, nil},
		{`lighthouse_proxy_mirror_queue_depth`, []string{"bridge"}, nil},
		{`lighthouse_proxy_mirror_lag_seconds`, []string{"bridge"}, nil},
		{`lighthouse_proxy_mirror_stale`, []string{"bridge"}, nil},
		{`lighthouse_fuse_backend_divergence_total{class="allowed"}`, []string{"op", "class"}, func(s []promSeries) string {
			for _, x := range s {
				if x.Metric["op"] == "stat" && x.value() >= 1 {
					return ""
				}
			}
			return "no op=\"stat\" series >= 1 (the sticky-bit stat)"
		}},
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range checks {
		for {
			s := promQuery(t, prom, c.query)
			problem := ""
			switch {
			case len(s) == 0:
				problem = "no series"
			default:
				for _, l := range c.labels {
					if _, ok := s[0].Metric[l]; !ok {
						problem = fmt.Sprintf("no label %q in %v", l, s[0].Metric)
					}
				}
				if problem == "" && c.check != nil {
					problem = c.check(s)
				}
			}
			if problem == "" {
				t.Logf("%s: %d series, e.g. %v", c.query, len(s), s[0].Metric)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: %s", c.query, problem)
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	for _, s := range promQuery(t, prom, `count_over_time(up[1m])`) {
		t.Logf("target %s (%s): %.0f scrapes", s.Metric["instance"], s.Metric["job"], s.value())
	}
}

// labelValues lists the distinct values of label in s.
func labelValues(s []promSeries, label string) []string {
	set := map[string]bool{}
	for _, x := range s {
		set[x.Metric[label]] = true
	}
	var out []string
	for v := range set {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
