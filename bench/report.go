package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lighthouse-fs/lighthouse/proxy"
)

// reportVersion is the JSON report's format version.
const reportVersion = 1

// Report is a run's results, as `lighthouse bench --json` writes them.
type Report struct {
	Version  int          `json:"version"`
	Started  time.Time    `json:"started"`
	Machine  Machine      `json:"machine"`
	Settings Settings     `json:"settings"`
	Results  []Result     `json:"results"`
	Ratios   []Ratio      `json:"ratios"`
	Proxies  []ProxyStats `json:"proxies,omitempty"`
	Lag      *LagResult   `json:"lag,omitempty"`
}

// Settings are the knobs of a run that its numbers depend on.
type Settings struct {
	Targets      []string `json:"targets"`
	Ops          []string `json:"ops"`
	Iterations   int      `json:"iterations"`
	Warmup       int      `json:"warmup"`
	Concurrency  []int    `json:"concurrency"`
	Rounds       int      `json:"rounds"`
	SeqSize      int64    `json:"seq_size"`
	SeqBlock     int64    `json:"seq_block"`
	Cached       bool     `json:"cached"`
	ReadbackRate float64  `json:"readback_rate"`
	Tmpdir       string   `json:"tmpdir,omitempty"` // where the tmpdir target was
	CPUs         []int    `json:"cpus,omitempty"`   // the CPUs the run was pinned to
}

func settingsOf(c Config) Settings {
	rate := c.ReadbackRate
	if rate == 0 {
		rate = proxy.DefaultReadbackRate
	}
	return Settings{Targets: c.Targets, Ops: c.Ops, Iterations: c.Iterations, Warmup: c.Warmup,
		Concurrency: c.Concurrency, Rounds: c.Rounds, SeqSize: c.SeqSize, SeqBlock: c.SeqBlock,
		Cached: c.Cached, ReadbackRate: rate, CPUs: c.CPUs}
}

// Result is one target's numbers for one op type at one concurrency.
// Latencies are in microseconds; OpsPerSec is measured ops over the wall
// time of the slices they ran in.
type Result struct {
	Target      string       `json:"target"`
	Op          string       `json:"op"`
	Concurrency int          `json:"concurrency"`
	N           int          `json:"n"`
	P10         float64      `json:"p10_us"`
	P25         float64      `json:"p25_us"`
	Xs          [][3]float64 `json:"xs,omitempty"`
	P50         float64      `json:"p50_us"`
	P95         float64      `json:"p95_us"`
	P99         float64      `json:"p99_us"`
	OpsPerSec   float64      `json:"ops_per_sec"`
	MiBPerSec   float64      `json:"mib_per_sec,omitempty"`
	// SustainedOpsPerSec, for proxy-mirror, also counts the time the
	// mirror needed to finish after the serving path (ops / (wall +
	// drain)): what the proxy sustains with the shadow keeping up.
	SustainedOpsPerSec float64 `json:"sustained_ops_per_sec,omitempty"`
}

// ProxyStats are a proxy target's counters at the end of the run.
type ProxyStats struct {
	Target    string           `json:"target"`
	Ops       int64            `json:"ops"`
	Compared  int64            `json:"compared"`
	Divergent int64            `json:"divergent"`
	Readbacks int64            `json:"readbacks"`
	Resyncs   int64            `json:"resyncs"`
	Skipped   map[string]int64 `json:"skipped,omitempty"`
}

// quantile is the nearest-rank q-quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func micros(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)*100) / 100
}

func (r *runner) results() []Result {
	var out []Result
	for _, conc := range r.cfg.Concurrency {
		for _, s := range selectedSpecs(r.cfg.Ops) {
			for _, t := range r.targets {
				sm := r.samples[sampleKey{t.name, s.name, conc}]
				if sm == nil || len(sm.durs) == 0 {
					continue
				}
				out = append(out, summarize(t.name, s.name, conc, sm))
			}
		}
	}
	return out
}

func summarize(target, op string, conc int, sm *sample) Result {
	sorted := slices.Clone(sm.durs)
	slices.Sort(sorted)
	res := Result{Target: target, Op: op, Concurrency: conc, N: len(sorted),
		P50: micros(quantile(sorted, 0.50)), P95: micros(quantile(sorted, 0.95)), P99: micros(quantile(sorted, 0.99))}
	if sm.wall > 0 {
		res.OpsPerSec = math.Round(float64(len(sorted)) / sm.wall.Seconds())
		if sm.bytes > 0 {
			res.MiBPerSec = math.Round(float64(sm.bytes)*float64(len(sorted))/sm.wall.Seconds()/(1<<20)*10) / 10
		}
		if sm.drain > 0 {
			res.SustainedOpsPerSec = math.Round(float64(len(sorted)) / (sm.wall + sm.drain).Seconds())
		}
	}
	return res
}

// A ratio of two targets' median latencies for the same op and
// concurrency. Every ratio is "bigger is worse": the numerator is what
// the migration (or the harness) adds.
type ratioDef struct {
	name     string
	num, den string
}

