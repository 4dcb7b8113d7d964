package report

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/metrics"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/rollout"
	"github.com/lighthouse-fs/lighthouse/verdict"
	"github.com/lighthouse-fs/lighthouse/workload"
)

// The text reports: the summary `lighthouse up --workload` prints after a
// run of the whole harness (Harness), and the shorter one of `lighthouse
// workload` against a proxy running elsewhere (Remote). Paths are printed
// as given: the caller makes them relative where it wants.

// Bridge is one bridge of a harness run.
type Bridge struct {
	Role, Backend string // primary, bazil
	Active        string // the backend it reported running
	URL, Mount    string
	Log           string
}

// Harness is what the report of a whole-harness run shows.
type Harness struct {
	Dir           string // the working directory
	Seed          uint64
	Clients       int
	ClientAPI     string // the proxy API the clients used (host:port)
	Bridges       []Bridge
	Workload      workload.Result
	Drained       bool
	Stats         proxy.StatsView
	Rollout       rollout.Status
	Serving       map[string]metrics.Quantiles // the proxy's serving-path histogram, by served_by
	BridgeLatency map[string]metrics.Quantiles // the bridges' histograms, by backend
	BridgeNice    map[string]int               // backends whose bridge yielded the CPU (only mirrored)
	Record        string
	Divergences   string
	ProxyLog      string
	Verdict       verdict.Verdict
}

// ProxyRequestDuration is the proxy's serving-path histogram, shown by
// the report's latency section.
const ProxyRequestDuration = "lighthouse_proxy_request_duration_seconds"

// WriteText writes the report: run, traffic, rollout, divergences,
// latency, per-op table, where the logs are, and the verdict.
func (r *Harness) WriteText(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "Lighthouse harness report (%s)\n", r.Dir)
	r.writeRun(w)
	r.writeTraffic(w)
	w.Flush()
	r.writeRollout(w)
	writeDivergences(w, r.Stats)
	w.Flush()
	r.writeLatency(w)
	w.Flush()
	r.writeByOp(w)
	w.Flush()
	logs := []string{r.ProxyLog}
	for _, b := range r.Bridges {
		logs = append(logs, b.Log)
	}
	fmt.Fprintf(out, "\nrecord: %s  divergences: %s  logs: %s\n", r.Record, r.Divergences, strings.Join(logs, ", "))
	fmt.Fprintf(out, "VERDICT: %s\n", r.Verdict.Line)
}

func section(w io.Writer, title string) { fmt.Fprintf(w, "\n%s\n", title) }

func (r *Harness) writeRun(w io.Writer) {
	res := &r.Workload
	section(w, "RUN")
	rate := float64(res.Ops) / math.Max(res.Elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "  workload\tseed %d, %d clients, %d ops (%d of them building the tree) in %s: %.0f ops/s\n",
		r.Seed, r.Clients, res.Ops, res.SetupOps, res.Elapsed.Round(time.Millisecond), rate)
	fmt.Fprintf(w, "  clients\tHTTP+JSON, keep-alive, to the proxy API http://%s\n", r.ClientAPI)
	for _, b := range r.Bridges {
		fmt.Fprintf(w, "  %s bridge\t%s on %s, mount %s\n", b.Role, b.Active, b.URL, b.Mount)
	}
}

