package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/internal/chromium"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/report/reporttest"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// runSeries is a 40 s run sampled every second: 500 ops/s, coverage 98%
// with a dip, a burst of data divergences at +20 s with a rollback, go-fuse
// at 10% until then and far slower (it ran at nice 19).
func runSeries() RunSeries {
	s := RunSeries{From: t0, To: t0.Add(40 * time.Second), Window: 5 * time.Second,
		ByClass: map[string][]Point{}, Latency: map[string][]Point{}, Nice: map[string]int{"gofuse": 19},
		Rollbacks: []Marker{{T: t0.Add(20 * time.Second), Label: "rollback (divergence)"}}}
	for i := 1; i <= 40; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		add := func(ps *[]Point, v float64) { *ps = append(*ps, Point{T: at, V: v}) }
		add(&s.Ops, 500)
		add(&s.Coverage, map[bool]float64{true: 0.9, false: 0.98}[i > 10 && i < 15])
		div := map[bool]float64{true: 2, false: 0}[i >= 18 && i <= 20]
		add(&s.Ratio, div/490)
		byClass := s.ByClass["data"]
		add(&byClass, div)
		s.ByClass["data"] = byClass
		allowed := s.ByClass["allowed"]
		add(&allowed, 0)
		s.ByClass["allowed"] = allowed
		for name, v := range map[string]float64{"bazil p50": 0.002, "bazil p99": 0.068, "gofuse p50": 0.01, "gofuse p99": 0.374} {
			l := s.Latency[name]
			add(&l, v)
			s.Latency[name] = l
		}
		add(&s.Weight, map[bool]float64{true: 0.1, false: 0}[i < 20])
	}
	return s
}

func TestRunSections(t *testing.T) {
	secs := RunSections(runSeries(), 0.95)
	ids := map[string]Chart{}
	for _, s := range secs {
		ids[s.Chart.ID] = s.Chart
		if !s.Chart.From.Equal(t0) || !s.Chart.To.Equal(t0.Add(40*time.Second)) {
			t.Errorf("%s spans %v to %v, want the run's own 40 s", s.Chart.ID, s.Chart.From, s.Chart.To)
		}
		if len(s.Chart.Markers) != 1 {
			t.Errorf("%s: %d rollback markers, want 1", s.Chart.ID, len(s.Chart.Markers))
		}
	}
	for _, id := range []string{"ops-chart", "coverage-chart", "divergence-chart", "class-chart", "latency-chart", "weight-chart"} {
		if _, ok := ids[id]; !ok {
			t.Errorf("no %s among %v", id, secs)
		}
	}
	if cls := ids["class-chart"].Series; len(cls) != 1 || cls[0].Name != "data" {
		t.Errorf("class chart series %+v: want data only (allowed never diverged)", cls)
	}
	if th := ids["coverage-chart"].Thresholds; len(th) != 1 || th[0].Value != 0.95 {
		t.Errorf("coverage threshold %+v, want --min-coverage 95%%", th)
	}
	lat := secs[4]
	if !strings.Contains(lat.Note, "the gofuse bridge ran at nice 19 while it only mirrored") || strings.Contains(lat.Note, "bazil bridge ran") {
		t.Errorf("latency note lacks the nice caveat for gofuse alone: %q", lat.Note)
	}
	if !strings.Contains(secs[0].Note, "over 5s windows") {
		t.Errorf("ops note does not give the window: %q", secs[0].Note)
	}
}

// TestShareAxes: a share (coverage, weight) tops at 100%, not at the
// next round number above 115% of it (200%).
func TestShareAxes(t *testing.T) {
	for _, id := range []string{"coverage-chart", "weight-chart"} {
		var c Chart
		for _, s := range RunSections(runSeries(), 0.95) {
			if s.Chart.ID == id {
				c = s.Chart
			}
		}
		c.Series = append(c.Series, Series{Name: "full", Points: pts(time.Second, 1, 1)})
		svg := SVG(c)
		if !strings.Contains(svg, ">100%<") || strings.Contains(svg, ">200%<") || strings.Contains(svg, ">120%<") {
			t.Errorf("%s: the y axis does not top at 100%%", id)
		}
		if got := Y(c, 1); got != PlotTop {
			t.Errorf("%s: 100%% at y %v, want the top of the plot (%d)", id, got, PlotTop)
		}
	}
	// A bounded axis still shows data above its bound.
	c := Chart{Unit: Percent, Max: 1, Series: []Series{{Points: pts(time.Second, 1.5)}}}
	if Y(c, 1.5) < PlotTop {
		t.Errorf("150%% drawn above the plot on an axis capped at 100%%")
	}
}