var ratioDefs = []ratioDef{
	{"gofuse/bazil mount", TargetGofuseMount, TargetBazilMount},
	{"gofuse/bazil bridge", TargetGofuseBridge, TargetBazilBridge},
	{"proxy/direct mirror", TargetProxyMirror, TargetBazilBridge},
	{"proxy/direct nomirror", TargetProxyNoMirror, TargetBazilBridge},
	{"mount/tmpdir bazil", TargetBazilMount, TargetTmpdir},
	{"mount/tmpdir gofuse", TargetGofuseMount, TargetTmpdir},
	// The bridge's own cost: its API over the same op on its mount. Code
	// both bridges share (the frames server, the executor) cancels out of
	// every other ratio.
	{"bridge/mount bazil", TargetBazilBridge, TargetBazilMount},
	{"bridge/mount gofuse", TargetGofuseBridge, TargetGofuseMount},
	{"http/frames bazil", TargetBazilBridgeHTTP, TargetBazilBridge},
	{"proxy/direct http", TargetProxyHTTP, TargetBazilBridgeHTTP},
}

// Ratio is num's p50 over den's for one op at one concurrency.
type Ratio struct {
	Name        string  `json:"name"`
	Num         string  `json:"num"`
	Den         string  `json:"den"`
	Op          string  `json:"op"`
	Concurrency int     `json:"concurrency"`
	Value       float64 `json:"value"`
}

// Key identifies a ratio across runs.
func (r Ratio) Key() string { return fmt.Sprintf("%s %s c%d", r.Name, r.Op, r.Concurrency) }

// Ratios computes every ratio the results allow.
func Ratios(results []Result) []Ratio {
	type k struct {
		target, op string
		conc       int
	}
	p50 := map[k]float64{}
	for _, r := range results {
		p50[k{r.Target, r.Op, r.Concurrency}] = r.P50
	}
	var out []Ratio
	for _, d := range ratioDefs {
		for _, r := range results {
			if r.Target != d.num {
				continue
			}
			den, ok := p50[k{d.den, r.Op, r.Concurrency}]
			if !ok || den <= 0 {
				continue
			}
			out = append(out, Ratio{Name: d.name, Num: d.num, Den: d.den, Op: r.Op, Concurrency: r.Concurrency,
				Value: math.Round(r.P50/den*1000) / 1000})
		}
	}
	return out
}

// WriteJSON writes the report as indented JSON to path.
func (rep *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// LoadReport reads a report written by WriteJSON.
func LoadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if rep.Version != reportVersion {
		return nil, fmt.Errorf("%s: report version %d, want %d", path, rep.Version, reportVersion)
	}
	return &rep, nil
}

// WriteText writes the tables: latencies and rates per concurrency, then
// the ratios, the proxies' counters and the lagging-shadow scenario.
func (rep *Report) WriteText(w io.Writer) {
	m := rep.Machine
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d), %s, kernel %s, %s\n", m.CPUs, m.GOMAXPROCS, m.CPUModel, m.Kernel, m.GoVersion)
	s := rep.Settings
	cache := "uncached (direct I/O, timeouts 0)"
	if s.Cached {
		cache = "page cache on, timeouts 0"
	}
	fmt.Fprintf(w, "settings: %d iterations after %d warm-up per op, target and concurrency, in up to %d interleaved rounds; sequential: %d MiB in %d KiB blocks; mounts %s; proxy read-back rate %g\n",
		s.Iterations, s.Warmup, s.Rounds, s.SeqSize>>20, s.SeqBlock>>10, cache, s.ReadbackRate)
	if len(s.CPUs) > 0 {
		fmt.Fprintf(w, "pinned: this process and its children ran on CPU(s) %v only\n", s.CPUs)
	}
	if s.Tmpdir != "" {
		fmt.Fprintf(w, "tmpdir: %s\n", s.Tmpdir)
	}
	for _, conc := range s.Concurrency {
		fmt.Fprintf(w, "\n== %d concurrent client(s): latency in us\n", conc)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "op\ttarget\tn\tp50\tp95\tp99\tops/s\tMiB/s\t")
		rep.eachRow(conc, func(op string, r Result, mib string) {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%.0f\t%s\t\n", op, r.Target, r.N, fmtUs(r.P50), fmtUs(r.P95), fmtUs(r.P99), r.OpsPerSec, mib)
		})
		tw.Flush()
	}
	rep.writeRatios(w)
	rep.writeSustained(w)
	for _, p := range rep.Proxies {
		fmt.Fprintf(w, "\n%s: %d ops, %d compared, %d divergent, %d read-backs, %d resyncs", p.Target, p.Ops, p.Compared, p.Divergent, p.Readbacks, p.Resyncs)
		if len(p.Skipped) > 0 {
			fmt.Fprintf(w, ", skipped %v", p.Skipped)
		}
	}
	if len(rep.Proxies) > 0 {
		fmt.Fprintln(w)
	}
	if rep.Lag != nil {
		rep.Lag.writeText(w)
	}
}

