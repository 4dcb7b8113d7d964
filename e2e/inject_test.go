package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lighthouse-fs/lighthouse/bridgeclient"
	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/metrics"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

// corrupting forwards to a real bridge and flips one byte in a fraction of
// its successful read_file results.
type corrupting struct {
	*bridgeclient.Client
	rate float64

	mu       sync.Mutex
	r        *rand.Rand
	reads    atomic.Int64 // successful read_file results seen
	injected atomic.Int64
}

func (c *corrupting) Exec(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
	res, err := c.Client.Exec(ctx, op)
	if err != nil || op.Kind != fsop.ReadFile || res.Errno != "" {
		return res, err
	}
	c.reads.Add(1)
	c.mu.Lock()
	hit := c.r.Float64() < c.rate
	c.mu.Unlock()
	if hit {
		c.injected.Add(1)
		if len(res.Data) == 0 {
			res.Data = []byte{0}
		} else {
			d := append([]byte(nil), res.Data...)
			d[len(d)/2] ^= 0x20
			res.Data = d
		}
	}
	return res, err
}

// TestInjectedDivergenceRealBridges: an in-process proxy over two real
// bridges, the shadow's results passing through a wrapper that corrupts 1%
// of its successful read_file answers. The proxy must count exactly the
// injected divergences, all of class data, so the rate it measures is the
// injected rate within binomial noise. Every mutation is read back too
// (the state comes from the bridges' stores, which the wrapper does not
// touch): the read-backs of two real bridges must not add a divergence.
// (Every class on a store-backed bridge is covered by proxy/proxy_test.go.)
func TestInjectedDivergenceRealBridges(t *testing.T) {
	requireE2E(t)
	timed(t)
	root := testRoot(t)
	prim := startBridge(t, root, "bazil", "primary", "127.0.0.1:0")
	shad := startBridge(t, root, "gofuse", "shadow", "127.0.0.1:0")
	pc, err := bridgeclient.New(prim.url(), bridgeclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sc, err := bridgeclient.New(shad.url(), bridgeclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	const rate = 0.01
	bad := &corrupting{Client: sc, rate: rate, r: rand.New(rand.NewPCG(3, 3))}
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	byClass := map[string]int{}
	p, err := proxy.New(proxy.Config{Primary: pc, Shadow: bad, PrimaryName: "bazil", ShadowName: "gofuse",
		ReadbackRate: 1, Registerer: reg,
		OnDivergence: func(d proxy.Divergence) {
			mu.Lock()
			byClass[fmt.Sprintf("%s/%s", d.Op.Kind, d.Class)]++
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// Files to read, then readers (and a few writers) on them.
	const files, clients, perClient = 64, 6, 2000
	ctx := context.Background()
	name := func(i int) string { return fmt.Sprintf("f%02d", i) }
	for i := 0; i < files; i++ {
		op := fsop.Op{Kind: fsop.WriteFile, Path: name(i), Data: []byte(fmt.Sprintf("file %d: %0*d", i, i*37%900, 0))}
		if _, err := p.Exec(ctx, &op); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var errs atomic.Int64
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(4, uint64(c)))
			for i := 0; i < perClient; i++ {
				op := fsop.Op{Kind: fsop.ReadFile, Path: name(r.IntN(files))}
				switch n := r.IntN(10); {
				case n == 0:
					op = fsop.Op{Kind: fsop.WriteFile, Path: op.Path, Data: []byte(fmt.Sprintf("rewritten by %d at %d", c, i))}
				case n == 1:
					op = fsop.Op{Kind: fsop.Stat, Path: op.Path}
				}
				if _, err := p.Exec(ctx, &op); err != nil {
					errs.Add(1)
				}
			}
		}(c)
	}
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if n := errs.Load(); n != 0 {
		t.Fatalf("%d ops failed", n)
	}
	st := p.Stats()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var comparedReads, divReads float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case mf.GetName() == "lighthouse_proxy_compared_total" && labels["op"] == "read_file":
				comparedReads += m.GetCounter().GetValue()
			case mf.GetName() == metrics.DivergenceTotal && labels["op"] == "read_file":
				divReads += m.GetCounter().GetValue()
			}
		}
	}
	n, injected := bad.reads.Load(), bad.injected.Load()
	measured := divReads / float64(n)
	sigma := math.Sqrt(rate * (1 - rate) / float64(n))
	t.Logf("ops %d, compared %d (read_file %.0f), successful shadow reads %d, injected %d (%.3f%%), divergences %v",
		st.Ops, st.Compared, comparedReads, n, injected, 100*float64(injected)/float64(n), byClass)
	t.Logf("measured divergence rate on read_file %.3f%%, injected rate %.3f%%, binomial sigma %.3f%% (|diff| = %.1f sigma)",
		100*measured, 100*rate, 100*sigma, math.Abs(measured-rate)/sigma)
	if int64(divReads) != injected {
		t.Errorf("%.0f read_file divergences counted, %d injected: each corruption must count exactly once", divReads, injected)
	}
	if got := byClass["read_file/"+compare.ClassData]; int64(got) != injected || len(byClass) != 1 {
		t.Errorf("divergences by op/class %v, want only read_file/data = %d", byClass, injected)
	}
	if math.Abs(measured-rate) > 4*sigma {
		t.Errorf("measured rate %.4f is more than 4 sigma (%.4f) from the injected %.4f", measured, sigma, rate)
	}
	if st.Divergent != injected {
		t.Errorf("divergent %d, want %d", st.Divergent, injected)
	}
}
