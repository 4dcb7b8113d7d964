package rollout

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBucketOf(t *testing.T) {
	prev := uint8(0)
	for d := time.Duration(0); d < 40*time.Second; d = d*17/16 + 1 {
		b := bucketOf(d)
		if b < prev {
			t.Fatalf("bucketOf not monotone at %v: %d after %d", d, b, prev)
		}
		prev = b
		if d >= 8*1024 { // log-linear part: the middle is within 1/16 of d
			if mid := bucketMid(b); math.Abs(float64(mid-d))/float64(d) > 1.0/16+1e-9 {
				t.Fatalf("bucket %d of %v has middle %v", b, d, mid)
			}
		}
	}
	if bucketOf(-time.Second) != 0 || bucketOf(1<<62) != latencyBuckets-1 {
		t.Fatal("out-of-range durations not clamped")
	}
}

// bruteU is U from the definition, over explicit samples.
func bruteU(cand, prim []time.Duration) float64 {
	var u float64
	for _, c := range cand {
		for _, p := range prim {
			switch {
			case c > p:
				u++
			case c == p:
				u += 0.5
			}
		}
	}
	return u
}

// TestRankTestMatchesDefinition: U from the histograms equals U counted
// pair by pair (ties at one bucket count half), on samples that fall on
// bucket middles.
func TestRankTestMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		var hp, hc [latencyBuckets]int32
		var prim, cand []time.Duration
		for i := 0; i < 1+r.IntN(60); i++ {
			b := uint8(60 + r.IntN(20))
			hp[b]++
			prim = append(prim, bucketMid(b))
		}
		for i := 0; i < 1+r.IntN(60); i++ {
			b := uint8(62 + r.IntN(20))
			hc[b]++
			cand = append(cand, bucketMid(b))
		}
		_, auc := rankTest(&hp, &hc)
		want := bruteU(cand, prim) / float64(len(cand)*len(prim))
		if math.Abs(auc-want) > 1e-12 {
			t.Fatalf("trial %d: auc %v, definition %v", trial, auc, want)
		}
	}
}

// lognormal draws a latency with the given median and log-spread sigma.
func lognormal(r *rand.Rand, median time.Duration, sigma float64) time.Duration {
	return time.Duration(float64(median) * math.Exp(sigma*r.NormFloat64()))
}

func histogram(r *rand.Rand, n int, median time.Duration, sigma float64) *[latencyBuckets]int32 {
	var h [latencyBuckets]int32
	for i := 0; i < n; i++ {
		h[bucketOf(lognormal(r, median, sigma))]++
	}
	return &h
}

// TestRankTestKnownDistributions: for two lognormal latencies with the
// same spread sigma and medians m1 > m2, P(X1 > X2) = Phi(ln(m1/m2) /
// (sigma sqrt 2)); under no difference z is standard normal.
func TestRankTestKnownDistributions(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	phi := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	const sigma = 0.5
	for _, ratio := range []float64{1, 1.2, 1.5, 5} {
		want := phi(math.Log(ratio) / (sigma * math.Sqrt2))
		var aucs, zs []float64
		for seed := 0; seed < 200; seed++ {
			prim := histogram(r, 1000, time.Millisecond, sigma)
			cand := histogram(r, 1000, time.Duration(ratio*float64(time.Millisecond)), sigma)
			z, auc := rankTest(prim, cand)
			aucs, zs = append(aucs, auc), append(zs, z)
		}
		meanAUC, _ := meanSD(aucs)
		mz, sz := meanSD(zs)
		t.Logf("median ratio %.1f: mean AUC %.4f (theory %.4f), z mean %.2f sd %.2f", ratio, meanAUC, want, mz, sz)
		if math.Abs(meanAUC-want) > 0.01 {
			t.Errorf("ratio %v: AUC %.4f, theory %.4f", ratio, meanAUC, want)
		}
		if ratio == 1 && (math.Abs(mz) > 0.25 || sz < 0.8 || sz > 1.2) {
			t.Errorf("no difference: z mean %.2f sd %.2f, want about N(0, 1)", mz, sz)
		}
	}
}

func meanSD(xs []float64) (mean, sd float64) {
	n := float64(len(xs))
	for _, x := range xs {
		mean += x
	}
	mean /= n
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / (n - 1))
}

// TestQuantile: the median of a lognormal window is within a bucket of
// the true median.
func TestQuantile(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	w := newSideWindow(4000)
	for i := 0; i < 4000; i++ {
		w.add(bucketOf(lognormal(r, 3*time.Millisecond, 0.5)), uint32(i))
	}
	if got := w.quantile(0.5); math.Abs(float64(got)/float64(3*time.Millisecond)-1) > 0.1 {
		t.Fatalf("median %v, want about 3ms", got)
	}
}

