package bridge_test

// Latency of an op through a bridge's HTTP API (client -> HTTP/JSON ->
// bridge -> executor process -> syscall on the FUSE mount -> library ->
// store, and back) against the same syscalls made by this process directly
// on the bridge's mount (syscall -> kernel -> library -> store).
//
//	go test -run '^$' -bench BridgeVsDirect -benchtime 1000x ./bridge
//
// TestBridgeLatencyTable (latency_test.go) prints the tables of
// docs/performance.md from the same ops.

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/bridgeclient"
	"github.com/lighthouse-fs/lighthouse/fsop"
)

// benchOp is one measured operation, through the API and directly.
type benchOp struct {
	name string
	// api returns the ops of iteration i, each sent as its own request.
	api func(i int) []fsop.Op
	// direct makes the same syscalls on the mount.
	direct func(mount string, i int) error
}

var benchData = bytes.Repeat([]byte("0123456789abcdef"), 256) // 4 KiB

func benchOps() []benchOp {
	return []benchOp{
		{
			name: "stat",
			api:  func(int) []fsop.Op { return []fsop.Op{{Kind: fsop.Stat, Path: "bench/f"}} },
			direct: func(m string, _ int) error {
				var st unix.Stat_t
				return unix.Stat(filepath.Join(m, "bench/f"), &st)
			},
		},
		{
			name: "write 4 KiB",
			api: func(int) []fsop.Op {
				return []fsop.Op{{Kind: fsop.Write, Path: "bench/f", Offset: 0, Data: benchData}}
			},
			direct: func(m string, _ int) error {
				fd, err := unix.Open(filepath.Join(m, "bench/f"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					return err
				}
				_, err = unix.Pwrite(fd, benchData, 0)
				return firstErr(err, unix.Close(fd))
			},
		},
		{
			name: "read 4 KiB",
			api:  func(int) []fsop.Op { return []fsop.Op{{Kind: fsop.Read, Path: "bench/f", Offset: 0, Length: 4096}} },
			direct: func(m string, _ int) error {
				fd, err := unix.Open(filepath.Join(m, "bench/f"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					return err
				}
				buf := make([]byte, 4096)
				n, err := unix.Pread(fd, buf, 0)
				if err == nil && n != 4096 {
					err = fmt.Errorf("read %d bytes", n)
				}
				return firstErr(err, unix.Close(fd))
			},
		},
		{
			name: "create+unlink",
			api: func(int) []fsop.Op {
				return []fsop.Op{{Kind: fsop.Create, Path: "bench/c", Mode: 0o644}, {Kind: fsop.Unlink, Path: "bench/c"}}
			},
			direct: func(m string, _ int) error {
				p := filepath.Join(m, "bench/c")
				fd, err := unix.Open(p, unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
				if err != nil {
					return err
				}
				return firstErr(unix.Close(fd), unix.Unlink(p))
			},
		},
		{
			name: "mkdir+rmdir",
			api: func(int) []fsop.Op {
				return []fsop.Op{{Kind: fsop.Mkdir, Path: "bench/d", Mode: 0o755}, {Kind: fsop.Rmdir, Path: "bench/d"}}
			},
			direct: func(m string, _ int) error {
				p := filepath.Join(m, "bench/d")
				return firstErr(unix.Mkdir(p, 0o755), unix.Rmdir(p))
			},
		},
		{
			name: "readdir 100",
			api:  func(int) []fsop.Op { return []fsop.Op{{Kind: fsop.Readdir, Path: "bench/dir100"}} },
			direct: func(m string, _ int) error {
				fd, err := unix.Open(filepath.Join(m, "bench/dir100"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					return err
				}
				buf := make([]byte, 32<<10)
				for {
					n, err := unix.Getdents(fd, buf)
					if err != nil || n == 0 {
						return firstErr(err, unix.Close(fd))
					}
				}
			},
		},
		{
			name: "rename",
			api: func(i int) []fsop.Op {
				return []fsop.Op{{Kind: fsop.Rename, Path: fmt.Sprintf("bench/r%d", i%2), To: fmt.Sprintf("bench/r%d", (i+1)%2)}}
			},
			direct: func(m string, i int) error { // its own pair of names: the two paths may interleave
				return unix.Rename(filepath.Join(m, fmt.Sprintf("bench/q%d", i%2)), filepath.Join(m, fmt.Sprintf("bench/q%d", (i+1)%2)))
			},
		},
		{
			name: "chmod",
			api: func(i int) []fsop.Op {
				return []fsop.Op{{Kind: fsop.Chmod, Path: "bench/f", Mode: []uint32{0o600, 0o644}[i%2]}}
			},
			direct: func(m string, i int) error {
				return unix.Chmod(filepath.Join(m, "bench/f"), []uint32{0o600, 0o644}[i%2])
			},
		},
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// prepareBench makes the tree the bench ops work on. rename alternates
// r0 -> r1 and back (q0 and q1 directly): after an even number of
// iterations r0 and q0 exist again.
func prepareBench(t testing.TB, b *bridgeProc) {
	t.Helper()
	ops := []fsop.Op{
		{Kind: fsop.Mkdir, Path: "bench", Mode: 0o755},
		{Kind: fsop.Mkdir, Path: "bench/dir100", Mode: 0o755},
		{Kind: fsop.WriteFile, Path: "bench/f", Data: benchData},
		{Kind: fsop.WriteFile, Path: "bench/r0", Data: []byte("r")},
		{Kind: fsop.WriteFile, Path: "bench/q0", Data: []byte("q")},
	}
	for i := 0; i < 100; i++ {
		ops = append(ops, fsop.Op{Kind: fsop.Create, Path: fmt.Sprintf("bench/dir100/entry-%03d", i), Mode: 0o644})
	}
	for i, res := range b.batch(t, ops...) {
		if res.Errno != "" {
			t.Fatalf("prepare %s %s: %s", ops[i].Kind, ops[i].Path, res.Errno)
		}
	}
}

// apiIteration sends the ops of iteration i, one request each, over the
// shared keep-alive client, and checks each answers success.
func apiIteration(b *bridgeProc, op benchOp, i int) error {
	for _, o := range op.api(i) {
		status, res, body, err := b.tryOp(o)
		if err != nil {
			return err
		}
		if status != http.StatusOK || res.Errno != "" {
			return fmt.Errorf("%s %s: %d %s", o.Kind, o.Path, status, body)
		}
	}
	return nil
}

// latencies runs fn warm times unmeasured, then n times measured.
func latencies(warm, n int, fn func(i int) error) ([]time.Duration, error) {
	for i := 0; i < warm; i++ {
		if err := fn(i); err != nil {
			return nil, err
		}
	}
	out := make([]time.Duration, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := fn(warm + i); err != nil {
			return nil, err
		}
		out[i] = time.Since(start)
	}
	return out, nil
}

// percentile of sorted durations (q in 0..1).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

// BenchmarkBridgeVsDirect reports, per backend, op and path (api: through
// the HTTP API; frames: through the frames transport the proxy uses, one
// bridgeclient connection; direct: the same syscalls on the mount from this
// process), the time per iteration and its p50 and p99 in microseconds.
// Each path runs as its own sub-benchmark; TestBridgeLatencyTable
// interleaves them iteration by iteration.
func BenchmarkBridgeVsDirect(b *testing.B) {
	for _, backend := range []string{"bazil", "gofuse"} {
		b.Run(backend, func(b *testing.B) {
			br := startBridge(b, bridgeOpts{Backend: backend})
			prepareBench(b, br)
			fc, err := bridgeclient.New(br.URL, bridgeclient.Options{Conns: 1})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { fc.Close() })
			bb := &benchBridge{b: br, fc: fc}
			for _, op := range benchOps() {
				for _, path := range []string{"api", "frames", "direct"} {
					b.Run(strings.ReplaceAll(op.name, " ", "_")+"/"+path, func(b *testing.B) {
						fn := func(i int) error { return apiIteration(br, op, i) }
						if path != "api" {
							fn = func(i int) error { return bb.run(op, path, i) }
						}
						if _, err := latencies(100, 0, fn); err != nil { // warm up
							b.Fatal(err)
						}
						n := b.N + b.N%2 // rename must end where it started
						b.ResetTimer()
						d, err := latencies(0, n, func(i int) error { return fn(100 + i) })
						b.StopTimer()
						if err != nil {
							b.Fatal(err)
						}
						slices.Sort(d)
						b.ReportMetric(float64(percentile(d, 0.50).Nanoseconds())/1e3, "p50-us")
						b.ReportMetric(float64(percentile(d, 0.99).Nanoseconds())/1e3, "p99-us")
					})
				}
			}
		})
	}
}