// writeRatios prints one row per ratio and op, one column per concurrency.
func (rep *Report) writeRatios(w io.Writer) {
	if len(rep.Ratios) == 0 {
		return
	}
	concs := rep.Settings.Concurrency
	fmt.Fprintf(w, "\n== ratios of p50 latency (bigger is worse)\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "ratio\top\t")
	for _, c := range concs {
		fmt.Fprintf(tw, "c=%d\t", c)
	}
	fmt.Fprintln(tw)
	byKey := map[string]float64{}
	for _, r := range rep.Ratios {
		byKey[r.Key()] = r.Value
	}
	for _, d := range ratioDefs {
		for _, op := range AllOps {
			row := fmt.Sprintf("%s\t%s\t", d.name, op)
			found := false
			for _, c := range concs {
				v, ok := byKey[Ratio{Name: d.name, Op: op, Concurrency: c}.Key()]
				if ok {
					row += fmt.Sprintf("%.2f\t", v)
					found = true
				} else {
					row += "-\t"
				}
			}
			if found {
				fmt.Fprintln(tw, row)
			}
		}
	}
	tw.Flush()
}

func fmtUs(us float64) string {
	switch {
	case us >= 100:
		return fmt.Sprintf("%.0f", us)
	case us >= 10:
		return fmt.Sprintf("%.1f", us)
	}
	return fmt.Sprintf("%.2f", us)
}

// eachRow calls row for each result at concurrency conc, in order, with
// the op name only on the first row of its group and MiB/s formatted ("" for
// ops that move no data): one latency table's rows, as text or Markdown.
func (rep *Report) eachRow(conc int, row func(op string, r Result, mib string)) {
	last := ""
	for _, r := range rep.Results {
		if r.Concurrency != conc {
			continue
		}
		op := r.Op
		if op == last {
			op = ""
		}
		last = r.Op
		mib := ""
		if r.MiBPerSec > 0 {
			mib = fmt.Sprintf("%.1f", r.MiBPerSec)
		}
		row(op, r, mib)
	}
}

// Markdown renders the latency tables for the given concurrencies as
// Markdown (docs/performance.md).
func (rep *Report) Markdown(w io.Writer, concs []int) {
	for _, conc := range concs {
		fmt.Fprintf(w, "\n%d concurrent client(s), latency in us:\n\n", conc)
		fmt.Fprintln(w, "| op | target | p50 | p95 | p99 | ops/s | MiB/s |")
		fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|")
		rep.eachRow(conc, func(op string, r Result, mib string) {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.0f | %s |\n", op, r.Target, fmtUs(r.P50), fmtUs(r.P95), fmtUs(r.P99), r.OpsPerSec, mib)
		})
	}
	if len(rep.Ratios) == 0 {
		return
	}
	fmt.Fprintf(w, "\nRatios of p50 latency (bigger is worse):\n\n| ratio | op |")
	for _, c := range rep.Settings.Concurrency {
		fmt.Fprintf(w, " c=%d |", c)
	}
	fmt.Fprintf(w, "\n|---|---|%s\n", strings.Repeat("---:|", len(rep.Settings.Concurrency)))
	byKey := map[string]float64{}
	for _, r := range rep.Ratios {
		byKey[r.Key()] = r.Value
	}
	for _, d := range ratioDefs {
		for _, op := range AllOps {
			row := fmt.Sprintf("| %s | %s |", d.name, op)
			found := false
			for _, c := range rep.Settings.Concurrency {
				if v, ok := byKey[Ratio{Name: d.name, Op: op, Concurrency: c}.Key()]; ok {
					row += fmt.Sprintf(" %.2f |", v)
					found = true
				} else {
					row += " - |"
				}
			}
			if found {
				fmt.Fprintln(w, row)
			}
		}
	}
}

// writeSustained prints the mirrored proxies' rates counting the time
// their mirror needed to catch up, beside one bridge alone over the same
// transport.
func (rep *Report) writeSustained(w io.Writer) {
	alone := map[string]string{TargetProxyMirror: TargetBazilBridge, TargetProxyHTTP: TargetBazilBridgeHTTP}
	direct := map[[3]any]float64{}
	for _, r := range rep.Results {
		direct[[3]any{r.Target, r.Op, r.Concurrency}] = r.OpsPerSec
	}
	for _, target := range []string{TargetProxyMirror, TargetProxyHTTP} {
		header := false
		for _, r := range rep.Results {
			if r.Target != target || r.SustainedOpsPerSec == 0 {
				continue
			}
			if !header {
				fmt.Fprintf(w, "\n== %s: ops/s on the serving path, and sustained (the mirror caught up), beside %s alone\n", target, alone[target])
				header = true
			}
			fmt.Fprintf(w, "c=%-3d %-9s serving %7.0f  sustained %7.0f  %s %7.0f\n", r.Concurrency, r.Op, r.OpsPerSec, r.SustainedOpsPerSec,
				alone[target], direct[[3]any{alone[target], r.Op, r.Concurrency}])
		}
	}
}