// TestSideWindowExpires: samples leave by age (ops of the kind) and by
// capacity, and the bucket counts follow.
func TestSideWindowExpires(t *testing.T) {
	w := newSideWindow(10)
	for i := uint32(1); i <= 25; i++ {
		w.add(uint8(i), i)
	}
	if w.n != 10 || w.count[15] != 0 || w.count[16] != 1 {
		t.Fatalf("capacity: n %d, counts %v", w.n, w.count[:30])
	}
	w.expire(30, 10) // keeps the samples of ops 21..30
	if w.n != 5 || w.count[20] != 0 || w.count[21] != 1 {
		t.Fatalf("age: n %d, counts %v", w.n, w.count[:30])
	}
	w.expire(math.MaxUint32, 10)
	if w.n != 0 {
		t.Fatal("old samples stayed")
	}
}

// simulateLatency feeds n ops (40% stat, 30% read, 30% write) to a
// controller at canary weight, the candidate's stat slowed by factor, and
// returns the op at which it rolled back, or -1. Latencies are lognormal
// (sigma 0.5); with bimodal, stat is a cache hit (0.1 ms) or a miss
// (1 ms) at even odds, the shape where two medians of one distribution
// differ most by chance.
func simulateLatency(t testing.TB, factor float64, bimodal bool, n int, seed uint64) int {
	c, err := New(Config{Initial: PhaseWeight[PhaseCanary], Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 23))
	for i := 1; i <= n; i++ {
		kind, median := "stat", time.Millisecond
		switch x := r.IntN(10); {
		case x < 3:
			kind, median = "read_file", 2*time.Millisecond
		case x < 6:
			kind, median = "write_file", 5*time.Millisecond
		case bimodal && r.IntN(2) == 0:
			median = 100 * time.Microsecond
		}
		cand := r.Float64() < c.Weight()
		if cand && kind == "stat" {
			median = time.Duration(factor * float64(median))
		}
		c.Observe(Observation{Compared: true, CandidateRan: true, CandidateTime: median,
			Op: kind, CandidateServed: cand, ServingTime: lognormal(r, median, 0.5)})
		if c.Weight() == 0 {
			if got := c.Status().State.Decision.Trigger; got != TriggerLatencyRatio {
				t.Fatalf("seed %d: rolled back on %s", seed, got)
			}
			return i
		}
	}
	return -1
}

// TestLatencyTriggerIsSound is the simulation the latency defaults come
// from (docs/rollout.md): at canary weight, no rollback over 100,000 ops
// (30 seeds: the simulation runs under -race in make test) without a
// difference (unimodal or bimodal), nor with a real but
// harmless 1.5x one; a rollback within 5,000 ops when stat alone is 3x or
// 5x slower.
func TestLatencyTriggerIsSound(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	tests := []struct {
		name    string
		factor  float64
		bimodal bool
		seeds   int
		n       int
		detect  bool
	}{
		{"alike", 1, false, 30, 100000, false},
		{"alike bimodal", 1, true, 30, 100000, false},
		{"1.5x", 1.5, false, 30, 100000, false},
		{"3x", 3, false, 100, 5000, true},
		{"5x", 5, false, 100, 5000, true},
		{"5x bimodal", 5, true, 100, 5000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits, worst, total := 0, 0, 0
			for seed := uint64(0); seed < uint64(tt.seeds); seed++ {
				if at := simulateLatency(t, tt.factor, tt.bimodal, tt.n, seed); at > 0 {
					hits++
					worst, total = max(worst, at), total+at
				}
			}
			t.Logf("stat %s at canary: %d/%d rollbacks within %d ops (mean %d ops, worst %d)",
				tt.name, hits, tt.seeds, tt.n, total/max(hits, 1), worst)
			if want := map[bool]int{true: tt.seeds, false: 0}[tt.detect]; hits != want {
				t.Fatalf("%d rollbacks of %d seeds, want %d", hits, tt.seeds, want)
			}
		})
	}
}

// BenchmarkObserve is the controller's cost per op on the proxy's path,
// latency comparison included.
func BenchmarkObserve(b *testing.B) {
	c, _ := New(Config{Initial: PhaseWeight[PhaseCanary], Logger: quiet()})
	r := rand.New(rand.NewPCG(1, 1))
	obs := make([]Observation, 4096)
	for i := range obs {
		obs[i] = Observation{Compared: true, CandidateRan: true, Op: []string{"stat", "read_file", "write_file"}[i%3],
			CandidateServed: r.IntN(10) == 0, ServingTime: lognormal(r, time.Millisecond, 0.5)}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Observe(obs[i%len(obs)])
	}
}

