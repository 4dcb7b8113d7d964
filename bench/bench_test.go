package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/testbin"
)

func TestQuantile(t *testing.T) {
	us := func(xs ...int) []time.Duration {
		out := make([]time.Duration, len(xs))
		for i, x := range xs {
			out[i] = time.Duration(x) * time.Microsecond
		}
		return out
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", us(7), 0.99, 7 * time.Microsecond},
		{"median of four is the second (nearest rank)", us(1, 2, 3, 4), 0.5, 2 * time.Microsecond},
		{"p99 of 100 is the 99th", us(seq(100)...), 0.99, 99 * time.Microsecond},
		{"p100 is the max", us(1, 2, 3), 1, 3 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quantile(tt.sorted, tt.q); got != tt.want {
				t.Fatalf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestRatios(t *testing.T) {
	res := []Result{
		{Target: TargetBazilMount, Op: OpStat, Concurrency: 1, P50: 200},
		{Target: TargetGofuseMount, Op: OpStat, Concurrency: 1, P50: 50},
		{Target: TargetTmpdir, Op: OpStat, Concurrency: 1, P50: 2},
		{Target: TargetGofuseMount, Op: OpStat, Concurrency: 4, P50: 80}, // no bazil at c=4
		{Target: TargetProxyMirror, Op: OpWrite, Concurrency: 1, P50: 900},
		{Target: TargetBazilBridge, Op: OpWrite, Concurrency: 1, P50: 300},
		{Target: TargetBazilBridge, Op: OpStat, Concurrency: 1, P50: 300},
	}
	got := map[string]float64{}
	for _, r := range Ratios(res) {
		got[r.Key()] = r.Value
	}
	want := map[string]float64{
		"gofuse/bazil mount stat c1":   0.25,
		"mount/tmpdir bazil stat c1":   100,
		"mount/tmpdir gofuse stat c1":  25,
		"proxy/direct mirror write c1": 3,
		"bridge/mount bazil stat c1":   1.5,
	}
	if len(got) != len(want) {
		t.Fatalf("ratios %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func report(p50 map[string]float64) *Report {
	rep := &Report{Version: reportVersion}
	for k, v := range p50 {
		target, op, _ := strings.Cut(k, " ")
		rep.Results = append(rep.Results, Result{Target: target, Op: op, Concurrency: 1, P50: v})
	}
	return rep
}

func TestCompare(t *testing.T) {
	base := report(map[string]float64{
		"bazil-mount stat": 200, "gofuse-mount stat": 100,
		"bazil-bridge write": 300, "proxy-mirror write": 600,
	})
	tests := []struct {
		name      string
		now       map[string]float64
		threshold float64
		wantErr   error
		wantText  string
	}{
		{"same ratios, slower machine", map[string]float64{
			"bazil-mount stat": 400, "gofuse-mount stat": 200,
			"bazil-bridge write": 600, "proxy-mirror write": 1200,
		}, 0.5, nil, "all 2 ratios within their thresholds"},
		{"go-fuse stat 70% worse", map[string]float64{
			"bazil-mount stat": 200, "gofuse-mount stat": 170,
			"bazil-bridge write": 300, "proxy-mirror write": 600,
		}, 0.5, ErrRegression, "WORSE"},
		{"proxy better", map[string]float64{
			"bazil-mount stat": 200, "gofuse-mount stat": 100,
			"bazil-bridge write": 300, "proxy-mirror write": 250,
		}, 0.5, nil, "better"},
		{"within a generous threshold", map[string]float64{
			"bazil-mount stat": 200, "gofuse-mount stat": 170,
			"bazil-bridge write": 300, "proxy-mirror write": 600,
		}, 1, nil, "+70%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Compare(&out, base, report(tt.now), Thresholds{Ratio: tt.threshold, Family: tt.threshold})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err %v, want %v\n%s", err, tt.wantErr, out.String())
			}
			if !strings.Contains(out.String(), tt.wantText) {
				t.Fatalf("output lacks %q:\n%s", tt.wantText, out.String())
			}
		})
	}
	t.Run("nothing in common", func(t *testing.T) {
		_, err := Compare(&bytes.Buffer{}, base, report(map[string]float64{"tmpdir stat": 2}), Thresholds{Ratio: 0.5, Family: 0.5})
		if err == nil || errors.Is(err, ErrRegression) {
			t.Fatalf("err %v, want a nothing-compared error", err)
		}
	})
}

// TestCompareFamily: a cost added to every op of a layer moves each of its
// ratios by less than the per-ratio threshold and their geometric mean by
// more than the family's; one op's noise does not move the mean that far.
// Re-measuring a family takes all its ops.
func TestCompareFamily(t *testing.T) {
	ops := []string{OpStat, OpRead, OpWrite, OpReaddir}
	p50 := func(bridge ...float64) map[string]float64 {
		m := map[string]float64{}
		for i, op := range ops {
			m[TargetBazilMount+" "+op], m[TargetBazilBridge+" "+op] = 100, bridge[i]
		}
		return m
	}
	base := report(p50(100, 100, 100, 100))
	th := Thresholds{Ratio: 1.5, Family: 0.25}
	for _, tc := range []struct {
		name   string
		bridge []float64
		worse  bool
	}{
		{"every op 50% slower", []float64{150, 150, 150, 150}, true},
		{"one op twice as slow", []float64{200, 100, 100, 100}, false},
		{"unchanged", []float64{105, 95, 100, 100}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			changes, err := Compare(&out, base, report(p50(tc.bridge...)), th)
			worse := Worse(changes)
			if tc.worse != errors.Is(err, ErrRegression) || tc.worse != (len(worse) == 1) {
				t.Fatalf("err %v, worse %v, want a regression: %v\n%s", err, worse, tc.worse, out.String())
			}
			if !tc.worse {
				return
			}
			if c := worse[0]; c.Op != FamilyOp || c.Name != "bridge/mount bazil" || math.Abs(c.Change-0.5) > 1e-9 {
				t.Errorf("worse %+v, want the bridge/mount bazil family 50%% worse", c)
			}
			cfg := Recheck(Config{Targets: AllTargets, Ops: AllOps, Concurrency: []int{1}}, worse)
			if want := []string{OpRead, OpReaddir, OpStat, OpWrite}; !slices.Equal(cfg.Ops, want) {
				t.Errorf("recheck ops %v, want the family's %v", cfg.Ops, want)
			}
			if !strings.Contains(out.String(), FamilyOp) {
				t.Errorf("the table lacks the family row:\n%s", out.String())
			}
		})
	}
}

func TestReportRoundTrip(t *testing.T) {
	rep := report(map[string]float64{"bazil-mount stat": 200, "gofuse-mount stat": 100})
	rep.Ratios = Ratios(rep.Results)
	path := filepath.Join(t.TempDir(), "r.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Ratios) != 1 || got.Ratios[0].Value != 0.5 {
		t.Fatalf("ratios after a round trip: %+v", got.Ratios)
	}
}

func TestConfigRefusesUnknownNames(t *testing.T) {
	for _, cfg := range []Config{
		{Targets: []string{"nfs"}},
		{Ops: []string{"fsync"}},
		{Concurrency: []int{0}},
		{SeqSize: 1 << 20, SeqBlock: 2 << 20},
	} {
		if err := cfg.defaults(); err == nil {
			t.Errorf("%+v: accepted", cfg)
		}
	}
}

// TestRunInProcess runs every op on the two targets that need no child
// process, at two concurrencies, and checks the tables are complete.
func TestRunInProcess(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, Targets: []string{TargetTmpdir, TargetStore}, Iterations: 40, Warmup: 4,
		Concurrency: []int{1, 3}, SeqSize: 4 << 20, SeqBlock: 1 << 20}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * len(AllOps) * 2; len(rep.Results) != want {
		t.Fatalf("%d results, want %d", len(rep.Results), want)
	}
	for _, r := range rep.Results {
		wantN := 40
		if specByName(r.Op).seq {
			wantN = 4
		}
		if r.N != wantN || r.P50 <= 0 || r.P50 > r.P99 || r.OpsPerSec <= 0 {
			t.Errorf("%+v: want n %d and sane numbers", r, wantN)
		}
		if (r.MiBPerSec > 0) != (r.Op == OpWrite || r.Op == OpRead || specByName(r.Op).seq) {
			t.Errorf("%s %s: MiB/s %v", r.Target, r.Op, r.MiBPerSec)
		}
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	for _, want := range []string{"== 3 concurrent client(s)", "seqwrite", "store"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q", want)
		}
	}
	if rep.Settings.Tmpdir != "" {
		if _, err := os.Stat(rep.Settings.Tmpdir); !os.IsNotExist(err) {
			t.Errorf("tmpdir %s not removed: %v", rep.Settings.Tmpdir, err)
		}
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := Run(ctx, Config{Dir: t.TempDir(), Targets: []string{TargetTmpdir, TargetStore}, Iterations: 1 << 20,
		Concurrency: []int{2}, Ops: []string{OpStat}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

// TestRunEveryTarget builds the lighthouse binary and runs a tiny bench of
// every target, the lagging-shadow scenario included: the children start,
// the proxies see no divergence, and no mount is left behind.
func TestRunEveryTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and mounts: not in -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: ", err)
	}
	exe, err := testbin.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var log bytes.Buffer
	cfg := Config{Exe: exe, Dir: dir, Iterations: 20, Warmup: 2, Concurrency: []int{1, 2},
		SeqSize: 2 << 20, SeqBlock: 1 << 20, Lag: time.Second, LagClients: 2, Log: &log}
	rep, err := Run(context.Background(), cfg)
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	if want := len(AllTargets) * len(AllOps) * 2; len(rep.Results) != want {
		t.Errorf("%d results, want %d", len(rep.Results), want)
	}
	for _, p := range rep.Proxies {
		if p.Divergent > 0 {
			t.Errorf("%s: %d divergences", p.Target, p.Divergent)
		}
	}
	if rep.Lag == nil || rep.Lag.Ops == 0 {
		t.Errorf("lagging-shadow scenario: %+v", rep.Lag)
	}
	names := map[string]bool{}
	for _, r := range Ratios(rep.Results) {
		names[r.Name] = true
	}
	for _, d := range ratioDefs {
		if !names[d.name] {
			t.Errorf("no %s ratio", d.name)
		}
	}
	ms, err := fusemount.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if strings.HasPrefix(m.Dir, dir) {
			t.Errorf("mount left: %s", m.Dir)
		}
	}
}

func TestRecheckAndConfirmed(t *testing.T) {
	base := report(map[string]float64{
		"bazil-mount stat": 200, "gofuse-mount stat": 50, "tmpdir stat": 2,
		"bazil-mount write": 100, "gofuse-mount write": 10,
	})
	first, err := Compare(&bytes.Buffer{}, base, report(map[string]float64{
		"bazil-mount stat": 100, "gofuse-mount stat": 90, "tmpdir stat": 2, // go-fuse/bazil x3.6
		"bazil-mount write": 100, "gofuse-mount write": 30, // x3
	}), Thresholds{Ratio: 1.5, Family: 0.25})
	if !errors.Is(err, ErrRegression) || len(Worse(first)) != 2 {
		t.Fatalf("first comparison: %v, worse %v", err, Worse(first))
	}
	cfg := Recheck(Config{Targets: AllTargets, Ops: AllOps, Concurrency: []int{1, 4, 16}, Lag: time.Second}, Worse(first))
	if want := []string{OpStat, OpWrite}; !slices.Equal(cfg.Ops, want) {
		t.Errorf("recheck ops %v, want %v", cfg.Ops, want)
	}
	if want := []string{TargetBazilMount, TargetGofuseMount}; !slices.Equal(cfg.Targets, want) {
		t.Errorf("recheck targets %v, want %v", cfg.Targets, want)
	}
	if !slices.Equal(cfg.Concurrency, []int{1}) || cfg.Lag != 0 {
		t.Errorf("recheck concurrency %v lag %v, want [1] and none", cfg.Concurrency, cfg.Lag)
	}
	// Re-measured: stat is still 3x worse, write was noise.
	again, _ := Compare(&bytes.Buffer{}, base, report(map[string]float64{
		"bazil-mount stat": 150, "gofuse-mount stat": 120,
		"bazil-mount write": 100, "gofuse-mount write": 12,
	}), Thresholds{Ratio: 1.5, Family: 0.25})
	got := Confirmed(first, again)
	if len(got) != 1 || got[0].Key() != "gofuse/bazil mount stat c1" || got[0].Value != 0.8 {
		t.Fatalf("confirmed %+v, want gofuse/bazil mount stat at 0.8 (the re-measured value)", got)
	}
	if err := RegressionError(got, Thresholds{Ratio: 1.5, Family: 0.25}, 2); !errors.Is(err, ErrRegression) || !strings.Contains(err.Error(), "in all 2 runs") {
		t.Errorf("RegressionError = %v", err)
	}
	if err := RegressionError(Confirmed(first, nil), Thresholds{Ratio: 1.5, Family: 0.25}, 2); err != nil {
		t.Errorf("nothing reproduced, yet RegressionError = %v", err)
	}
}

// TestCheckBaseline: a ratio worse than the baseline fails the check only
// if every re-measurement (of just the worsened ops and targets) finds it
// worse again.
func TestCheckBaseline(t *testing.T) {
	base := report(map[string]float64{"bazil-mount stat": 200, "gofuse-mount stat": 50})
	first := report(map[string]float64{"bazil-mount stat": 100, "gofuse-mount stat": 90}) // x3.6
	for _, tc := range []struct {
		name    string
		again   []map[string]float64 // what each re-measurement finds
		confirm int
		want    error
		runs    int // measurements in all
		text    string
	}{
		{"worse every time", []map[string]float64{{"bazil-mount stat": 100, "gofuse-mount stat": 80}, {"bazil-mount stat": 100, "gofuse-mount stat": 85}},
			2, ErrRegression, 3, "in all 3 runs"},
		{"noise", []map[string]float64{{"bazil-mount stat": 200, "gofuse-mount stat": 60}},
			2, nil, 2, "did not reproduce in 1 more run(s)"},
		{"no confirmation asked", nil, 0, ErrRegression, 1, "in all 1 runs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			runs := 1
			measure := func(_ context.Context, cfg Config) (*Report, error) {
				if !slices.Equal(cfg.Ops, []string{OpStat}) || !slices.Equal(cfg.Targets, []string{TargetBazilMount, TargetGofuseMount}) {
					t.Errorf("re-measuring %v on %v, want stat on both mounts only", cfg.Ops, cfg.Targets)
				}
				rep := report(tc.again[runs-1])
				runs++
				return rep, nil
			}
			err := CheckBaseline(context.Background(), Config{Targets: AllTargets, Ops: AllOps, Concurrency: []int{1}}, base, first,
				CheckOptions{Thresholds: Thresholds{Ratio: 1.5, Family: 0.25}, Confirm: tc.confirm, Out: &out, Measure: measure})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("CheckBaseline = %v, want %v\n%s", err, tc.want, out.String())
			}
			if runs != tc.runs {
				t.Errorf("%d measurements, want %d", runs, tc.runs)
			}
			if got := out.String() + fmt.Sprint(err); !strings.Contains(got, tc.text) {
				t.Errorf("output and error lack %q:\n%s", tc.text, got)
			}
		})
	}
}