func (r *Harness) writeTraffic(w io.Writer) {
	res, v := &r.Workload, r.Stats
	section(w, "TRAFFIC")
	fmt.Fprintf(w, "  ops sent\t%d\n", res.Ops)
	fmt.Fprintf(w, "  no result (transport, 4xx, 5xx)\t%d\n", res.Errors)
	fmt.Fprintf(w, "  errno results\t%s\t(races between clients and the workload's deliberate misses: normal)\n", Counts(res.Errnos))
	fmt.Fprintf(w, "  reads checked by the workload\t%d, wrong: %s\t(against what it wrote: content, size, existence)\n", res.Verified, Counts(res.Mismatches))
	for _, e := range res.MismatchExamples {
		fmt.Fprintf(w, "    wrong read\t%s\n", e)
	}
	fmt.Fprintf(w, "  ops the proxy served, by bridge\t%s\t(the workload's, and any from the front mount)\n", Counts(v.ServedBy))
	pct := 0.0
	if v.Ops > 0 {
		pct = 100 * float64(v.Compared) / float64(v.Ops)
	}
	fmt.Fprintf(w, "  compared\t%d of %d (%.1f%%)\n", v.Compared, v.Ops, pct)
	fmt.Fprintf(w, "  skipped, by reason\t%s\n", Counts(v.Skipped))
	fmt.Fprintf(w, "  state read-backs\t%d\n", v.Readbacks)
	fmt.Fprintf(w, "  readdir order differences\t%d\t(reported, not divergences)\n", v.OrderOnly)
	fmt.Fprintf(w, "  resyncs\t%d\n", v.Resyncs)
	fmt.Fprintf(w, "  max mirror queue\t%d ops, max lag %.2f s\n", v.MaxQueueDepth, v.MaxLagSeconds)
	fmt.Fprintf(w, "  mirror share\t%s\n", shareLine(v))
	if !r.Drained {
		fmt.Fprintf(w, "  mirror\tNOT caught up when the report was taken\n")
	}
}

func (r *Harness) writeRollout(w io.Writer) {
	section(w, "ROLLOUT")
	ro := r.Rollout.State
	fmt.Fprintf(w, "  phase at the end\t%s, go-fuse serves %.0f%% of paths\t(rolled back: %v)\n", ro.Phase, 100*ro.Weight, ro.RolledBack)
	if len(ro.History) == 0 {
		fmt.Fprintf(w, "  decisions\tnone\n")
	}
	for _, d := range ro.History {
		fmt.Fprintf(w, "  %s\t%s %.0f%% -> %.0f%%\t%s\n", d.Time.Format("15:04:05.000"), d.Action, 100*d.From, 100*d.To, d.Reason)
	}
}

// writeDivergences lists the divergences by class with the first example
// of each.
func writeDivergences(w io.Writer, v proxy.StatsView) {
	section(w, "DIVERGENCES (class: count, first example)")
	classes := SortedKeys(v.ByClass)
	if len(classes) == 0 {
		fmt.Fprintf(w, "  none\n")
	}
	for _, c := range classes {
		note := ""
		if c == compare.ClassAllowed {
			note = " (allowlisted: not counted)"
		}
		fmt.Fprintf(w, "  %s\t%d%s\n", c, v.ByClass[c], note)
		if ex := v.Examples[c]; len(ex) > 0 {
			d := ex[0]
			fmt.Fprintf(w, "    first\t%s\n", DescribeOp(&d.Op))
			if d.Readback != nil {
				fmt.Fprintf(w, "    read back\t%s\n", DescribeOp(d.Readback))
			}
			fmt.Fprintf(w, "    %s vs %s\t%s\n", d.Serving.Backend, d.Mirror.Backend, ShortDiff(d))
			if d.Allowed != "" {
				fmt.Fprintf(w, "    allowed\t%s\n", d.Allowed)
			}
		}
	}
}

func ms(s float64) string { return fmt.Sprintf("%.2fms", s*1000) }

func dur(d time.Duration) string { return ms(d.Seconds()) }

func (r *Harness) writeLatency(w io.Writer) {
	res := &r.Workload
	section(w, "LATENCY\tp50\tp95\tp99\tn")
	fmt.Fprintf(w, "  client round trip, all ops (workload, HTTP+JSON through the proxy)\t%s\t%s\t%s\t%d\n",
		dur(res.All.P50), dur(res.All.P95), dur(res.All.P99), res.All.N)
	for _, name := range SortedKeys(r.Serving) {
		q := r.Serving[name]
		fmt.Fprintf(w, "  serving path, served by %s (proxy histogram %s)\t%s\t%s\t%s\t%.0f\n",
			name, ProxyRequestDuration, ms(q.P50), ms(q.P95), ms(q.P99), q.N)
	}
	for _, name := range SortedKeys(r.BridgeLatency) {
		q := r.BridgeLatency[name]
		fmt.Fprintf(w, "  %s bridge, every op on its mount (bridge histogram %s)\t%s\t%s\t%s\t%.0f\n",
			name, metrics.OperationDuration, ms(q.P50), ms(q.P95), ms(q.P99), q.N)
		if n := r.BridgeNice[name]; n > 0 {
			fmt.Fprintf(w, "    (it only mirrored, at nice %d: its times include waiting for the CPU, not only %s's own cost)\n", n, name)
		}
	}
	fmt.Fprintf(w, "  (histogram values are interpolated inside buckets; the client round trip is measured exactly)\n")
}

