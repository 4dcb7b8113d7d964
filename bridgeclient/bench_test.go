package bridgeclient

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/lighthouse-fs/lighthouse/bridge"
	"github.com/lighthouse-fs/lighthouse/fsop"
)

// The transport benchmarks: one op through the frames client, or through
// POST /v1/ops with encoding/json and a keep-alive http.Client, against an
// in-process degraded bridge over loopback; BenchmarkExecDirect is the
// baseline without a transport (Bridge.Exec called in process). allocs/op counts both sides
// (the bridge runs in the benchmark's process).
//
//	go test -run '^$' -bench 'Exec(Frames|HTTPJSON|Direct)' -benchmem ./bridgeclient
//
// Sub-benchmarks: stat and a 4 KiB write_file; seq is one goroutine (the
// latency of one hop), par1 and par16 are b.RunParallel with
// b.SetParallelism(1) and (16), i.e. GOMAXPROCS and 16 x GOMAXPROCS
// goroutines.

type execFunc func(ctx context.Context, op *fsop.Op) (fsop.Result, error)

type benchOp struct {
	name string
	op   func(goroutine int64) fsop.Op
}

var benchOps = []benchOp{
	{"stat", func(int64) fsop.Op { return fsop.Op{Kind: fsop.Stat, Path: "bench/f"} }},
	{"write4k", func(g int64) fsop.Op {
		return fsop.Op{Kind: fsop.WriteFile, Path: fmt.Sprintf("bench/w%d", g), Data: make([]byte, 4096)}
	}},
}

func benchTransport(b *testing.B, exec func(b *testing.B, br *bridge.Bridge, url string) execFunc) {
	br := startBridge(b, bridge.Config{})
	s := serve(b, br.Handler(nil))
	run := exec(b, br, s.URL())
	ctx := context.Background()
	for _, op := range []fsop.Op{
		{Kind: fsop.Mkdir, Path: "bench", Mode: 0o755},
		{Kind: fsop.WriteFile, Path: "bench/f", Data: make([]byte, 4096)},
	} {
		if res, err := run(ctx, &op); err != nil || res.Errno != "" {
			b.Fatalf("%s: %v %s", op.Kind, err, res.Errno)
		}
	}
	check := func(b *testing.B, res fsop.Result, err error) {
		if err != nil || res.Errno != "" {
			b.Fatalf("%v %s", err, res.Errno)
		}
	}
	for _, bo := range benchOps {
		b.Run(bo.name+"/seq", func(b *testing.B) {
			op := bo.op(0)
			b.ReportAllocs()
			for b.Loop() {
				res, err := run(ctx, &op)
				check(b, res, err)
			}
		})
		for _, par := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/par%d", bo.name, par), func(b *testing.B) {
				var next atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(par)
				b.RunParallel(func(pb *testing.PB) {
					op := bo.op(next.Add(1))
					for pb.Next() {
						res, err := run(ctx, &op)
						if err != nil || res.Errno != "" {
							b.Errorf("%v %s", err, res.Errno)
							return
						}
					}
				})
				b.ReportMetric(float64(par*runtime.GOMAXPROCS(0)), "goroutines")
			})
		}
	}
}

func BenchmarkExecFrames(b *testing.B) {
	benchTransport(b, func(b *testing.B, _ *bridge.Bridge, url string) execFunc {
		return newClient(b, url, Options{}).Exec
	})
}

func BenchmarkExecHTTPJSON(b *testing.B) {
	benchTransport(b, func(b *testing.B, _ *bridge.Bridge, url string) execFunc {
		tr := &http.Transport{MaxIdleConnsPerHost: 1024}
		b.Cleanup(tr.CloseIdleConnections)
		hc := &http.Client{Transport: tr}
		return func(_ context.Context, op *fsop.Op) (fsop.Result, error) {
			res, status, err := postJSON(hc, url, op)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("HTTP %d", status)
			}
			return res, err
		}
	})
}

func BenchmarkExecDirect(b *testing.B) {
	benchTransport(b, func(_ *testing.B, br *bridge.Bridge, _ string) execFunc { return br.Exec })
}
