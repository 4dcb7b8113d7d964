package report

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/internal/chromium"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

func pts(step time.Duration, vs ...float64) []Point {
	var out []Point
	for i, v := range vs {
		out = append(out, Point{T: t0.Add(time.Duration(i) * step), V: v})
	}
	return out
}

// divergenceChart is fixed data: the ratio climbs to 0.2% (twice the
// threshold), with a gap.
func divergenceChart() Chart {
	return Chart{ID: "divergence-chart", Title: "Divergence ratio", Unit: Percent, From: t0, To: t0.Add(4 * time.Minute),
		Series: []Series{
			{Name: "divergent / compared", Points: pts(time.Minute, 0.002, 0.0005, math.NaN(), 0, 0.001)},
			{Name: "other", Points: pts(time.Minute, 0, 0, 0, 0, 0)},
		},
		Thresholds: []Threshold{{Value: 0.001, Label: "rollback threshold 0.1%"}},
		Markers:    []Marker{{T: t0.Add(2 * time.Minute), Label: "rollback (manual)"}},
	}
}

func latencyChart() Chart {
	return Chart{ID: "latency-chart", Title: "Latency", Unit: Seconds, Log: true, From: t0, To: t0.Add(2 * time.Minute),
		Series: []Series{
			{Name: "bazil p50", Points: pts(time.Minute, 0.001, 0.002, 0.0015)},
			{Name: "gofuse p99", Points: pts(time.Minute, 0.5, 0.05, 0)}, // 0 cannot be drawn on a log axis
		},
		Thresholds: []Threshold{{Value: 1, Label: "P99 rollback threshold 1s"}},
	}
}

// elements returns the start tags of the tag elements of class class.
func elements(svg, tag, class string) []string {
	return regexp.MustCompile(`<`+tag+` class="`+class+`"[^>]*>`).FindAllString(svg, -1)
}

