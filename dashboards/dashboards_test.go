package dashboards

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "write the generated dashboard to "+FileName)

// rulesFile is the alerting and recording rules, from this directory.
const rulesFile = "../deploy/prometheus/rules.yml"

// TestCommittedJSON: the committed dashboard is exactly the generated one.
// `go generate ./dashboards` (or `go test ./dashboards -run
// TestCommittedJSON -update`) rewrites it.
func TestCommittedJSON(t *testing.T) {
	got, err := Lighthouse().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(FileName, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", FileName, len(got))
		return
	}
	committed, err := os.ReadFile(FileName)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, got) {
		t.Fatalf("%s is not what Lighthouse() generates: run `go generate ./dashboards` and commit the result\n%s",
			FileName, firstDiff(string(committed), string(got)))
	}
	if !bytes.Equal(JSON, committed) {
		t.Fatalf("the embedded dashboard differs from %s (stale build?)", FileName)
	}
}

// firstDiff shows the first differing line of two texts.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + itoa(i+1) + ":\n  committed: " + x + "\n  generated: " + y
		}
	}
	return "(same lines, different bytes)"
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestLoadRoundTrip: Load reads the committed file back into the model
// without losing anything.
func TestLoadRoundTrip(t *testing.T) {
	d, err := Load(JSON)
	if err != nil {
		t.Fatal(err)
	}
	again, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(JSON, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("Load then Marshal changed the dashboard:\n%s", firstDiff(string(JSON), string(again)))
	}
	if got, want := len(Queries(d)), len(Queries(Lighthouse())); got != want {
		t.Fatalf("Queries of the loaded dashboard: %d, of the generated one: %d", got, want)
	}
}

// TestDashboardShape checks what Grafana and the people using the
// dashboard rely on.
func TestDashboardShape(t *testing.T) {
	d := Lighthouse()
	if d.UID != "lighthouse-dual-fuse" || d.SchemaVersion != 39 {
		t.Errorf("uid %q schemaVersion %d, want lighthouse-dual-fuse 39", d.UID, d.SchemaVersion)
	}
	if len(d.Templating.List) != 1 {
		t.Fatalf("want exactly one variable (datasource), got %d", len(d.Templating.List))
	}
	if v := d.Templating.List[0]; v.Name != "datasource" || v.Type != "datasource" || v.Query != "prometheus" {
		t.Errorf("variable %+v: want name datasource, type datasource, query prometheus", v)
	}

	ids := map[int]string{}
	var occupied [][24]bool // grid cells, by row
	var rows []string
	for _, p := range d.Panels {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
			continue
		}
		for len(occupied) < g.Y+g.H {
			occupied = append(occupied, [24]bool{})
		}
		for y := g.Y; y < g.Y+g.H; y++ {
			for x := g.X; x < g.X+g.W; x++ {
				if occupied[y][x] {
					t.Errorf("panel %q overlaps another at (%d, %d)", p.Title, x, y)
				}
				occupied[y][x] = true
			}
		}
		if p.Type == "row" {
			rows = append(rows, p.Title)
			if len(p.Targets) > 0 {
				t.Errorf("row %q has queries", p.Title)
			}
			continue
		}
		if !reflect.DeepEqual(p.Datasource, PromDatasource) {
			t.Errorf("panel %q: datasource %+v, want ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if !reflect.DeepEqual(tg.Datasource, PromDatasource) {
				t.Errorf("panel %q target %s: datasource %+v, want ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
			if tg.Expr == "" || tg.RefID == "" {
				t.Errorf("panel %q: target without expr or refId: %+v", p.Title, tg)
			}
		}
	}
	wantRows := []string{"Operations", "Latency: bazil vs go-fuse", "Divergence", "Rollout", "Rollback triggers: error rate and P99", "Mirror health", "Resources"}
	if !slices.Equal(rows, wantRows) {
		t.Errorf("rows %q, want %q", rows, wantRows)
	}

	for _, a := range d.Annotations.List {
		if a.BuiltIn == 0 && !reflect.DeepEqual(a.Datasource, PromDatasource) {
			t.Errorf("annotation %q: datasource %+v, want ${datasource}", a.Name, a.Datasource)
		}
	}
	var anno []string
	for _, a := range d.Annotations.List {
		anno = append(anno, a.Expr)
	}
	if !slices.ContainsFunc(anno, func(e string) bool { return strings.Contains(e, "changes(lighthouse_rollout_rollbacks_total[1m]) > 0") }) {
		t.Errorf("no rollback annotation on changes(lighthouse_rollout_rollbacks_total[1m]) > 0: %q", anno)
	}

	// The three rollback thresholds, each as Grafana thresholds and a constant series.
	for _, c := range []struct {
		panel string
		value float64
		expr  string
	}{
		{"Divergence ratio (divergent / compared)", 0.001, "vector(0.001)"},
		{"Error rate per backend", 0.01, "vector(0.01)"},
		{"P99 per backend", 1, "vector(1)"},
	} {
		p := panelByTitle(d, c.panel)
		if p == nil {
			t.Errorf("no panel %q", c.panel)
			continue
		}
		th := p.FieldConfig.Defaults.Thresholds.Steps
		if len(th) != 2 || th[1].Value == nil || *th[1].Value != c.value || th[1].Color != "red" {
			t.Errorf("panel %q: thresholds %+v, want red at %v", c.panel, th, c.value)
		}
		if s := p.FieldConfig.Defaults.Custom.ThresholdsStyle; s == nil || s.Mode == "off" {
			t.Errorf("panel %q does not draw its threshold", c.panel)
		}
		if !slices.ContainsFunc(p.Targets, func(tg *Target) bool { return tg.Expr == c.expr }) {
			t.Errorf("panel %q has no constant series %s", c.panel, c.expr)
		}
	}
	// The divergence ratio excludes exactly the classes the rollout does.
	if r := DivergenceRatio("5m"); !strings.Contains(r, `class!~"allowed|shadow_error"`) || !strings.Contains(r, "lighthouse_proxy_compared_total") {
		t.Errorf("divergence ratio %s", r)
	}
}

func panelByTitle(d *Dashboard, title string) *Panel {
	for _, p := range d.Panels {
		if p.Title == title {
			return p
		}
	}
	return nil
}

// rules is the subset of a Prometheus rules file the tests read.
type rules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) rules {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var r rules
	if err := yaml.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return r
}

