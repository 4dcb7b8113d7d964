package dashboards

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"gopkg.in/yaml.v3"

	"github.com/lighthouse-fs/lighthouse/metrics"
	"github.com/lighthouse-fs/lighthouse/rollout"
)

// expression is one PromQL expression to check, and where it comes from.
type expression struct {
	where string
	expr  string // Grafana variables expanded
}

// allExpressions: every panel and annotation query of the dashboard (with
// Grafana's interval variables expanded) and every rule of rules.yml.
func allExpressions(t *testing.T) []expression {
	t.Helper()
	var out []expression
	for _, q := range Queries(Lighthouse()) {
		out = append(out, expression{q.Panel + " " + q.RefID, Expand(q.Expr, "1m", "30s", "1h")})
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			out = append(out, expression{"rules.yml " + r.Record + r.Alert, r.Expr})
		}
	}
	return out
}

// promtoolCheck writes exprs as recording rules and runs `promtool check
// rules` on them.
func promtoolCheck(t *testing.T, promtool string, exprs []expression) (string, error) {
	t.Helper()
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rs []rule
	for i, e := range exprs {
		rs = append(rs, rule{Record: fmt.Sprintf("dashboard:query_%03d", i), Expr: e.expr})
	}
	doc := map[string]any{"groups": []any{map[string]any{"name": "lighthouse-dashboard", "rules": rs}}}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	return string(out), err
}

// TestPromQLParses: Prometheus's own parser (promtool) accepts every
// expression of the dashboard and of the alert rules.
func TestPromQLParses(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; deploy/install-deps.sh installs it)")
	}
	exprs := allExpressions(t)
	out, err := promtoolCheck(t, promtool, exprs)
	if err != nil {
		var idx strings.Builder
		for i, e := range exprs {
			fmt.Fprintf(&idx, "  dashboard:query_%03d  %s: %s\n", i, e.where, e.expr)
		}
		t.Fatalf("promtool check rules: %v\n%s\nexpressions:\n%s", err, out, idx.String())
	}
	t.Logf("promtool accepted %d expressions: %s", len(exprs), strings.TrimSpace(out))

	// The check is not vacuous: promtool rejects a broken expression.
	if out, err := promtoolCheck(t, promtool, []expression{{"broken", "sum by (op (rate(x[1m]))"}}); err == nil {
		t.Fatalf("promtool accepted a broken expression:\n%s", out)
	}
}

// recordingRegisterer remembers every collector registered through it.
type recordingRegisterer struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registry.Register(c)
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// registeredNames builds the real registries of a bridge, the proxy and
// the rollout controller, each on a fresh registry with the Go and process
// collectors as the processes have, and returns every metric name they
// can export: from each collector's descriptions (so a label vector that
// has no child yet counts) and from a Gather.
func registeredNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	build := []func(prometheus.Registerer){
		func(r prometheus.Registerer) { metrics.NewBridge(r) },
		func(r prometheus.Registerer) { metrics.NewProxy(r) },
		func(r prometheus.Registerer) {
			if _, err := rollout.New(rollout.Config{Registerer: r}); err != nil {
				t.Fatal(err)
			}
		},
	}
	for _, b := range build {
		reg := &recordingRegisterer{Registry: prometheus.NewRegistry()}
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		b(reg)
		for _, c := range reg.collectors {
			ch := make(chan *prometheus.Desc, 1024)
			go func() { c.Describe(ch); close(ch) }()
			for d := range ch {
				m := fqNameRE.FindStringSubmatch(d.String())
				if m == nil {
					t.Fatalf("cannot read the metric name of %s", d)
				}
				names[m[1]] = true
			}
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			names[mf.GetName()] = true
		}
	}
	return names
}

// metricRE finds the metric names an expression uses: Lighthouse's own,
// the Go and process collectors', and recording rules (lighthouse:...).
var metricRE = regexp.MustCompile(`(?:^|[^a-zA-Z0-9_:])((?:lighthouse|process|go)_[a-zA-Z0-9_]+|lighthouse:[a-zA-Z0-9_:]+)`)

// unknownMetrics returns the names expr uses that are neither registered
// (after stripping a histogram's _bucket, _count or _sum) nor a recording
// rule of records.
func unknownMetrics(expr string, registered, records map[string]bool) []string {
	var bad []string
	for _, m := range metricRE.FindAllStringSubmatch(expr, -1) {
		name := m[1]
		if strings.Contains(name, ":") {
			if !records[name] {
				bad = append(bad, name)
			}
			continue
		}
		if registered[name] {
			continue
		}
		base := name
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			base = strings.TrimSuffix(base, suf)
		}
		if !registered[base] {
			bad = append(bad, name)
		}
	}
	return bad
}

// TestMetricNamesRegistered: every metric an expression of the dashboard or
// of rules.yml uses is registered by the code, so a renamed metric fails
// here instead of leaving a panel (or an alert) silently empty.
func TestMetricNamesRegistered(t *testing.T) {
	registered := registeredNames(t)
	for _, must := range []string{metrics.OperationsTotal, metrics.DivergenceTotal, "lighthouse_rollout_rollbacks_total", metrics.RollbacksTotalDeprecated,
		"lighthouse_proxy_mirror_skipped_total", "process_cpu_seconds_total", "go_goroutines", "process_open_fds"} {
		if !registered[must] {
			t.Fatalf("the registries do not list %s: the name collection is broken", must)
		}
	}
	records := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				records[r.Record] = true
			}
		}
	}
	used := map[string]bool{}
	for _, e := range allExpressions(t) {
		if bad := unknownMetrics(e.expr, registered, records); len(bad) > 0 {
			t.Errorf("%s uses metrics no registry exports: %v\n  %s", e.where, bad, e.expr)
		}
		for _, m := range metricRE.FindAllStringSubmatch(e.expr, -1) {
			used[m[1]] = true
		}
	}
	// The checker is not vacuous.
	if bad := unknownMetrics(`sum(rate(lighthouse_fuse_operation_totl[5m])) / lighthouse:nope:rate5m`, registered, records); len(bad) != 2 {
		t.Errorf("misspelled names not caught: %v", bad)
	}

	// Every Lighthouse metric is on the dashboard, but for the few that
	// stay empty in normal operation (a panel of them would show nothing
	// until something rare happens; the proxy logs those events).
	notShown := map[string]string{
		"lighthouse_proxy_readdir_order_differences_total": "reported, not a divergence",
		"lighthouse_proxy_log_dropped_total":               "the proxy logs a warning when a log writer falls behind",
		"lighthouse_proxy_resync_pause_seconds":            "resyncs are shown; their pause is in the proxy log",
		"lighthouse_proxy_serve_fallbacks_total":           "0 unless a serving candidate stops answering; it then shows stale on the mirror panels, and the proxy logs why",
		metrics.RollbacksTotalDeprecated:                   "deprecated name of lighthouse_rollout_rollbacks_total, which the dashboard uses",
	}
	var missing []string
	for name := range registered {
		if !strings.HasPrefix(name, "lighthouse_") || notShown[name] != "" {
			continue
		}
		if !used[name] && !used[name+"_bucket"] && !used[name+"_count"] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("metrics on no panel of the dashboard: %v (add a panel, or list them in notShown with a reason)", missing)
	}
	var shown []string
	for name := range used {
		if strings.HasPrefix(name, "lighthouse") {
			shown = append(shown, name)
		}
	}
	slices.Sort(shown)
	t.Logf("%d metric names used, all registered: %v", len(shown), shown)
}