func (r *Harness) writeByOp(w io.Writer) {
	res := &r.Workload
	section(w, "BY OP (client round trip)\tcount\tp50\tp95\tp99\terrnos")
	for _, k := range res.Kinds() {
		p := res.Latency[k]
		fmt.Fprintf(w, "  %s\t%d\t%s\t%s\t%s\t%s\n", k, res.ByKind[k], dur(p.P50), dur(p.P95), dur(p.P99), Counts(res.ErrnosByKind[k]))
	}
}

// Remote is what the report of `lighthouse workload` shows: the clients'
// side and what the proxy counted during the run.
type Remote struct {
	Workload workload.Result
	Counted  proxy.Status // the difference of the proxy's counters over the run
	Verdict  verdict.Verdict
}

// WriteText writes the report, the verdict's line last.
func (r *Remote) WriteText(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	res, d := &r.Workload, &r.Counted
	fmt.Fprintf(w, "ops sent\t%d in %.1fs (%.0f ops/s), %d without a result\n", res.Ops, res.Elapsed.Seconds(),
		float64(res.Ops)/max(res.Elapsed.Seconds(), 1e-9), res.Errors)
	fmt.Fprintf(w, "reads checked\t%d, wrong: %s\n", res.Verified, Counts(res.Mismatches))
	for _, e := range res.MismatchExamples {
		fmt.Fprintf(w, "  wrong read\t%s\n", e)
	}
	fmt.Fprintf(w, "client latency\tp50 %v  p95 %v  p99 %v\n", res.All.P50, res.All.P95, res.All.P99)
	fmt.Fprintf(w, "proxy ops / compared / read back\t%d / %d / %d\n", d.Ops, d.Compared, d.Readbacks)
	fmt.Fprintf(w, "divergences by class\t%s\n", Counts(d.ByClass))
	fmt.Fprintf(w, "skipped\t%s\n", Counts(d.Skipped))
	fmt.Fprintf(w, "resyncs\t%d\n", d.Resyncs)
	for _, b := range d.Bridges {
		fmt.Fprintf(w, "%s (%s)\tqueue %d, stale %v\n", b.Role, b.Backend, b.QueueDepth, b.Stale)
	}
	fmt.Fprintf(w, "\n%s\n", r.Verdict.Line)
	w.Flush()
}

// DescribeOp is an op on one line: "rename a -> b", "read handle 3".
func DescribeOp(op *fsop.Op) string {
	s := string(op.Kind)
	if op.Path != "" {
		s += " " + op.Path
	}
	if op.To != "" {
		s += " -> " + op.To
	}
	if op.Handle != 0 {
		s += fmt.Sprintf(" handle %d", op.Handle)
	}
	return s
}

// ShortDiff is the divergence's diff on one line: where file data differs,
// otherwise the changed lines of the diff.
func ShortDiff(d proxy.Divergence) string {
	if a, b := d.Serving.Result, d.Mirror.Result; a != nil && b != nil && a.Errno == b.Errno && !bytes.Equal(a.Data, b.Data) {
		i := 0
		for i < len(a.Data) && i < len(b.Data) && a.Data[i] == b.Data[i] {
			i++
		}
		return fmt.Sprintf("data: %d vs %d bytes, first difference at byte %d", len(a.Data), len(b.Data), i)
	}
	var parts []string
	for _, l := range strings.Split(d.Diff, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+") {
			parts = append(parts, strings.Join(strings.Fields(l), " "))
		}
	}
	s := strings.Join(parts, " | ")
	if s == "" {
		switch {
		case d.Mirror.Error != "":
			s = "mirror error: " + d.Mirror.Error
		case d.Serving.Error != "":
			s = "serving error: " + d.Serving.Error
		default:
			s = strings.Join(strings.Fields(d.Diff), " ")
		}
	}
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// Counts renders "a 3, b 1", largest first; "none" when empty.
func Counts[N int | int64](m map[string]N) string {
	keys := make([]string, 0, len(m))
	for k, n := range m {
		if n > 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "none"
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// SortedKeys are m's keys in order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