// slug is GitHub's anchor for a Markdown heading.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// TestReadme: every runbook link of the alert rules lands on a heading of
// README.md, and the README explains every panel.
func TestReadme(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+\s+(.+)$`).FindAllStringSubmatch(readme, -1) {
		if anchors[slug(m[1])] {
			t.Errorf("two headings make the anchor #%s (GitHub suffixes the second)", slug(m[1]))
		}
		anchors[slug(m[1])] = true
	}
	linked := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if rb, ok := r.Annotations["runbook"]; ok {
				m := regexp.MustCompile(`dashboards/README\.md#([a-z0-9-]+)`).FindStringSubmatch(rb)
				if m == nil {
					t.Errorf("alert %s: runbook %q does not link into dashboards/README.md", r.Alert, rb)
					continue
				}
				linked[m[1]] = true
			}
		}
	}
	for _, a := range []string{"divergence-rate", "error-rate", "latency", "rollbacks", "mirror-health"} {
		if !linked[a] {
			t.Errorf("no alert links to #%s", a)
		}
	}
	for a := range linked {
		if !anchors[a] {
			t.Errorf("rules.yml links to dashboards/README.md#%s: no such heading", a)
		}
	}
	for _, p := range Lighthouse().Panels {
		if p.Type != "row" && !strings.Contains(readme, "**"+p.Title+"**") {
			t.Errorf("README.md does not explain panel %q (want **%s**)", p.Title, p.Title)
		}
	}
}

// TestProvisioning: the Grafana provisioning files of the compose
// monitoring profile declare the Prometheus data source and load the
// folder where this directory is mounted.
func TestProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, Type, URL, Access string
			IsDefault               bool `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	readYAML(t, "../deploy/grafana/datasources/prometheus.yml", &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 {
		t.Fatalf("datasources: %+v", ds)
	}
	if d := ds.Datasources[0]; d.Type != "prometheus" || d.URL != "http://prometheus:9090" || !d.IsDefault || d.Access != "proxy" {
		t.Errorf("data source %+v: want the default prometheus at http://prometheus:9090, access proxy", d)
	}
	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Type, Folder string
			Options            struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "../deploy/grafana/dashboards/lighthouse.yml", &dp)
	if dp.APIVersion != 1 || len(dp.Providers) != 1 {
		t.Fatalf("dashboard providers: %+v", dp)
	}
	if p := dp.Providers[0]; p.Type != "file" || p.Options.Path != "/var/lib/grafana/dashboards/lighthouse" {
		t.Errorf("provider %+v: want type file, path /var/lib/grafana/dashboards/lighthouse", p)
	}
	// The README tells how to mount that path.
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "./dashboards:/var/lib/grafana/dashboards/lighthouse") {
		t.Errorf("README.md does not show the volume for %s", dp.Providers[0].Options.Path)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
