package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

var (
	agreeOps = flag.Int("e2e.agree-ops", 100000, "ops TestRealBridgesAgree sends through the proxy")
	fullMix  = flag.Bool("e2e.full-mix", false, "TestRealBridgesAgree: the full mix without the namespace split (see workload_test.go): shows the proxy's own divergences")
	// A read-back is one state request per touched path on each bridge,
	// answered from its store. A quarter reads back about 14,000 mutations
	// and keeps the mirror's extra work small on 2 loaded cores, where the
	// 8 clients already keep the shadow near its bounds.
	agreeReadback = flag.Float64("e2e.agree-readback", 0.25, "TestRealBridgesAgree: the proxy's --readback-rate")
)

// TestRealBridgesAgree: a bazil primary, a go-fuse shadow and the proxy,
// all real processes; 100,000 ops of the whole op vocabulary (handles,
// xattrs, hard and symbolic links, renameat2 flags, chmod 01777) from 8
// concurrent clients over a small shared namespace (workload_test.go),
// through the proxy's JSON API on keep-alive connections, 8 ops per batch
// request. Every difference must be a known one (compare/allowlist.yaml,
// from docs/compatibility.md): both the sticky bit and renameat2 ones must
// show up, nothing else.
func TestRealBridgesAgree(t *testing.T) {
	requireE2E(t)
	timed(t)
	root := testRoot(t)
	prim := startBridge(t, root, "bazil", "primary", "127.0.0.1:0")
	shad := startBridge(t, root, "gofuse", "shadow", "127.0.0.1:0")
	divLog := filepath.Join(root, "divergences.jsonl")
	px := startProxy(t, root, prim, shad, "--divergence-log", divLog, "--readback-rate", strconv.FormatFloat(*agreeReadback, 'g', -1, 64))

	const clients = 8
	api := newAPIClient(px.url(), clients)
	defer api.close()
	w := workload{clients: clients, ops: *agreeOps / clients, seed: 1, mix: mix{full: *fullMix}, batch: agreeBatch,
		exec: api.exec, execBatch: api.execBatch}
	sent := setup(t, api, clients)
	res := w.run(context.Background())
	sent += res.ops.Load()
	t.Logf("workload: %s", res)
	if res.errors.Load() > 0 {
		t.Errorf("%d client errors (want every op answered 200): %v", res.errors.Load(), res.errs)
	}
	st := waitProxyIdle(t, px, sent)
	t.Logf("proxy: ops %d, compared %d, divergent %d, by class %v, skipped %v, resyncs %d",
		st.Ops, st.Compared, st.Divergent, st.ByClass, st.Skipped, st.Resyncs)
	if st.Ops != sent {
		t.Errorf("proxy counted %d ops, clients sent %d", st.Ops, sent)
	}
	if st.Divergent != 0 {
		t.Errorf("%d divergences outside the allowlist; the first ones:\n%s", st.Divergent, notAllowedExamples(t, divLog, 5))
	}
	// After bazil refuses a renameat2 that go-fuse performs (allowed), the
	// proxy undoes it on go-fuse (proxy/undo.go); where it cannot, the
	// names differ and ops on them are skipped until their resync. Either
	// way, at most 2% of the ops may go uncompared for a difference (a
	// lagging shadow's stale ops are another matter: the mirror share).
	var quarantine int64
	for _, why := range []string{proxy.SkipQuarantined, proxy.SkipResync, proxy.SkipHandle} {
		quarantine += st.Skipped[why]
	}
	if quarantine*50 > sent || st.Compared < sent/2 {
		t.Errorf("%d of %d ops compared, %d (%.1f%%, want <= 2%%) skipped after differences (skipped: %v)",
			st.Compared, sent, quarantine, 100*float64(quarantine)/float64(sent), st.Skipped)
	}
	allowed := scrape(t, px.adminURL()+"/metrics").SumBy("lighthouse_fuse_backend_divergence_total", "op",
		map[string]string{"class": compare.ClassAllowed})
	t.Logf("allowed differences by op: %v", allowed)
	if allowed["rename"] == 0 || allowed["stat"]+allowed["lstat"] == 0 {
		t.Errorf("allowed differences by op %v: the mix should provoke both the renameat2 and the sticky bit ones", allowed)
	}
}

// notAllowedExamples returns the first n divergences of the log that are
// not allowlisted, compactly (payloads left out).
func notAllowedExamples(t *testing.T, path string, n int) string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer fh.Close()
	var out strings.Builder
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 128<<20)
	for sc.Scan() && n > 0 {
		var d proxy.Divergence
		// Allowed differences and shadow errors are logged but not
		// counted as divergent: show the ones the count is made of.
		if json.Unmarshal(sc.Bytes(), &d) != nil || d.Class == compare.ClassAllowed || d.Class == compare.ClassShadowError {
			continue
		}
		fmt.Fprintf(&out, "seq %d %s: %s", d.Seq, d.Class, opString(d.Op))
		if d.Readback != nil {
			fmt.Fprintf(&out, " (read-back %s)", opString(*d.Readback))
		}
		fmt.Fprintf(&out, "\n  %s: %s\n  %s: %s\n  recent:", d.Serving.Backend, outcomeString(d.Serving), d.Mirror.Backend, outcomeString(d.Mirror))
		for _, op := range d.Recent {
			fmt.Fprintf(&out, " [%s]", opString(op))
		}
		out.WriteString("\n")
		n--
	}
	return out.String()
}

// opString shows an op without its payload.
func opString(op fsop.Op) string {
	op.Data, op.Value = nil, nil
	b, _ := json.Marshal(op)
	return string(b)
}

func outcomeString(o proxy.Outcome) string {
	if o.Error != "" {
		return "error " + o.Error
	}
	if o.Result == nil {
		return "no result"
	}
	r := *o.Result
	if len(r.Data) > 16 {
		r.Data = r.Data[:16]
	}
	b, _ := json.Marshal(r)
	return string(b)
}

// agreeBatch is how many ops a client of TestRealBridgesAgree sends per
// request: the JSON API's batches run in order, like the same ops sent
// one by one, and cost one HTTP round trip.
const agreeBatch = 8
