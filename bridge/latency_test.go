package bridge_test

// The tables of docs/performance.md ("Bridge HTTP API vs the same syscall
// on its mount", "Where a bridge op's time goes"):
//
//	LIGHTHOUSE_BENCH=1 go test -count=1 -timeout 1h -run TestBridgeLatencyTable -v ./bridge
//
// Per backend and op (bench_test.go), each iteration makes the op through
// the HTTP API (keep-alive, JSON), through the frames transport the proxy
// uses (bridgeclient, one connection), and directly on the bridge's mount
// from this process, in turn, so that all three see the same machine.
// Then a counting pass runs each path alone and reads, from /proc, the
// CPU time and the voluntary context switches (wake-ups: each is a sleep
// something had to end) per op of the bridge, its executor and this
// process.
//
// LIGHTHOUSE_BENCH_BASE=PATH adds bridges of another lighthouse binary (an
// earlier commit's), interleaved op by op with this one's;
// LIGHTHOUSE_BENCH_SYNC=always,none runs each fsync policy (default
// always); LIGHTHOUSE_BENCH_OPS=stat,write picks ops by name prefix;
// LIGHTHOUSE_BENCH_N sets the measured iterations (default 1000);
// LIGHTHOUSE_BENCH_OUT=FILE also writes the tables there.

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/bridgeclient"
)

// benchPaths are the ways an op is made: HTTP API, frames, directly.
var benchPaths = []string{"http", "frames", "direct"}

// benchBridge is one bridge under measurement.
type benchBridge struct {
	label, backend, sync string
	b                    *bridgeProc
	fc                   *bridgeclient.Client
}

func (bb *benchBridge) name() string {
	return fmt.Sprintf("%s %s, sync %s", bb.backend, bb.label, bb.sync)
}

// run makes iteration i of op through path.
func (bb *benchBridge) run(op benchOp, path string, i int) error {
	switch path {
	case "http":
		return apiIteration(bb.b, op, i)
	case "frames":
		for _, o := range op.api(i) {
			res, err := bb.fc.Exec(context.Background(), &o)
			if err != nil {
				return err
			}
			if res.Errno != "" {
				return fmt.Errorf("%s %s: %s", o.Kind, o.Path, res.Errno)
			}
		}
		return nil
	}
	return op.direct(bb.b.Mount, i)
}

// procCost is what /proc says a process spent: CPU time and voluntary
// context switches, summed over its threads.
type procCost struct {
	cpu  time.Duration
	wake int64
}

func (a procCost) sub(b procCost) procCost { return procCost{a.cpu - b.cpu, a.wake - b.wake} }

// costOf reads pid's threads' schedstat (CPU ns) and status (voluntary
// switches).
func costOf(pid int) procCost {
	var c procCost
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		dir := fmt.Sprintf("/proc/%d/task/%s/", pid, task.Name())
		if b, err := os.ReadFile(dir + "schedstat"); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				c.cpu += time.Duration(ns)
			}
		}
		if b, err := os.ReadFile(dir + "status"); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					c.wake += n
				}
			}
		}
	}
	return c
}

// costRow is the cost per op of one path: bridge, executor, this process.
type costRow struct {
	bridge, op, path string
	cpu              [3]time.Duration
	wakes            [3]float64
}

type latencyRow struct {
	bridge, op string
	p50, p99   map[string]time.Duration // by path
}