// attr returns the value of attribute name of a start tag.
func attr(el, name string) string {
	m := regexp.MustCompile(` ` + name + `="([^"]*)"`).FindStringSubmatch(el)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestSVGLinear(t *testing.T) {
	svg := SVG(divergenceChart())
	if !strings.HasPrefix(svg, `<svg id="divergence-chart"`) || !strings.HasSuffix(svg, "</svg>") {
		t.Fatalf("not one svg element with the chart's id:\n%.200s", svg)
	}
	// The axis runs from 0 to a round number above 0.2% * 1.15: 0.25%.
	// The plot is 280 units high (20 to 300), so the 0.1% threshold sits
	// at 300 - 0.1/0.25*280 = 188.
	plotH := float64(PlotBottom - PlotTop)
	wantY := float64(PlotBottom) - 0.001/0.0025*plotH
	if wantY != 188 {
		t.Fatalf("layout changed: threshold expected at %v", wantY)
	}
	th := elements(svg, "line", "threshold")
	if len(th) != 1 {
		t.Fatalf("want 1 threshold line, got %d: %q", len(th), th)
	}
	for _, a := range []string{"y1", "y2"} {
		if got := attr(th[0], a); got != "188.0" {
			t.Errorf("threshold %s = %s, want 188.0", a, got)
		}
	}
	if attr(th[0], "x1") != fmt.Sprint(PlotLeft) || attr(th[0], "x2") != fmt.Sprint(PlotRight) {
		t.Errorf("threshold does not span the plot: %s", th[0])
	}
	if attr(th[0], "stroke") != ThresholdColor || attr(th[0], "stroke-dasharray") == "" {
		t.Errorf("threshold not a dashed red line: %s", th[0])
	}

	paths := elements(svg, "path", "series")
	if len(paths) != 2 {
		t.Fatalf("want 2 series paths, got %d", len(paths))
	}
	// First series: 0.2% at t0 (x 80, y 300 - 0.8*280 = 76), 0.05% a minute
	// later (x 80 + 790/4, y 300 - 0.2*280 = 244), a gap, then 0 and 0.1%.
	want := "M80.0 76.0 L277.5 244.0 M672.5 300.0 L870.0 188.0"
	if got := attr(paths[0], "d"); got != want {
		t.Errorf("series 0 path d=%q, want %q", got, want)
	}
	if got := attr(paths[1], "d"); strings.Count(got, "M") != 1 || strings.Count(got, "L") != 4 {
		t.Errorf("series 1 path d=%q: want one run of 5 points", got)
	}
	// The rollback marker: a vertical line half way.
	mk := elements(svg, "line", "marker")
	if len(mk) != 1 || attr(mk[0], "x1") != "475.0" || attr(mk[0], "x2") != "475.0" {
		t.Errorf("rollback marker %q, want a vertical line at x 475.0", mk)
	}
	for _, label := range []string{"divergent / compared", "rollback threshold 0.1%", "rollback (manual)", "0.25%", "0.1%", "03:04:00"} {
		if !strings.Contains(svg, label) {
			t.Errorf("the chart does not show %q", label)
		}
	}
}

func TestSVGLog(t *testing.T) {
	c := latencyChart()
	svg := SVG(c)
	// Decades from 1 ms (the smallest drawable value) to 1 s (the
	// threshold): 3 decades over 280 units.
	th := elements(svg, "line", "threshold")
	if len(th) != 1 || attr(th[0], "y1") != fmt.Sprintf("%.1f", float64(PlotTop)) {
		t.Fatalf("1 s threshold %q, want at the top of the plot (y %d)", th, PlotTop)
	}
	if got, want := Y(c, 0.01), float64(PlotBottom)-280.0/3; math.Abs(got-want) > 1e-9 {
		t.Errorf("y(10ms) = %v, want %v", got, want)
	}
	paths := elements(svg, "path", "series")
	if len(paths) != 2 {
		t.Fatalf("want 2 paths, got %d", len(paths))
	}
	if d := attr(paths[1], "d"); strings.Count(d, "L") != 1 {
		t.Errorf("gofuse p99 path %q: the 0 (not drawable on a log axis) must be left out", d)
	}
	for _, label := range []string{"1ms", "10ms", "100ms", "1s", "seconds (log)"} {
		if !strings.Contains(svg, ">"+label+"<") && !strings.Contains(svg, label) {
			t.Errorf("axis label %q missing", label)
		}
	}
}

func TestSVGNoDataKeepsThreshold(t *testing.T) {
	c := Chart{ID: "divergence-chart", Unit: Percent, From: t0, To: t0.Add(time.Minute),
		Series:     []Series{{Name: "ratio", Points: pts(time.Minute, 0, 0)}},
		Thresholds: []Threshold{{Value: 0.001, Label: "t"}}}
	// All zeros: the axis still shows the threshold (0 to NiceCeil(0.115%) = 0.2%).
	th := elements(SVG(c), "line", "threshold")
	if len(th) != 1 || attr(th[0], "y1") != "160.0" {
		t.Errorf("threshold %q, want y 160.0", th)
	}
	c.Series = nil
	svg := SVG(c)
	if !strings.Contains(svg, "no data in this range") || !strings.HasPrefix(svg, `<svg id="divergence-chart"`) {
		t.Errorf("an empty chart must say so and keep its id:\n%s", svg)
	}
}

func TestEscaping(t *testing.T) {
	c := divergenceChart()
	c.Series[0].Name = `<script>alert("x")</script>`
	c.ID = `a"b`
	svg := SVG(c)
	if strings.Contains(svg, "<script>") || strings.Contains(svg, `id="a"b"`) {
		t.Errorf("unescaped text in the SVG")
	}
}

func TestNiceCeilAndFormat(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{0.0023, 0.0025}, {0.00115, 0.002}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {0, 1}} {
		if got := NiceCeil(c.in); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("NiceCeil(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		v    float64
		u    Unit
		want string
	}{{0.001, Percent, "0.1%"}, {0.0025, Percent, "0.25%"}, {0.00005, Seconds, "50µs"}, {0.0123, Seconds, "12.3ms"}, {1, Seconds, "1s"}, {math.NaN(), Seconds, "-"}} {
		if got := Format(c.v, c.u); got != c.want {
			t.Errorf("Format(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}

func fixedReport() Report {
	return Report{Title: "Lighthouse <test>", Source: "fixed data", From: t0, To: t0.Add(4 * time.Minute), Generated: t0.Add(5 * time.Minute),
		Status: []KV{{Key: "phase", Value: "shadow"}},
		Sections: []Section{
			{Heading: "Divergence ratio", Note: "n", Chart: divergenceChart()},
			{Heading: "Latency", Note: "n", Chart: latencyChart()},
		}}
}

func TestHTMLSelfContained(t *testing.T) {
	page, err := HTML(fixedReport())
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	for _, want := range []string{`<svg id="divergence-chart"`, `<svg id="latency-chart"`, "Lighthouse &lt;test&gt;", `<table class="status"`} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	selfContained(t, s)
}

// selfContained checks that page fetches nothing and links only inside
// itself.
func selfContained(t *testing.T, page string) {
	t.Helper()
	for _, bad := range []string{"<script", "src=", "<link", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page is not self-contained: %q", bad)
		}
	}
	if l := regexp.MustCompile(`href="[^#]`).FindString(page); l != "" {
		t.Errorf("page links outside itself: %q", l)
	}
}

// TestHTMLInChromium: a real browser builds both charts from the page.
func TestHTMLInChromium(t *testing.T) {
	chromium.Require(t)
	page, err := HTML(fixedReport())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, page, 0o644); err != nil {
		t.Fatal(err)
	}
	dom := chromium.DOM(t, file)
	for _, id := range []string{"divergence-chart", "latency-chart"} {
		m := regexp.MustCompile(`(?s)<svg id="` + id + `".*?</svg>`).FindString(dom)
		if m == "" {
			t.Errorf("the DOM has no <svg id=%q>:\n%.500s", id, dom)
			continue
		}
		if n := strings.Count(m, `class="series"`); n != 2 {
			t.Errorf("%s: %d series paths in the DOM, want 2", id, n)
		}
		if n := strings.Count(m, `class="threshold"`); n != 1 {
			t.Errorf("%s: %d threshold lines in the DOM, want 1", id, n)
		}
	}
}

func TestParseMatrix(t *testing.T) {
	body := `{"status":"success","data":{"resultType":"matrix","result":[
		{"metric":{"backend":"gofuse"},"values":[[1767322800,"0.5"],[1767322801.5,"NaN"]]},
		{"metric":{"backend":"bazil"},"values":[[1767322800,"+Inf"]]}]}}`
	got, err := ParseMatrix([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Labels["backend"] != "bazil" || !math.IsInf(got[0].Points[0].V, 1) {
		t.Fatalf("series not sorted or values wrong: %+v", got)
	}
	g := got[1].Points
	if len(g) != 2 || g[0].V != 0.5 || !math.IsNaN(g[1].V) || !g[1].T.Equal(time.UnixMilli(1767322801500)) {
		t.Errorf("gofuse points %+v", g)
	}
	for _, bad := range []string{`{"status":"error","errorType":"bad_data","error":"parse error"}`, `{"status":"success","data":{"resultType":"vector","result":[]}}`, `nope`} {
		if _, err := ParseMatrix([]byte(bad)); err == nil {
			t.Errorf("ParseMatrix(%s): no error", bad)
		}
	}
}

func TestRollbackMarkersAndGaps(t *testing.T) {
	step := 10 * time.Second
	series := []RangeSeries{
		{Labels: map[string]string{"trigger": "manual"}, Points: []Point{{t0.Add(time.Minute), 1}, {t0.Add(70 * time.Second), 1}, {t0.Add(80 * time.Second), 2}}},
		{Labels: map[string]string{"trigger": "divergence"}, Points: []Point{{t0, 3}, {t0.Add(step), 3}}}, // before the range: not a rollback in it
	}
	m := RollbackMarkers(series, t0, step)
	if len(m) != 2 || !m[0].T.Equal(t0.Add(time.Minute)) || !m[1].T.Equal(t0.Add(80*time.Second)) || m[0].Label != "rollback (manual)" {
		t.Errorf("markers %+v, want manual rollbacks at +60s and +80s", m)
	}
	g := WithGaps([]Point{{t0, 1}, {t0.Add(step), 2}, {t0.Add(5 * step), 3}}, step)
	if len(g) != 4 || !math.IsNaN(g[2].V) {
		t.Errorf("WithGaps: %+v, want a NaN between +10s and +50s", g)
	}
}

// TestBuild runs Build against a fake Prometheus answering each query.
func TestBuild(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		queries = append(queries, q)
		if r.URL.Path != "/api/v1/query_range" || r.URL.Query().Get("step") != "15" {
			http.Error(w, "bad request "+r.URL.String(), 400)
			return
		}
		var result string
		switch {
		case strings.HasPrefix(q, "lighthouse_rollout_rollbacks_total"):
			result = fmt.Sprintf(`{"metric":{"__name__":"lighthouse_rollout_rollbacks_total","trigger":"manual"},"values":[[%d,"1"]]}`, t0.Add(2*time.Minute).Unix())
		case strings.Contains(q, "lighthouse_proxy_compared_total"):
			result = fmt.Sprintf(`{"metric":{},"values":[[%d,"0.0004"],[%d,"0.0006"]]}`, t0.Unix(), t0.Add(15*time.Second).Unix())
		case q == "max(lighthouse_rollout_candidate_weight)":
			result = fmt.Sprintf(`{"metric":{},"values":[[%d,"0.1"]]}`, t0.Unix())
		case strings.Contains(q, "histogram_quantile(0.5,"), strings.Contains(q, "histogram_quantile(0.99,"):
			result = fmt.Sprintf(`{"metric":{"backend":"bazil"},"values":[[%[1]d,"0.001"]]},{"metric":{"backend":"gofuse"},"values":[[%[1]d,"0.002"]]}`, t0.Unix())
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[%s]}}`, result)
	}))
	defer srv.Close()
	r, err := Build(context.Background(), Prometheus{URL: srv.URL}, Options{From: t0, To: t0.Add(5 * time.Minute), Step: 15 * time.Second, RateWindow: "1m"})
	if err != nil {
		t.Fatal(err)
	}
	if len(queries) != 5 || !strings.Contains(queries[1], `class!~"allowed|shadow_error"`) || !strings.Contains(queries[1], "[1m]") {
		t.Errorf("queries %q", queries)
	}
	if len(r.Sections) != 3 || r.Sections[0].Chart.ID != "divergence-chart" || r.Sections[1].Chart.ID != "latency-chart" || r.Sections[2].Chart.ID != "weight-chart" {
		t.Fatalf("sections %+v", r.Sections)
	}
	if r.Sections[2].Chart.Max != 1 {
		t.Errorf("the weight chart's axis is not capped at 100%%")
	}
	div, lat := r.Sections[0].Chart, r.Sections[1].Chart
	if len(div.Series) != 1 || len(div.Series[0].Points) != 2 || len(div.Markers) != 1 || div.Thresholds[0].Value != 0.001 {
		t.Errorf("divergence chart %+v", div)
	}
	var names []string
	for _, s := range lat.Series {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "bazil p50,bazil p99,gofuse p50,gofuse p99" || !lat.Log || lat.Thresholds[0].Value != 1 {
		t.Errorf("latency chart series %q log %v thresholds %+v", names, lat.Log, lat.Thresholds)
	}

	// A Prometheus error is reported.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"invalid parameter"}`)
	}))
	defer bad.Close()
	if _, err := Build(context.Background(), Prometheus{URL: bad.URL}, Options{From: t0, To: t0.Add(time.Minute), Step: 15 * time.Second, RateWindow: "1m"}); err == nil || !strings.Contains(err.Error(), "invalid parameter") {
		t.Errorf("Build against a failing Prometheus: %v", err)
	}
}
