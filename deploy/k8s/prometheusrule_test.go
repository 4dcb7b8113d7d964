package k8s

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	rollouts "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const ruleHeader = `# Generated from deploy/prometheus/rules.yml and fleet.yml by
#   go test ./deploy/k8s -run TestPrometheusRuleMatchesRuleFiles -update
# (the test fails when this file differs from them). Edit those files.
`

// ruleFiles are the Prometheus rule files the PrometheusRule carries.
var ruleFiles = []string{"../prometheus/rules.yml", "../prometheus/fleet.yml"}

// prometheusRule builds the PrometheusRule from the rule files, each
// decoded strictly into prometheus-operator's RuleGroup.
func prometheusRule(t *testing.T) []byte {
	t.Helper()
	pr := monitoringv1.PrometheusRule{
		TypeMeta:   metav1.TypeMeta{APIVersion: "monitoring.coreos.com/v1", Kind: "PrometheusRule"},
		ObjectMeta: metav1.ObjectMeta{Name: "lighthouse"},
	}
	for _, f := range ruleFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var file struct {
			Groups []monitoringv1.RuleGroup `json:"groups"`
		}
		if err := yaml.UnmarshalStrict(b, &file); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		pr.Spec.Groups = append(pr.Spec.Groups, file.Groups...)
	}
	b, err := yaml.Marshal(pr)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(ruleHeader), b...)
}

// TestPrometheusRuleMatchesRuleFiles: base/prometheusrule.yaml holds
// exactly the groups of deploy/prometheus's rule files.
func TestPrometheusRuleMatchesRuleFiles(t *testing.T) {
	want := prometheusRule(t)
	const path = "base/prometheusrule.yaml"
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != string(want) {
		t.Errorf("%s differs from deploy/prometheus's rule files (%v): run go test ./deploy/k8s -run TestPrometheusRuleMatchesRuleFiles -update", path, err)
	}
}

// TestTemplateQueriesParse parses every query of the AnalysisTemplate and
// the Flagger MetricTemplates, their arguments filled in, with promtool
// (Prometheus's own parser), as recording rules of a throwaway file.
func TestTemplateQueriesParse(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; deploy/install-deps.sh installs it)")
	}
	fill := strings.NewReplacer(`{{args.cluster}}`, "staging", `{{ variables.cluster }}`, "staging")
	var queries []string
	b, _ := os.ReadFile("base/analysistemplate.yaml")
	var at rollouts.AnalysisTemplate
	if err := yaml.UnmarshalStrict(b, &at); err != nil {
		t.Fatal(err)
	}
	for _, m := range at.Spec.Metrics {
		queries = append(queries, m.Provider.Prometheus.Query)
	}
	b, _ = os.ReadFile("base/metrictemplates.yaml")
	for _, doc := range documents(b) {
		var mt metricTemplate
		if err := yaml.UnmarshalStrict(doc, &mt); err != nil {
			t.Fatal(err)
		}
		queries = append(queries, mt.Spec.Query)
	}
	if len(queries) != 8 {
		t.Fatalf("%d queries, want 4 in each template kind", len(queries))
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: queries\n    rules:\n")
	for _, q := range queries {
		if strings.Contains(fill.Replace(q), "{{") {
			t.Errorf("query %q: an argument is not filled in", q)
		}
		rules.WriteString("      - record: query\n        expr: '" + fill.Replace(q) + "'\n")
	}
	path := filepath.Join(t.TempDir(), "queries.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}