// TestLatencyGauges: an op kind's ratio and z are NaN ("no verdict")
// until both sides served LatencyMinSample ops of it, then the verdict;
// a weight change starts the comparison afresh; mirrored and failed ops
// (no Op) are no samples.
func TestLatencyGauges(t *testing.T) {
	c, _ := New(Config{Initial: 0.5, Logger: quiet()})
	ratio := func() float64 { return testutil.ToFloat64(c.mLatRatio.WithLabelValues("stat")) }
	obs := func(cand bool, d time.Duration) {
		c.Observe(Observation{CandidateRan: true, Op: "stat", CandidateServed: cand, ServingTime: d})
	}
	for i := 0; i < 49; i++ {
		obs(true, 3*time.Millisecond/2)
		obs(false, time.Millisecond)
		c.Observe(Observation{CandidateRan: true, CandidateTime: time.Millisecond}) // a mirrored op: no sample
	}
	if !math.IsNaN(ratio()) || len(c.Status().Latency) != 0 {
		t.Fatalf("a verdict before the minimum sample: ratio %v, %+v", ratio(), c.Status().Latency)
	}
	obs(false, time.Millisecond)
	obs(true, 3*time.Millisecond/2)
	st := c.Status()
	if r := ratio(); r < 1.4 || r > 1.6 || len(st.Latency) != 1 || st.Latency[0].NCand != 50 || st.Rates.Latency == nil || st.State.Weight != 0.5 {
		t.Fatalf("after 50 ops a side, the candidate 1.5x slower (under the 2x trigger): ratio %v, status %+v", r, st)
	}
	if err := c.Promote(0.75, "test"); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(ratio()) || len(c.Status().Latency) != 0 {
		t.Fatalf("the verdict survived a weight change: ratio %v", ratio())
	}
}

// TestLatencySeriesFromTheStart: the kinds named in Config.OpKinds have
// their ratio and z series from the first scrape, at NaN ("no verdict"),
// so the dashboard's latency panels do not read "no data".
func TestLatencySeriesFromTheStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Config{OpKinds: []string{"stat", "write"}, Registerer: reg, Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range fams {
		for _, m := range mf.GetMetric() {
			if n := mf.GetName(); n == "lighthouse_rollout_latency_ratio" || n == "lighthouse_rollout_latency_rank_z" {
				if !math.IsNaN(m.GetGauge().GetValue()) {
					t.Errorf("%s %v = %v before any op, want NaN", n, m.GetLabel(), m.GetGauge().GetValue())
				}
				got[n]++
			}
		}
	}
	if got["lighthouse_rollout_latency_ratio"] != 2 || got["lighthouse_rollout_latency_rank_z"] != 2 {
		t.Fatalf("series before any op: %v, want 2 of each", got)
	}
}

// TestLatencyMinDelta: a candidate 2.5x slower at tens of microseconds
// (what a control run of identical in-memory bridges measured for
// write_file: 29.7 µs vs 11.8 µs, z 6.4) is below latency_min_delta and
// no rollback; with the floor at 0 the same samples roll back, and a
// slowdown of milliseconds rolls back with the default floor.
func TestLatencyMinDelta(t *testing.T) {
	run := func(th Thresholds, cand, prim time.Duration) string {
		c, err := New(Config{Initial: 0.5, Thresholds: th, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 200 && c.Weight() > 0; i++ {
			c.Observe(Observation{CandidateRan: true, Op: "write_file", CandidateServed: true, ServingTime: cand})
			c.Observe(Observation{CandidateRan: true, Op: "write_file", ServingTime: prim})
		}
		if d := c.Status().State.Decision; d != nil {
			return d.Trigger
		}
		return ""
	}
	def := DefaultThresholds()
	noFloor := def
	noFloor.LatencyMinDelta = 0
	for _, tc := range []struct {
		th         Thresholds
		cand, prim time.Duration
		want       string
	}{
		{def, 30 * time.Microsecond, 12 * time.Microsecond, ""},
		{noFloor, 30 * time.Microsecond, 12 * time.Microsecond, TriggerLatencyRatio},
		{def, 5 * time.Millisecond, time.Millisecond, TriggerLatencyRatio},
	} {
		if got := run(tc.th, tc.cand, tc.prim); got != tc.want {
			t.Errorf("candidate %v vs primary %v, min delta %v: trigger %q, want %q", tc.cand, tc.prim, tc.th.LatencyMinDelta, got, tc.want)
		}
	}
}
