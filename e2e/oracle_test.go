package e2e

import (
	"context"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lighthouse-fs/lighthouse/bridgeclient"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/verdict"
	builtin "github.com/lighthouse-fs/lighthouse/workload"
)

// TestOracleCatchesCorruptedPrimary: two real bridges, the primary's
// results passing through a wrapper that corrupts 2% of its successful
// read_file answers, a real proxy serving the workload over HTTP. The
// clients are served the corrupted bytes (the primary serves); the
// workload's own model of what it wrote must catch them as content
// mismatches (never more than were injected), and the verdict must FAIL
// naming the primary as the bridge that served them.
func TestOracleCatchesCorruptedPrimary(t *testing.T) {
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
	bad := &corrupting{Client: pc, rate: 0.02, r: rand.New(rand.NewPCG(5, 5))}
	p, err := proxy.New(proxy.Config{Primary: bad, Shadow: sc, PrimaryName: "bazil", ShadowName: "gofuse",
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()

	res, err := builtin.Run(context.Background(), builtin.HTTPExec(srv.URL), builtin.Config{Clients: 4, Ops: 4000, Seed: 9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	injected := bad.injected.Load()
	t.Logf("%d ops, %d reads verified, %d corrupted answers injected on the primary, mismatches %v, e.g. %q",
		res.Ops, res.Verified, injected, res.Mismatches, res.MismatchExamples)
	if injected == 0 {
		t.Fatal("nothing was injected: the test proves nothing")
	}
	if n := res.MismatchCount(); n == 0 || int64(n) > injected || res.Mismatches[builtin.MismatchContent] != n {
		t.Fatalf("mismatches %v for %d injected: want only content mismatches, at least one, at most the injected", res.Mismatches, injected)
	}
	run := verdict.Run{Ops: int64(res.Ops), Compared: int64(res.Ops), Drained: true}
	run.SetClients(res, nil)
	run.MismatchSide = verdict.ServingSide(p.Stats().ServedBy)
	v := verdict.Judge(run, verdict.Rules{})
	if v.ExitCode != verdict.ExitFail || !strings.Contains(v.Line, "did not match what the workload wrote") || !strings.HasSuffix(v.Line, "served by bazil") {
		t.Fatalf("verdict %q (exit %d): want a FAIL naming bazil", v.Line, v.ExitCode)
	}
}
