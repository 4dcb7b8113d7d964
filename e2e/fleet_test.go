package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

const (
	alertmanagerBin = "/usr/bin/prometheus-alertmanager"
	fleetToken      = "fleet-e2e-token"
	fleetCluster    = "fleet-e2e"
	fleetNodes      = 3
	// fleetInject is the share of node 1's go-fuse read results corrupted.
	fleetInject = 0.05
	// fleetControl is how long after node 1's go-fuse bridge starts the
	// injection begins: the fleet runs clean until then (the control run).
	fleetControl = 30 * time.Second
	// fleetFiles is how many files each node's client reads in turn.
	fleetFiles = 20
)

// fleetNode is one "node": its bridges and proxy on a loopback address of
// its own (127.0.0.1x), its client's traffic, its rollout state file.
type fleetNode struct {
	name    string
	px      *proxyProc
	bridges []*bridgeProc
	state   string
}

// fleetState is the part of the rollout state (file and admin status) the
// test reads.
type fleetState struct {
	Weight     float64 `json:"weight"`
	RolledBack bool    `json:"rolled_back"`
	Decision   *struct {
		Trigger string `json:"trigger"`
		Reason  string `json:"reason"`
	} `json:"last_decision"`
}

// status is the node's rollout state through its admin API (with the token).
func (n *fleetNode) status(t *testing.T) fleetState {
	t.Helper()
	req, _ := http.NewRequest("GET", n.px.adminURL()+"/admin/status", nil)
	req.Header.Set("Authorization", "Bearer "+fleetToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st struct {
		Rollout struct {
			State fleetState `json:"state"`
		} `json:"rollout"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &st) != nil {
		t.Fatalf("%s admin status: %d %s", n.name, resp.StatusCode, b)
	}
	return st.Rollout.State
}

// startFleetNode starts a node's bridges and proxy on ip, in canary (10% of
// paths served by go-fuse), its rollout state persisted in its directory.
func startFleetNode(t *testing.T, root string, i int, shadowExtra ...string) *fleetNode {
	t.Helper()
	n := &fleetNode{name: fmt.Sprintf("node%d", i)}
	dir := filepath.Join(root, n.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ip := fmt.Sprintf("127.0.0.%d", 10+i)
	prim := startBridgeArgs(t, dir, "bazil", "primary", ip+":0")
	shad := startBridgeArgs(t, dir, "gofuse", "shadow", ip+":0", shadowExtra...)
	n.bridges = []*bridgeProc{prim, shad}
	n.state = filepath.Join(dir, "rollout-state.json")
	n.px = startProxy(t, dir, prim, shad, "--listen", ip+":0", "--admin", ip+":0", "--phase", "canary", "--state-file", n.state)
	return n
}

// traffic writes the node's files, then reads them in turn (about 250 ops
// a second) until ctx ends; the first client error is returned.
func (n *fleetNode) traffic(ctx context.Context) error {
	c := newAPIClient(n.px.url(), 1)
	defer c.close()
	for i := 0; i < fleetFiles; i++ {
		op := fsop.Op{Kind: fsop.WriteFile, Path: fmt.Sprintf("f%02d", i), Data: []byte(strings.Repeat(n.name, 64))}
		if _, err := c.exec(ctx, op); err != nil {
			return err
		}
	}
	tick := time.NewTicker(4 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if _, err := c.exec(ctx, fsop.Op{Kind: fsop.ReadFile, Path: fmt.Sprintf("f%02d", i%fleetFiles)}); err != nil && ctx.Err() == nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
	}
}

// TestFleetRollbackThroughAlertmanager: three nodes (bridges and proxy
// each, on their own loopback address), one real Prometheus evaluating
// deploy/prometheus/rules.yml and fleet.yml, one real Alertmanager
// routing action="fleet_rollback" alerts to every proxy's
// POST /admin/alertmanager with the admin token. The fleet first runs
// clean (the control run: no alert, no rollback anywhere); then node 1's
// go-fuse bridge corrupts 5% of its reads, and every proxy must roll back
// and persist it. The time from injection to the last proxy's rollback is
// logged (docs/fleet.md, "Measured"). The AnalysisTemplate's queries run
// on the same Prometheus in both phases.
func TestFleetRollbackThroughAlertmanager(t *testing.T) {
	requireE2E(t)
	for _, bin := range []string{prometheusBin, alertmanagerBin} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s not found (%v): the fleet test runs Debian's prometheus and prometheus-alertmanager; run deploy/install-deps.sh as root", bin, err)
		}
	}
	timed(t)
	root := testRoot(t)
	childExtraEnv = []string{"LIGHTHOUSE_ADMIN_TOKEN=" + fleetToken}
	t.Cleanup(func() { childExtraEnv = nil })

	var nodes []*fleetNode
	for i := fleetNodes; i >= 2; i-- {
		nodes = append(nodes, startFleetNode(t, root, i))
	}
	injectStart := time.Now().Add(fleetControl) // the injection starts no earlier
	nodes = append(nodes, startFleetNode(t, root, 1, "--inject-divergence", fmt.Sprint(fleetInject), "--inject-after", fleetControl.String()))
	prom := startFleetPrometheus(t, root, nodes, startAlertmanager(t, root, nodes))

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- n.traffic(ctx) }()
	}
	defer func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("client: %v", err)
			}
		}
	}()

	// The control run: until just before the injection, nothing fires and
	// nothing rolls back; the analysis passes on every node's evidence.
	waitFor(t, "every node's compared ops in Prometheus", time.Until(injectStart), func() bool {
		return len(promQuery(t, prom, `lighthouse:node_compared:increase1m >= 200`)) == fleetNodes
	})
	controlFrom := time.Now()
	for time.Until(injectStart) > 2*time.Second {
		time.Sleep(250 * time.Millisecond)
	}
	control := time.Since(controlFrom)
	window := fmt.Sprintf("%ds", int(control.Seconds())+1)
	if a := promQuery(t, prom, `count_over_time(ALERTS{action="fleet_rollback"}[`+window+`])`); len(a) != 0 {
		t.Errorf("control run: fleet_rollback alerts fired without any injection: %v", a)
	}
	for _, n := range nodes {
		if st := n.status(t); st.RolledBack || st.Weight != 0.10 {
			t.Errorf("control run: %s rolled back without any injection: %+v", n.name, st)
		}
	}
	if got := analysis(t, prom); got["divergence-ratio"] != 0 || got["error-ratio"] != 0 || got["coverage"] < 0.95 {
		t.Errorf("control run: the AnalysisTemplate would not pass: %v", got)
	} else {
		t.Logf("control run: AnalysisTemplate values %v", got)
	}
	t.Logf("control run: %d nodes, %v of traffic at about 250 reads/s each, 0 fleet_rollback alerts, 0 rollbacks", fleetNodes, control.Round(time.Second))

	// The injection: every proxy rolls back (node 1 may on its own trigger
	// first), the others through Alertmanager.
	rolled := map[string]time.Duration{}
	all := poll(90*time.Second, func() bool {
		for _, n := range nodes {
			if _, ok := rolled[n.name]; !ok {
				if st := n.status(t); st.RolledBack && st.Weight == 0 {
					rolled[n.name] = time.Since(injectStart)
				}
			}
		}
		return len(rolled) == len(nodes)
	})
	if !all {
		t.Fatalf("90s after the injection only these proxies rolled back (time after the injection): %v", rolled)
	}
	var fleet time.Duration
	for _, n := range nodes {
		fleet = max(fleet, rolled[n.name])
		b, err := os.ReadFile(n.state)
		var st fleetState
		if err == nil {
			err = json.Unmarshal(b, &st)
		}
		if err != nil || !st.RolledBack || st.Weight != 0 || st.Decision == nil {
			t.Fatalf("%s state file %s: %v %s", n.name, n.state, err, b)
		}
		if n.name != "node1" && st.Decision.Trigger != "fleet" {
			t.Errorf("%s rolled back by %q, want the fleet alert (trigger fleet)", n.name, st.Decision.Trigger)
		}
		t.Logf("%s rolled back %v after the injection (trigger %s): %s", n.name, rolled[n.name].Round(10*time.Millisecond), st.Decision.Trigger, st.Decision.Reason)
	}
	t.Logf("fleet rollback: %d nodes, %.0f%% of node1's go-fuse reads corrupted, every proxy rolled back and persisted it %v after the injection (control run %v: none)",
		fleetNodes, 100*fleetInject, fleet.Round(10*time.Millisecond), control.Round(time.Second))
	if control < fleet {
		t.Errorf("the control run (%v) was shorter than the time to roll back (%v): raise fleetControl", control, fleet)
	}
	// The fleet-wide ratio over 1m dilutes one node's burst: the analysis
	// fails its step once node 1's divergences weigh enough in the window.
	var got map[string]float64
	waitFor(t, "the AnalysisTemplate's divergence ratio above 0.1%", 60*time.Second, func() bool {
		got = analysis(t, prom)
		return got["divergence-ratio"] > 0.001
	})
	t.Logf("injected: AnalysisTemplate values %v, %v after the injection (the step fails)", got, time.Since(injectStart).Round(100*time.Millisecond))
}

// waitFor polls cond every 100 ms until it holds, failing after limit.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	if !poll(limit, cond) {
		t.Fatalf("%s: not after %v", what, limit)
	}
}

// poll reports whether cond held within limit, checking every 100 ms.
func poll(limit time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// startAlertmanager runs Debian's Alertmanager routing the fleet rollback
// alerts to every node's webhook, at once (group_wait 0s), with the admin
// token; it returns its address.
func startAlertmanager(t *testing.T, root string, nodes []*fleetNode) string {
	t.Helper()
	var hooks strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&hooks, "      - url: %s/admin/alertmanager\n        send_resolved: false\n        http_config:\n          authorization: {type: Bearer, credentials: %s}\n", n.px.adminURL(), fleetToken)
	}
	cfg := `route:
  receiver: nobody
  routes:
    - receiver: lighthouse-proxies
      matchers: ['action="fleet_rollback"']
      group_by: [cluster]
      group_wait: 0s
      group_interval: 1s
      repeat_interval: 1h
receivers:
  - name: nobody
  - name: lighthouse-proxies
    webhook_configs:
` + hooks.String()
	path := filepath.Join(root, "alertmanager.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startChild(t, root, "alertmanager", "", nil, alertmanagerBin, "--config.file="+path,
		"--storage.path="+filepath.Join(root, "alertmanager-data"), "--web.listen-address="+listen,
		"--cluster.listen-address=", "--log.level=warn")
	waitOK(t, "http://"+listen+"/-/ready", 30*time.Second)
	return listen
}

// startFleetPrometheus runs Debian's Prometheus scraping every node's
// proxy and bridges each second with its cluster and node labels,
// evaluating the deployed rules each second, alerting to am; it returns
// its URL.
func startFleetPrometheus(t *testing.T, root string, nodes []*fleetNode, am string) string {
	t.Helper()
	var targets strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&targets, "      - targets: ['%s', '%s', '%s']\n        labels: {cluster: %s, node: %s}\n",
			n.px.admin, n.bridges[0].addr, n.bridges[1].addr, fleetCluster, n.name)
	}
	rules := filepath.Join(moduleRoot, "deploy", "prometheus")
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: ['%s/rules.yml', '%s/fleet.yml']
alerting:
  alertmanagers:
    - static_configs: [{targets: ['%s']}]
scrape_configs:
  - job_name: lighthouse
    static_configs:
%s`, rules, rules, am, targets.String())
	path := filepath.Join(root, "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startChild(t, root, "prometheus", "", nil, prometheusBin, "--config.file="+path,
		"--storage.tsdb.path="+filepath.Join(root, "prometheus-data"), "--web.listen-address="+listen, "--log.level=warn")
	prom := "http://" + listen
	waitOK(t, prom+"/-/ready", 30*time.Second)
	return prom
}

// analysis runs the queries of deploy/k8s/base/analysistemplate.yaml (the
// cluster argument filled in) on the fleet's Prometheus; each must return
// one value.
func analysis(t *testing.T, prom string) map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "deploy", "k8s", "base", "analysistemplate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var at struct {
		Spec struct {
			Metrics []struct {
				Name     string `yaml:"name"`
				Provider struct {
					Prometheus struct {
						Query string `yaml:"query"`
					} `yaml:"prometheus"`
				} `yaml:"provider"`
			} `yaml:"metrics"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(b, &at); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range at.Spec.Metrics {
		q := strings.ReplaceAll(m.Provider.Prometheus.Query, "{{args.cluster}}", fleetCluster)
		s := promQuery(t, prom, q)
		if len(s) != 1 {
			t.Fatalf("analysis %s: %d series from %s", m.Name, len(s), q)
		}
		got[m.Name] = s[0].value()
	}
	if len(got) != 4 {
		t.Fatalf("analysis: %d metrics, want 4", len(got))
	}
	return got
}
