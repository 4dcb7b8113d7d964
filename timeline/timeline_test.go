package timeline

import (
	"context"
	"math"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lighthouse-fs/lighthouse/metrics"
	"github.com/lighthouse-fs/lighthouse/report"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

// fixture is a proxy registry and a bridge registry, with the real metric
// sets of each.
type fixture struct {
	proxyReg, bridgeReg *prometheus.Registry
	proxy               *metrics.Proxy
	rollout             *metrics.Rollout
	bridge              *metrics.Bridge
}

func newFixture() *fixture {
	f := &fixture{proxyReg: prometheus.NewRegistry(), bridgeReg: prometheus.NewRegistry()}
	f.proxy, f.rollout, f.bridge = metrics.NewProxy(f.proxyReg), metrics.NewRollout(f.proxyReg), metrics.NewBridge(f.bridgeReg)
	f.proxy.Init([]string{"bazil", "gofuse"}, []string{"read_file"})
	f.rollout.Rollbacks.WithLabelValues("divergence")
	f.proxy.Divergence.WithLabelValues("read_file", "allowed")
	f.bridge.Active.WithLabelValues("gofuse", "shadow").Set(1)
	f.bridge.Nice.Set(19)
	return f
}

// second is one second of traffic: ops served, compared, skipped, divergent
// (class data), each bridge op taking latency.
func (f *fixture) second(ops, compared, skipped, divergent int, latency float64) {
	f.proxy.Ops.WithLabelValues("read_file", "bazil", "ok").Add(float64(ops))
	f.proxy.Compared.WithLabelValues("read_file").Add(float64(compared))
	f.proxy.Skipped.WithLabelValues("gofuse", "stale").Add(float64(skipped))
	f.proxy.Divergence.WithLabelValues("read_file", "data").Add(float64(divergent))
	for range ops {
		f.bridge.Duration.WithLabelValues("gofuse", "read_file").Observe(latency)
	}
}

func TestSeries(t *testing.T) {
	f := newFixture()
	rec := New(time.Second, 0, f.proxyReg, f.bridgeReg)
	rec.Sample(t0)
	f.second(100, 100, 0, 0, 0.002) // 2 ms: inside the (1 ms, 2.5 ms] bucket
	f.rollout.Weight.Set(0.1)
	rec.Sample(t0.Add(time.Second))
	f.second(200, 150, 50, 3, 0.3) // 300 ms: (250 ms, 500 ms]
	f.rollout.Rollbacks.WithLabelValues("divergence").Inc()
	f.rollout.Weight.Set(0)
	rec.Sample(t0.Add(2 * time.Second))

	s := rec.Series(time.Second) // each point over the second before it
	if !s.From.Equal(t0) || !s.To.Equal(t0.Add(2*time.Second)) || s.Window != time.Second {
		t.Fatalf("span %v to %v, window %v", s.From, s.To, s.Window)
	}
	want := func(name string, got []float64, w ...float64) {
		t.Helper()
		if len(got) != len(w) {
			t.Fatalf("%s: %v, want %v", name, got, w)
		}
		for i := range w {
			if !(got[i] == w[i] || math.IsNaN(w[i]) && math.IsNaN(got[i]) || math.Abs(got[i]-w[i]) < 1e-9) {
				t.Errorf("%s: %v, want %v", name, got, w)
				return
			}
		}
	}
	want("ops/s", values(s.Ops), 100, 200)
	want("coverage", values(s.Coverage), 1, 0.75)
	want("divergence ratio", values(s.Ratio), 0, 0.02)
	want("data divergences/s", values(s.ByClass["data"]), 0, 3)
	want("allowed divergences/s", values(s.ByClass["allowed"]), 0, 0)
	want("weight", values(s.Weight), 0.1, 0)
	// histogram_quantile interpolates inside the bucket: the median of 100
	// observations in (1 ms, 2.5 ms] is 1 + 1.5*50/100 ms.
	want("gofuse p50", values(s.Latency["gofuse p50"]), 0.00175, 0.375)
	if len(s.Rollbacks) != 1 || !s.Rollbacks[0].T.Equal(t0.Add(2*time.Second)) || s.Rollbacks[0].Label != "rollback (divergence)" {
		t.Errorf("rollbacks %+v, want one at +2s", s.Rollbacks)
	}
	if s.Nice["gofuse"] != 19 {
		t.Errorf("nice %v, want gofuse 19", s.Nice)
	}

	// A wider window takes both seconds: 300 ops over 2 s.
	want("ops/s over 2s", values(rec.Series(2*time.Second).Ops), 100, 150)
}

// TestQuietGaps: a window without a compared op or a bridge op is a gap
// (NaN), not a zero.
func TestQuietGaps(t *testing.T) {
	f := newFixture()
	rec := New(time.Second, 0, f.proxyReg, f.bridgeReg)
	rec.Sample(t0)
	rec.Sample(t0.Add(time.Second))
	s := rec.Series(time.Second)
	if len(s.Ratio) != 1 || !math.IsNaN(s.Ratio[0].V) || !math.IsNaN(s.Coverage[0].V) || s.Ops[0].V != 0 {
		t.Errorf("ratio %v coverage %v ops %v: want NaN, NaN, 0", s.Ratio, s.Coverage, s.Ops)
	}
	if l := s.Latency["gofuse p99"]; len(l) != 0 {
		t.Errorf("latency %v before any bridge op", l)
	}
}

// TestBounded: past max samples the recorder halves its resolution and
// keeps covering the whole run.
func TestBounded(t *testing.T) {
	f := newFixture()
	rec := New(time.Second, 8, f.proxyReg, f.bridgeReg)
	for i := range 100 {
		f.second(10, 10, 0, 0, 0.001)
		rec.Sample(t0.Add(time.Duration(i) * time.Second))
	}
	got := rec.Samples()
	if len(got) > 8 {
		t.Fatalf("%d samples kept, want at most 8", len(got))
	}
	if !got[0].T.Equal(t0) || !got[len(got)-1].T.Equal(t0.Add(99*time.Second)) {
		t.Errorf("samples span %v to %v, want the whole run", got[0].T, got[len(got)-1].T)
	}
	if rec.Interval() <= time.Second {
		t.Errorf("interval %v: not coarser after downsampling", rec.Interval())
	}
	// The rates stay right at the coarser resolution.
	for _, p := range rec.Series(time.Hour).Ops {
		if math.Abs(p.V-10) > 1e-9 {
			t.Errorf("ops/s %v, want 10", p.V)
		}
	}
}

// TestMemoryBound measures a full recorder of DefaultMax samples of the
// proxy and two bridges: the bound the package doc states.
func TestMemoryBound(t *testing.T) {
	f := newFixture()
	other := prometheus.NewRegistry()
	b2 := metrics.NewBridge(other)
	b2.Active.WithLabelValues("bazil", "primary").Set(1)
	b2.Duration.WithLabelValues("bazil", "read_file").Observe(0.001)
	f.second(1, 1, 0, 1, 0.001)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rec := New(time.Second, DefaultMax, f.proxyReg, f.bridgeReg, other)
	for i := range 3 * DefaultMax {
		rec.Sample(t0.Add(time.Duration(i) * time.Second))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	n := len(rec.Samples())
	used := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d samples: %d KiB live (%d bytes a sample)", n, used>>10, used/int64(n))
	if n > DefaultMax || used > 2<<20 {
		t.Errorf("%d samples in %d KiB: want at most %d in 2 MiB", n, used>>10, DefaultMax)
	}
	runtime.KeepAlive(rec)
}

// TestRun: Run samples at once and once more when its context ends.
func TestRun(t *testing.T) {
	f := newFixture()
	rec := New(time.Hour, 0, f.proxyReg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.Samples()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no first sample within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	f.second(7, 7, 0, 0, 0.001)
	cancel()
	<-done
	got := rec.Samples()
	if len(got) != 2 || got[0].Ops != 0 || got[1].Ops != 7 {
		t.Errorf("samples %+v: want the first (0 ops) and the last (7 ops)", got)
	}
}

// TestRemote: a bridge's page read over HTTP (text format, +Inf bucket
// listed) gives the same histogram as its registry read in process.
func TestRemote(t *testing.T) {
	f := newFixture()
	f.second(4, 4, 0, 0, 0.003)
	srv := httptest.NewServer(promhttp.HandlerFor(f.bridgeReg, promhttp.HandlerOpts{}))
	defer srv.Close()
	local, remote := New(0, 0, f.bridgeReg), New(0, 0, metrics.Remote(srv.URL))
	local.Sample(t0)
	remote.Sample(t0)
	l, r := local.Samples()[0].Latency["gofuse"], remote.Samples()[0].Latency["gofuse"]
	if r.Count() != 4 || len(l.Cum) != len(r.Cum) || len(r.Bounds) != len(metrics.LatencyBuckets)+1 {
		t.Fatalf("remote %+v, local %+v", r, l)
	}
	for i := range l.Cum {
		if l.Cum[i] != r.Cum[i] || l.Bounds[i] != r.Bounds[i] {
			t.Fatalf("bucket %d: remote %v<=%v, local %v<=%v", i, r.Cum[i], r.Bounds[i], l.Cum[i], l.Bounds[i])
		}
	}
	if remote.Samples()[0].Nice["gofuse"] != 19 || remote.Errors() != 0 {
		t.Errorf("remote nice %v, errors %d", remote.Samples()[0].Nice, remote.Errors())
	}
	dead := New(0, 0, metrics.Remote("http://127.0.0.1:1/metrics"), f.proxyReg)
	dead.Sample(t0)
	if dead.Errors() != 1 || len(dead.Samples()) != 1 {
		t.Errorf("a source that does not answer: %d errors, %d samples; want 1 and the sample of the others", dead.Errors(), len(dead.Samples()))
	}
}

func values(points []report.Point) []float64 {
	out := make([]float64, len(points))
	for i, p := range points {
		out[i] = p.V
	}
	return out
}
