package rollout

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
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
