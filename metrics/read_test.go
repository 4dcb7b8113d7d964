package metrics

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// A histogram of 200 bazil samples (100 up to 1 ms, 90 more up to 10 ms,
// 10 beyond, over two op labels) and 10 go"fuse ones, read both ways: from
// the registry (Gather) and from its /metrics page (Scrape).
func TestHistogramQuantiles(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "x_seconds", Buckets: []float64{0.001, 0.01}}, []string{"op", "served_by"})
	reg.MustRegister(h)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "nice"})
	reg.MustRegister(g)
	g.Set(19)
	observe := func(n int, v float64, labels ...string) {
		for range n {
			h.WithLabelValues(labels...).Observe(v)
		}
	}
	observe(50, 0.0005, "stat", "bazil")
	observe(40, 0.005, "stat", "bazil")
	observe(10, 0.5, "stat", "bazil")
	observe(50, 0.0005, "read", "bazil")
	observe(50, 0.005, "read", "bazil")
	observe(10, 0.005, "read", `go"fuse`)

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	scraped, err := Scrape(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	gathered, err := Gather(reg)
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	for name, f := range map[string]Families{"scraped": scraped, "gathered": gathered} {
		got := f.HistogramQuantiles("x_seconds", "served_by")
		b := got["bazil"]
		if b.N != 200 || !near(b.P50, 0.001) || !near(b.P95, 0.001+0.009*(190-100)/90.0) || !near(b.P99, 0.01) {
			t.Errorf("%s: bazil: %+v", name, b)
		}
		if g := got[`go"fuse`]; g.N != 10 || !near(g.P50, 0.001+0.009*0.5) {
			t.Errorf("%s: go\"fuse: %+v", name, g)
		}
		if len(got) != 2 {
			t.Errorf("%s: groups: %v", name, got)
		}
		if v, ok := f.Gauge("nice"); !ok || v != 19 {
			t.Errorf("%s: gauge %v %v", name, v, ok)
		}
		if n := f.Sum("x_seconds", nil); n != 0 {
			t.Errorf("%s: Sum of a histogram: %v", name, n)
		}
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("x{ 1\n")) }))
	defer bad.Close()
	if _, err := Scrape(context.Background(), bad.URL); err == nil {
		t.Error("a malformed page parsed")
	}
}

func TestSum(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ops_total"}, []string{"backend", "result"})
	reg.MustRegister(c)
	c.WithLabelValues("bazil", "ok").Add(3)
	c.WithLabelValues("bazil", "errno").Add(2)
	c.WithLabelValues("gofuse", "ok").Add(7)
	f, err := Gather(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		match map[string]string
		want  float64
	}{{nil, 12}, {map[string]string{"backend": "bazil"}, 5}, {map[string]string{"backend": "bazil", "result": "ok"}, 3}, {map[string]string{"backend": "x"}, 0}} {
		if got := f.Sum("ops_total", tc.match); got != tc.want {
			t.Errorf("Sum(%v) = %v, want %v", tc.match, got, tc.want)
		}
	}
	if got := f.SumBy("ops_total", "backend", map[string]string{"result": "ok"}); len(got) != 2 || got["bazil"] != 3 || got["gofuse"] != 7 {
		t.Errorf("SumBy: %v", got)
	}
}