// TestBridgeLatencyTable prints the latency and cost tables of
// docs/performance.md. It runs only with LIGHTHOUSE_BENCH=1.
func TestBridgeLatencyTable(t *testing.T) {
	if os.Getenv("LIGHTHOUSE_BENCH") != "1" {
		t.Skip("a benchmark: run with LIGHTHOUSE_BENCH=1")
	}
	warm, n := 100, 1000
	if v, err := strconv.Atoi(os.Getenv("LIGHTHOUSE_BENCH_N")); err == nil && v > 0 {
		n = v + v%2 // rename must end where it started
	}
	load := loadAverage()
	type bin struct{ label, path string }
	bins := []bin{{"now", ""}}
	if base := os.Getenv("LIGHTHOUSE_BENCH_BASE"); base != "" {
		bins = append([]bin{{"base", base}}, bins...)
	}
	var bbs []*benchBridge
	for _, sync := range strings.Split(envOr("LIGHTHOUSE_BENCH_SYNC", "always"), ",") {
		for _, backend := range []string{"bazil", "gofuse"} {
			for _, bn := range bins {
				br := startBridge(t, bridgeOpts{Backend: backend, Bin: bn.path, Args: []string{"--sync", sync}})
				prepareBench(t, br)
				fc, err := bridgeclient.New(br.URL, bridgeclient.Options{Conns: 1})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { fc.Close() })
				bbs = append(bbs, &benchBridge{label: bn.label, backend: backend, sync: sync, b: br, fc: fc})
			}
		}
	}
	var rows []latencyRow
	var costs []costRow
	for _, op := range benchOps() {
		if want := os.Getenv("LIGHTHOUSE_BENCH_OPS"); want != "" && !slices.ContainsFunc(strings.Split(want, ","), func(w string) bool { return strings.HasPrefix(op.name, w) }) {
			continue
		}
		// Every bridge and path in turn, iteration by iteration.
		lat := map[*benchBridge]map[string][]time.Duration{}
		for _, bb := range bbs {
			lat[bb] = map[string][]time.Duration{}
		}
		for i := 0; i < warm+n; i++ {
			for _, bb := range bbs {
				for _, path := range benchPaths {
					start := time.Now()
					if err := bb.run(op, path, i); err != nil {
						t.Fatalf("%s %s %s: %v", bb.name(), op.name, path, err)
					}
					if i >= warm {
						lat[bb][path] = append(lat[bb][path], time.Since(start))
					}
				}
			}
		}
		for _, bb := range bbs {
			r := latencyRow{bridge: bb.name(), op: op.name, p50: map[string]time.Duration{}, p99: map[string]time.Duration{}}
			for path, d := range lat[bb] {
				slices.Sort(d)
				r.p50[path], r.p99[path] = percentile(d, 0.5), percentile(d, 0.99)
			}
			rows = append(rows, r)
			costs = append(costs, countCosts(t, bb, op, n/2)...)
		}
	}
	md := latencyMarkdown(rows, warm, n, load) + "\n" + costMarkdown(costs)
	fmt.Print(md)
	if out := os.Getenv("LIGHTHOUSE_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// countCosts runs k iterations of op through each path of bb alone and
// returns the cost per op of the bridge, its executor and this process.
func countCosts(t *testing.T, bb *benchBridge, op benchOp, k int) []costRow {
	t.Helper()
	execs := executorPIDs(bb.b.PID())
	if len(execs) != 1 {
		t.Fatalf("executors of %s: %v", bb.name(), execs)
	}
	pids := []int{bb.b.PID(), execs[0], os.Getpid()}
	var out []costRow
	for _, path := range benchPaths {
		var before [3]procCost
		for j, pid := range pids {
			before[j] = costOf(pid)
		}
		for i := range k {
			if err := bb.run(op, path, i); err != nil {
				t.Fatalf("%s %s %s: %v", bb.name(), op.name, path, err)
			}
		}
		r := costRow{bridge: bb.name(), op: op.name, path: path}
		for j, pid := range pids {
			c := costOf(pid).sub(before[j])
			r.cpu[j], r.wakes[j] = c.cpu/time.Duration(k), float64(c.wake)/float64(k)
		}
		out = append(out, r)
	}
	return out
}

func latencyMarkdown(rows []latencyRow, warm, n int, load string) string {
	var b strings.Builder
	var uts unix.Utsname
	unix.Uname(&uts)
	fmt.Fprintf(&b, "Machine: %d CPUs (nproc), %s, Linux %s, %s, load average %s before the run. %d iterations per row after %d warm-up ones.\n\n",
		runtime.NumCPU(), cpuModel(), unix.ByteSliceToString(uts.Release[:]), runtime.Version(),
		load, n, warm)
	b.WriteString("| bridge | op | HTTP p50 | frames p50 | direct p50 | HTTP p99 | frames p99 | direct p99 | HTTP/direct p50 | frames/direct p50 | HTTP/direct p99 | frames/direct p99 |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	us := func(d time.Duration) string { return fmt.Sprintf("%.0f us", float64(d.Nanoseconds())/1e3) }
	x := func(a, b time.Duration) string { return fmt.Sprintf("%.2fx", float64(a)/float64(b)) }
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.bridge, r.op,
			us(r.p50["http"]), us(r.p50["frames"]), us(r.p50["direct"]),
			us(r.p99["http"]), us(r.p99["frames"]), us(r.p99["direct"]),
			x(r.p50["http"], r.p50["direct"]), x(r.p50["frames"], r.p50["direct"]),
			x(r.p99["http"], r.p99["direct"]), x(r.p99["frames"], r.p99["direct"]))
	}
	return b.String()
}

func costMarkdown(rows []costRow) string {
	var b strings.Builder
	b.WriteString("Per op: CPU time (us) and wake-ups (voluntary context switches) of each process, from /proc.\n\n")
	b.WriteString("| bridge | op | path | bridge CPU | bridge wake-ups | executor CPU | executor wake-ups | client CPU | client wake-ups |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |", r.bridge, r.op, r.path)
		for j := range r.cpu {
			fmt.Fprintf(&b, " %.0f | %.1f |", float64(r.cpu[j].Nanoseconds())/1e3, r.wakes[j])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// loadAverage is the 1, 5 and 15 minute load average.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
