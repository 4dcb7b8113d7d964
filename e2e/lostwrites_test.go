package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/bridgeclient"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

// losingBridge is a real bridge behind a double on its frames client that
// answers success to a share of writes without sending them: a lost write,
// acknowledged. It remembers each one (path and data are unique here).
type losingBridge struct {
	*bridgeclient.Client
	rate float64
	mu   sync.Mutex
	rng  *rand.Rand
	lost map[string]bool
}

func (b *losingBridge) Exec(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
	if op.Kind == fsop.WriteFile || op.Kind == fsop.Append {
		b.mu.Lock()
		drop := b.rng.Float64() < b.rate
		if drop {
			b.lost[lostKey(op)] = true
		}
		b.mu.Unlock()
		if drop {
			return fsop.Result{N: int64(len(op.Data))}, nil
		}
	}
	return b.Client.Exec(ctx, op)
}

func lostKey(op *fsop.Op) string { return op.Path + "\x00" + string(op.Data) }

// fileModel is what one sequential client knows the files hold: what every
// write it was told succeeded wrote.
type fileModel map[string]string

func (m fileModel) apply(op *fsop.Op, res fsop.Result) {
	if res.Errno != "" {
		return
	}
	switch op.Kind {
	case fsop.WriteFile:
		m[op.Path] = string(op.Data)
	case fsop.Append:
		m[op.Path] += string(op.Data)
	case fsop.Rename:
		if c, ok := m[op.Path]; ok {
			m[op.To] = c
			delete(m, op.Path)
		}
	case fsop.Unlink:
		delete(m, op.Path)
	}
}

// TestLostWritesOnRealBridges: a bridge that silently drops 1% of writes
// while answering success, behind a proxy over a real bazil primary and a
// real go-fuse shadow (bridges as child processes, frames transport). In
// the shadow phase with the faulty shadow, and in canary with the faulty
// candidate serving half the paths: every lost write that was compared is
// counted, none is left uncompared, the store of record is never restored
// from the other side, and it holds every write acknowledged to the client.
func TestLostWritesOnRealBridges(t *testing.T) {
	requireE2E(t)
	for _, tc := range []struct {
		name   string
		canary bool
	}{{"shadow phase", false}, {"canary", true}} {
		t.Run(tc.name, func(t *testing.T) {
			root := testRoot(t)
			prim := startBridge(t, root, "bazil", "primary", "127.0.0.1:0")
			shad := startBridge(t, root, "gofuse", "shadow", "127.0.0.1:0")
			pc, err := bridgeclient.New(prim.url(), bridgeclient.Options{})
			if err != nil {
				t.Fatal(err)
			}
			sc, err := bridgeclient.New(shad.url(), bridgeclient.Options{})
			if err != nil {
				t.Fatal(err)
			}
			bad := &losingBridge{Client: sc, rate: 0.01, rng: rand.New(rand.NewPCG(7, 8)), lost: map[string]bool{}}
			var rec bytes.Buffer
			var recMu sync.Mutex
			var weight atomic.Value
			weight.Store(0.0)
			cfg := proxy.Config{Primary: pc, Shadow: bad, PrimaryName: "bazil", ShadowName: "gofuse", ReadbackRate: 1,
				Record: writerFunc(func(b []byte) (int, error) { recMu.Lock(); defer recMu.Unlock(); return rec.Write(b) }),
				Weight: func() float64 { return weight.Load().(float64) }}
			if tc.canary {
				cfg.Route = proxy.CandidateRoute(func(key string) bool { return len(key)%2 == 0 })
				weight.Store(0.5)
			}
			p, err := proxy.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close(); pc.Close(); sc.Close() })

			model := fileModel{}
			r := rand.New(rand.NewPCG(1, 2))
			run := func(op fsop.Op) {
				res, err := p.Exec(context.Background(), &op)
				if err != nil {
					t.Fatalf("%s %s: %v", op.Kind, op.Path, err)
				}
				model.apply(&op, res)
			}
			dirs := []string{"d0", "d01", "d002", "d0003"} // path lengths of both parities
			for _, d := range dirs {
				run(fsop.Op{Kind: fsop.Mkdir, Path: d, Mode: 0o755})
			}
			const n = 3000
			for i := range n {
				d := dirs[r.IntN(len(dirs))]
				f := fmt.Sprintf("%s/f%d", d, r.IntN(4))
				data := []byte(fmt.Sprintf("op %d of %s\n", i, f))
				switch x := r.IntN(10); {
				case x < 4:
					run(fsop.Op{Kind: fsop.WriteFile, Path: f, Data: data})
				case x < 6:
					run(fsop.Op{Kind: fsop.Append, Path: f, Data: data})
				case x < 8:
					run(fsop.Op{Kind: fsop.ReadFile, Path: f})
				case x < 9:
					run(fsop.Op{Kind: fsop.Rename, Path: f, To: fmt.Sprintf("%s/f%d", d, r.IntN(4))})
				default:
					run(fsop.Op{Kind: fsop.Unlink, Path: f})
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := p.Drain(ctx); err != nil {
				t.Fatalf("ops not accounted: %v", err)
			}
			v := p.Stats()

			// Each lost write's outcome, from the record log.
			var counted, notCompared int
			recMu.Lock()
			sc2 := bufio.NewScanner(bytes.NewReader(rec.Bytes()))
			sc2.Buffer(nil, 1<<20)
			bad.mu.Lock()
			for sc2.Scan() {
				var rr proxy.Record
				if err := json.Unmarshal(sc2.Bytes(), &rr); err != nil {
					t.Fatal(err)
				}
				switch {
				case !bad.lost[lostKey(&rr.Op)]:
				case rr.Skipped != "":
					notCompared++
				case rr.Class != "":
					counted++
				}
			}
			lost := len(bad.lost)
			bad.mu.Unlock()
			recMu.Unlock()
			t.Logf("%d ops, coverage %.2f%%, lost writes %d: counted %d, not compared %d; by class %v, skipped %v, resyncs %d",
				v.Ops, 100*v.Coverage(), lost, counted, notCompared, v.ByClass, v.Skipped, v.Resyncs)
			if lost < 10 {
				t.Fatalf("only %d writes lost: the test did not exercise anything", lost)
			}
			if notCompared != 0 || float64(counted) < 0.99*float64(lost) {
				t.Fatalf("counted %d of %d lost writes (%d not compared), want at least 99%% counted and none skipped", counted, lost, notCompared)
			}

			// The store of record was never a resync's target, and holds
			// every write the client was told succeeded.
			m := scrape(t, prim.url()+"/metrics")
			if n := m.Sum("lighthouse_bridge_subtree_restores_total", nil) + m.Sum("lighthouse_bridge_snapshot_restores_total", nil); n != 0 {
				t.Fatalf("the primary (store of record) was restored %v times", n)
			}
			for path, want := range model {
				res, err := pc.Exec(context.Background(), &fsop.Op{Kind: fsop.ReadFile, Path: path})
				if err != nil || res.Errno != "" || string(res.Data) != want {
					t.Fatalf("the store of record lost an acknowledged write to %s: %q %v %q, want %q", path, res.Errno, err, res.Data, want)
				}
			}
		})
	}
}

// writerFunc adapts a function to io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