// writeLog writes divergences as the proxy's log does, one JSON object a
// line, and a torn last line.
func writeLog(t *testing.T, ds []proxy.Divergence) string {
	t.Helper()
	var b strings.Builder
	for _, d := range ds {
		line, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteString(`{"time":"2026-01-02T03:04:`) // being written
	path := filepath.Join(t.TempDir(), "divergences.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func divergence(at time.Duration, class, path string) proxy.Divergence {
	return proxy.Divergence{Time: t0.Add(at), Class: class, Op: fsop.Op{Kind: fsop.ReadFile, Path: path},
		Serving: compare.Outcome{Backend: "bazil", Result: &fsop.Result{Data: []byte("abc")}},
		Mirror:  compare.Outcome{Backend: "gofuse", Result: &fsop.Result{Data: []byte("abd")}}}
}

func TestDivergenceClasses(t *testing.T) {
	path := writeLog(t, []proxy.Divergence{
		divergence(-time.Minute, "data", "old"), // line 1: a previous run's (--keep)
		divergence(time.Second, "data", "a"),    // 2
		divergence(2*time.Second, "allowed", "b"),
		divergence(3*time.Second, "data", "c"), // 4
		divergence(4*time.Second, "data", "d"), // 5: past perClass
	})
	got, err := DivergenceClasses(path, "run/divergences.jsonl", t0, map[string]int64{"data": 3, "allowed": 1, "errno": 0}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Class != "data" || got[1].Class != "allowed" {
		t.Fatalf("classes %+v, want data then allowed (errno never diverged)", got)
	}
	d := got[0]
	if d.Count != 3 || d.Logged != 3 || len(d.Entries) != 2 || d.Entries[0].Ref != "run/divergences.jsonl:2" || d.Entries[1].Ref != "run/divergences.jsonl:4" {
		t.Errorf("data %+v: want 3 counted, 3 logged, entries at lines 2 and 4", d)
	}
	if e := d.Entries[0]; e.Op != "read_file a" || !strings.Contains(e.Diff, "first difference at byte 2") {
		t.Errorf("entry %+v", e)
	}
	if got[1].Note() == "" || got[1].Anchor() != "class-allowed" {
		t.Errorf("allowed: note %q anchor %q", got[1].Note(), got[1].Anchor())
	}
	if _, err := DivergenceClasses(filepath.Join(t.TempDir(), "none"), "x", t0, nil, 2); err != nil {
		t.Errorf("no log (no divergence): %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte("{}\nnot json\n{}\n"), 0o644)
	if _, err := DivergenceClasses(bad, "x", t0, nil, 2); err == nil || !strings.Contains(err.Error(), "bad.jsonl:2") {
		t.Errorf("a damaged line: %v, want its line named", err)
	}
}

func runReport(t *testing.T) Report {
	t.Helper()
	path := writeLog(t, []proxy.Divergence{divergence(19*time.Second, "data", "src/a.go"), divergence(20*time.Second, "data", "src/b.go")})
	classes, err := DivergenceClasses(path, path, t0, map[string]int64{"data": 2}, 5)
	if err != nil {
		t.Fatal(err)
	}
	v := verdict.Judge(verdict.Run{Ops: 20000, Compared: 19600, Divergent: 2, Drained: true}, verdict.Rules{MinCoverage: 0.95, DivergenceHint: "see run/divergences.jsonl"})
	stats := proxy.StatsView{Ops: 20000, Compared: 19600, Divergent: 2, ByClass: map[string]int64{"data": 2},
		Skipped: map[string]int64{"stale": 400}, ServedBy: map[string]int64{"bazil": 18000, "gofuse": 2000}}
	s := runSeries()
	return Report{Title: "Lighthouse run", Source: "fixed data", From: s.From, To: s.To, Generated: s.To,
		Run:      &RunSummary{Verdict: v, Counts: RunCounts(stats, nil, 0.95), Classes: classes, DivergenceLog: path},
		Sections: RunSections(s, 0.95)}
}

func TestRunHTML(t *testing.T) {
	page, err := HTML(runReport(t))
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	selfContained(t, s)
	for _, want := range []string{`<div class="verdict fail" id="verdict">FAIL: 2 divergences`, `<table class="status" id="counts">`,
		"98.00% of the ops whose outcome is known (a PASS needs 95%)", `<a href="#class-data">data</a>`, `<h3 id="class-data">`,
		"divergences.jsonl:1</code> read_file src/a.go", "nice 19"} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestRunHTMLInChromium renders a run's page in a real browser: every
// chart is built, the verdict and the links are there, and the screenshot
// shows the page (not a blank or an error page): the FAIL banner's red,
// the series' blue, and little of it background.
func TestRunHTMLInChromium(t *testing.T) {
	chromium.Require(t)
	page, err := HTML(runReport(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "run.html")
	if err := os.WriteFile(file, page, 0o644); err != nil {
		t.Fatal(err)
	}
	reporttest.CheckRunPage(t, file, filepath.Join(dir, "run.png"), verdict.Fail)
}
