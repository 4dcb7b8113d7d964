package dashboards

import (
	"fmt"
	"strconv"
	"strings"
)

// UID is the dashboard's stable uid: links and provisioning use it.
const UID = "lighthouse-dual-fuse"

// FileName is the committed dashboard, in this directory.
const FileName = "lighthouse-dual-fuse.json"

// RateInterval is Grafana's rate window variable, used by every rate().
const RateInterval = "$__rate_interval"

// The rollback thresholds drawn on the panels: the rollout controller's
// defaults (rollout.DefaultThresholds) and the alert rules'.
const (
	DivergenceThreshold = 0.001 // 0.1% of compared ops
	ErrorRateThreshold  = 0.01  // 1% of the candidate's ops
	P99Threshold        = 1.0   // seconds
	CUSUMDivergenceH    = 11    // rollout.DefaultThresholds().HDivergent
	CUSUMErrorsH        = 14    // rollout.DefaultThresholds().HErrors (error and slow)
	LatencyRatio        = 2.0   // rollout.DefaultThresholds().LatencyRatio
	LatencyZ            = 5.0   // rollout.DefaultThresholds().LatencyZ
	MirrorMaxLag        = 10.0  // seconds: the proxy's --mirror-max-lag default
	CoverageMin         = 0.95  // rollout.DefaultThresholds().MinCoverage
)

// Backends of the migration: the primary and the candidate, as the
// backend label of the bridge metrics spells them.
const (
	PrimaryBackend   = "bazil"
	CandidateBackend = "gofuse"
)

// DivergenceRatio is the fraction of compared ops that diverged over
// window, allowlisted differences and shadow errors excluded (the rollout's
// divergence trigger; the recording rule lighthouse:divergence_ratio:rate5m
// with window 5m). It is 0, not empty, while nothing diverges, and empty
// while nothing is compared.
func DivergenceRatio(window string) string {
	compared := fmt.Sprintf("sum(rate(lighthouse_proxy_compared_total[%s]))", window)
	return fmt.Sprintf(`(sum(rate(lighthouse_fuse_backend_divergence_total{class!~"allowed|shadow_error"}[%s])) or 0 * %s) / %s`,
		window, compared, compared)
}

// Coverage is the share of served ops in the mirror share that were
// compared over window (the rest were skipped, with a reason; ops sampled
// out of the share never were meant to be): the verdict and the rollout
// speak only for this share.
func Coverage(window string) string {
	compared := fmt.Sprintf("sum(rate(lighthouse_proxy_compared_total[%s]))", window)
	return fmt.Sprintf(`%s / (%s + (sum(rate(lighthouse_proxy_mirror_skipped_total{reason!="sampled_out"}[%s])) or 0 * %s))`, compared, compared, window, compared)
}

// LatencyQuantile is the q-quantile of the bridges' op latency over
// window, one series per backend; selector (e.g. `backend="gofuse"`) may
// be empty.
func LatencyQuantile(q float64, selector, window string) string {
	return fmt.Sprintf("histogram_quantile(%s, sum by (le, backend) (rate(lighthouse_fuse_operation_duration_seconds_bucket%s[%s])))",
		strconv.FormatFloat(q, 'g', -1, 64), braces(selector), window)
}

// ProxyLatencyQuantile is the q-quantile of the proxy's serving latency
// over window, one series per bridge that served.
func ProxyLatencyQuantile(q float64, window string) string {
	return fmt.Sprintf("histogram_quantile(%s, sum by (le, served_by) (rate(lighthouse_proxy_request_duration_seconds_bucket[%s])))",
		strconv.FormatFloat(q, 'g', -1, 64), window)
}

// RollbacksIn counts the rollbacks of the last window by trigger. Not
// increase(): the controller creates a trigger's series at its first
// rollback, with the value 1, and increase() over a series that starts at 1
// is 0, so the first rollback of each trigger would never show. The
// counter minus its value a window ago (0 if it did not exist then) counts
// it. A proxy restart inside the window resets the counter (the difference
// may then be low).
func RollbacksIn(window string) string {
	return fmt.Sprintf("sum by (trigger) (lighthouse_rollout_rollbacks_total - (lighthouse_rollout_rollbacks_total offset %s or 0 * lighthouse_rollout_rollbacks_total))", window)
}

// RollbackAnnotation marks each rollback: a counter that changed in the
// last minute, or that appeared in it (the first rollback of a trigger,
// which changes() cannot see: it has no earlier sample).
const RollbackAnnotation = "changes(lighthouse_rollout_rollbacks_total[1m]) > 0 or (lighthouse_rollout_rollbacks_total unless lighthouse_rollout_rollbacks_total offset 1m)"

// WeightAnnotation marks each change of the candidate's weight (promote,
// automatic advance, rollback).
const WeightAnnotation = "changes(lighthouse_rollout_candidate_weight[1m]) > 0"

// lighthouseProcs keeps, of a process or Go collector metric, the series
// of Lighthouse's own processes, whatever their scrape jobs are called:
// the bridges and the proxy all export lighthouse_fuse_backend_active.
const lighthouseProcs = " and on (job, instance) lighthouse_fuse_backend_active"

func braces(selector string) string {
	if selector == "" {
		return ""
	}
	return "{" + selector + "}"
}

// Lighthouse builds the dashboard.
func Lighthouse() *Dashboard {
	d := &Dashboard{
		Description: "Lighthouse dual-FUSE migration (primary bazil.org/fuse, candidate go-fuse): operations, latency, divergence, " +
			"rollout and rollbacks, the three rollback triggers, mirror health and resources. Runbook: dashboards/README.md.",
		Editable:      true,
		GraphTooltip:  1,
		Links:         []Link{{Title: "Runbook", Type: "link", URL: "https://github.com/lighthouse-fs/lighthouse/blob/main/dashboards/README.md#runbook", Tooltip: "what to do when a panel turns red", TargetBlank: true, Icon: "doc"}},
		Refresh:       "30s",
		SchemaVersion: 39,
		Tags:          []string{"lighthouse", "fuse", "migration"},
		Time:          TimeRange{From: "now-1h", To: "now"},
		Title:         "Lighthouse: dual FUSE (bazil -> go-fuse)",
		UID:           UID,
		Version:       1,
	}
	d.Templating.List = []*Variable{{Label: "Data source", Name: "datasource", Options: []any{}, Query: "prometheus", Refresh: 1, Type: "datasource"}}
	d.Annotations.List = []*Annotation{
		{BuiltIn: 1, Datasource: &Datasource{Type: "grafana", UID: "-- Grafana --"}, Enable: true, Hide: true,
			IconColor: "rgba(0, 211, 255, 1)", Name: "Annotations & Alerts", Type: "dashboard"},
		{Datasource: PromDatasource, Enable: true, IconColor: "red", Name: "Rollbacks", Expr: RollbackAnnotation, Step: "15s",
			TitleFormat: "Rollback", TextFormat: "trigger {{trigger}} (lighthouse status shows the decision)", TagKeys: "trigger"},
		{Datasource: PromDatasource, Enable: true, IconColor: "blue", Name: "Candidate weight changes", Expr: WeightAnnotation, Step: "15s",
			TitleFormat: "Candidate weight changed", TextFormat: "promote, advance or rollback"},
	}

	l := &layout{d: d}
	ri := RateInterval

	l.row("Operations")
	l.add(12, 8, timeseries("Bridge operations by backend and op",
		"Ops each bridge executed through its FUSE mount, per second: the primary (bazil) serves and the candidate (go-fuse) mirrors, or the reverse for the candidate's share of paths.",
		"ops", q(fmt.Sprintf("sum by (backend, op) (rate(lighthouse_fuse_operations_total[%s]))", ri), "{{backend}} {{op}}")))
	l.add(6, 8, timeseries("Proxy operations by served_by",
		"Client ops through the proxy per second, by the bridge that served them: go-fuse serves the candidate weight's share (0 in the shadow phase).",
		"ops", q(fmt.Sprintf("sum by (served_by) (rate(lighthouse_proxy_operations_total[%s]))", ri), "served by {{served_by}}")))
	l.add(6, 8, table("Active FUSE backends",
		"Each bridge's FUSE library and role, as the bridges and the proxy report them; \"degraded\" means neither library could mount.",
		instant("max by (job, instance, backend, role) (lighthouse_fuse_backend_active) == 1", "")))

	l.row("Latency: bazil vs go-fuse")
	for _, b := range []struct{ backend, title string }{{PrimaryBackend, "bazil (primary) op latency"}, {CandidateBackend, "go-fuse (candidate) op latency"}} {
		var ts []*Target
		for _, qn := range []float64{0.5, 0.95, 0.99} {
			ts = append(ts, q(LatencyQuantile(qn, `backend="`+b.backend+`"`, ri), fmt.Sprintf("p%g", 100*qn)))
		}
		p := timeseries(b.title, "P50, P95 and P99 of the time one op takes through the backend's mount (bridge histogram lighthouse_fuse_operation_duration_seconds), log scale; the two panels side by side compare the libraries. A bridge that only mirrors yields the CPU (nice 19, lighthouse_bridge_nice), so in the shadow phase go-fuse's times include waiting for the CPU: compare the libraries in the canary phase, where both serve at full priority.", "s", ts...)
		p.FieldConfig.Defaults.Custom.ScaleDistribution = &ScaleDistrib{Type: "log", Log: 10}
		l.add(8, 8, p)
	}
	proxyLat := timeseries("Proxy serving latency by served_by",
		"What clients wait for: P50 and P99 of one op through the proxy (admission, ordering, the serving bridge), by the bridge that served it.",
		"s", q(ProxyLatencyQuantile(0.5, ri), "p50 {{served_by}}"), q(ProxyLatencyQuantile(0.99, ri), "p99 {{served_by}}"))
	proxyLat.FieldConfig.Defaults.Custom.ScaleDistribution = &ScaleDistrib{Type: "log", Log: 10}
	l.add(8, 8, proxyLat)

	l.row("Divergence")
	ratio := timeseries("Divergence ratio (divergent / compared)",
		"Compared ops whose results differ between bazil and go-fuse, allowlisted differences (class allowed) and shadow errors excluded: the rollout's divergence trigger. Red line: the 0.1% rollback threshold.",
		"percentunit", q(DivergenceRatio(ri), "divergence ratio"), q(constant(DivergenceThreshold), "threshold 0.1%"))
	withThreshold(ratio, DivergenceThreshold, "threshold 0.1%")
	ratio.FieldConfig.Defaults.Decimals = intp(3)
	l.add(8, 8, ratio)
	cov := timeseries("Coverage (compared / served) and mirror share",
		"The share of served ops whose results were compared, among those in the mirror share; the rest were skipped, by the reasons under Mirror health. The divergence ratio speaks only for this share, and the rollout does not advance on a window below 95% (min_coverage, red line). Mirror share: the share of the tree (by unit: the first --mirror-share-depth path components, default 2) mirrored to the bridge that is not the store of record; below 100% the proxy mirrors less because that bridge cannot keep up (--mirror-share auto) or was told to (--mirror-share 0.25), and ops in the rest are skipped as sampled_out.",
		"percentunit", q(Coverage(ri), "coverage"), q("min by (bridge) (lighthouse_proxy_mirror_share)", "mirror share {{bridge}}"), q(constant(CoverageMin), "minimum 95%"))
	cov.FieldConfig.Defaults.Thresholds = steps("red", CoverageMin, "green")
	cov.FieldConfig.Defaults.Custom.ThresholdsStyle = &ThresholdsStyle{Mode: "dashed"}
	dashed(cov, "minimum 95%", "red")
	cov.FieldConfig.Defaults.Max = f64p(1)
	l.add(8, 8, cov)
	l.add(8, 8, stacked(timeseries("Compared ops by op",
		"Ops whose results were compared between the two bridges, per second: the divergence ratio's denominator. Ops not compared are under Mirror health, skipped.",
		"ops", q(fmt.Sprintf("sum by (op) (rate(lighthouse_proxy_compared_total[%s]))", ri), "{{op}}"))))
	l.add(8, 8, bars(timeseries("Divergences by class",
		"Divergences per second by class: errno, data, attr, entries, state (read-back after a mutation), shadow_error (the mirror failed), allowed (a known difference, compare/allowlist.yaml: not counted in the ratio).",
		"ops", q(fmt.Sprintf("sum by (class) (rate(lighthouse_fuse_backend_divergence_total[%s]))", ri), "{{class}}"))))
	l.add(8, 8, bars(timeseries("Counted divergences by op",
		"Divergences that count toward the rollback (allowed and shadow_error excluded), per second, by op: where to look in the divergence log.",
		"ops", q(fmt.Sprintf(`sum by (op) (rate(lighthouse_fuse_backend_divergence_total{class!~"allowed|shadow_error"}[%s]))`, ri), "{{op}}"))))
	l.add(8, 8, table("Divergences since proxy start",
		"Every divergence the running proxy counted, by class and op (exact counts: a rate cannot show a class's first divergence).",
		instant("sum by (class, op) (lighthouse_fuse_backend_divergence_total)", "")))

	l.row("Rollout")
	phase := stat("Phase", "The current rollout phase: shadow (go-fuse only mirrored), canary (10%), progressive (50-90%), full (100%).",
		"", instant("lighthouse_rollout_phase == 1", "{{phase}}"))
	phase.Options.(statOptions)["textMode"] = "name"
	phase.FieldConfig.Defaults.Color = &FieldColor{Mode: "fixed", FixedColor: "blue"}
	l.add(4, 6, phase)
	weight := timeseries("Candidate weight", "Fraction of ops served by go-fuse; a rollback drops it to 0 (blue and red marks: weight changes and rollbacks).",
		"percentunit", q("max(lighthouse_rollout_candidate_weight)", "go-fuse weight"))
	weight.FieldConfig.Defaults.Custom.LineInterpolation = "stepAfter"
	weight.FieldConfig.Defaults.Max = f64p(1)
	l.add(7, 6, weight)
	rb := stat("Rollbacks in range by trigger",
		"Rollbacks in the dashboard's time range, by trigger (divergence, error_rate, p99_latency, latency_ratio, manual); red marks on every graph show when.",
		"", instant(RollbacksIn("$__range"), "{{trigger}}"))
	rb.FieldConfig.Defaults.NoValue = "no rollback"
	rb.FieldConfig.Defaults.Thresholds = steps("green", 1, "red")
	rb.FieldConfig.Defaults.Color = &FieldColor{Mode: "thresholds"}
	l.add(5, 6, rb)
	cusum := timeseries("CUSUM statistics",
		"Each trigger's CUSUM statistic; a trigger fires when it reaches its h (dashed: the default h, 11 for divergence, 14 for error and slow) after at least 500 observations.",
		"none", q("max by (signal) (lighthouse_rollout_cusum)", "{{signal}}"),
		q(constant(CUSUMDivergenceH), "h divergence"), q(constant(CUSUMErrorsH), "h error, slow"))
	dashed(cusum, "h divergence", "orange")
	dashed(cusum, "h error, slow", "red")
	l.add(8, 6, cusum)

	l.row("Rollback triggers: error rate and P99")
	errs := timeseries("Error rate per backend",
		"Failed ops (the bridge could not execute them: executor died, timeout) over all ops, per bridge, and the rollout's candidate error signal (go-fuse transport failures, timeouts, or an errno bazil did not return). Red line: the 1% rollback threshold.",
		"percentunit",
		q(fmt.Sprintf(`(sum by (backend) (rate(lighthouse_fuse_operations_total{result="failed"}[%[1]s])) or 0 * sum by (backend) (rate(lighthouse_fuse_operations_total[%[1]s]))) / sum by (backend) (rate(lighthouse_fuse_operations_total[%[1]s]))`, ri), "{{backend}} failed"),
		q(fmt.Sprintf(`sum(rate(lighthouse_rollout_observations_total{signal="error",outcome="bad"}[%[1]s])) / sum(rate(lighthouse_rollout_observations_total{signal="error"}[%[1]s]))`, ri), "candidate error signal"),
		q(constant(ErrorRateThreshold), "threshold 1%"))
	withThreshold(errs, ErrorRateThreshold, "threshold 1%")
	l.add(12, 8, errs)
	p99 := timeseries("P99 per backend",
		"P99 op latency of each bridge; the candidate's above 1 s (red line) is the latency rollback trigger.",
		"s", q(LatencyQuantile(0.99, "", ri), "p99 {{backend}}"), q(constant(P99Threshold), "threshold 1s"))
	withThreshold(p99, P99Threshold, "threshold 1s")
	l.add(12, 8, p99)
	l.add(12, 7, timeseries("Bridge results by backend",
		"Ops per second by result: ok, errno (the filesystem answered an error: normal for ENOENT and the like), refused (bad request), failed (could not execute).",
		"ops", q(fmt.Sprintf("sum by (backend, result) (rate(lighthouse_fuse_operations_total[%s]))", ri), "{{backend}} {{result}}")))
	l.add(12, 7, timeseries("Trigger window rates",
		"The rollout's bad fraction per signal over its last 5000 observations (divergence, error, slow = slower than 1 s): the numbers `lighthouse status` prints.",
		"percentunit", q("max by (signal) (lighthouse_rollout_window_rate)", "{{signal}}")))
	latRatio := timeseries("Latency vs primary: go-fuse / bazil median by op",
		"Per op kind, the candidate's median serving latency over the primary's, over the same recent ops of that kind, served ops only (a bridge that only mirrors runs at nice 19). Empty in the shadow and full phases, where one side serves nothing. The latency_ratio trigger fires at 2x (red line) when the rank test agrees (next panel).",
		"suffix:x", q("max by (op) (lighthouse_rollout_latency_ratio)", "{{op}}"), q(constant(LatencyRatio), "threshold 2x"))
	withThreshold(latRatio, LatencyRatio, "threshold 2x")
	l.add(12, 7, latRatio)
	latZ := timeseries("Latency vs primary: rank test z by op",
		"Per op kind, the Mann-Whitney rank test of the candidate's serving latencies against the primary's: about 0 when they are alike, positive when go-fuse is slower. The latency_ratio trigger needs z of 5 or more (dashed) and the 2x median ratio.",
		"none", q("max by (op) (lighthouse_rollout_latency_rank_z)", "{{op}}"), q(constant(LatencyZ), "z 5"))
	dashed(latZ, "z 5", "red")
	latZ.FieldConfig.Defaults.Min = nil // negative: the candidate is faster
	l.add(12, 7, latZ)

	l.row("Mirror health")
	l.add(6, 7, timeseries("Mirror queue depth",
		"Mirrored ops admitted but not yet finished on the mirror bridge; past 10,000 (--mirror-max-ops) the bridge is marked stale.",
		"short", q("max by (bridge) (lighthouse_proxy_mirror_queue_depth)", "{{bridge}}")))
	lag := timeseries("Mirror lag",
		"Age of the oldest mirrored op not yet finished; past 10 s (--mirror-max-lag, red line) the bridge is marked stale.",
		"s", q("max by (bridge) (lighthouse_proxy_mirror_lag_seconds)", "{{bridge}}"))
	withThreshold(lag, MirrorMaxLag, "")
	l.add(6, 7, lag)
	stale := stat("Subtrees out of step",
		"Subtrees of each bridge out of step with the store of record (lagging, dead, diverged, or a failed op) and waiting for their resync: ops there are not compared; the rest of the tree is.",
		"", instant("max by (bridge) (lighthouse_proxy_mirror_stale)", "{{bridge}}"))
	stale.FieldConfig.Defaults.Thresholds = steps("green", 1, "orange")
	stale.FieldConfig.Defaults.Color = &FieldColor{Mode: "thresholds"}
	stale.FieldConfig.Defaults.Mappings = []any{map[string]any{"type": "value", "options": map[string]any{
		"0": map[string]any{"index": 0, "text": "in step"},
	}}}
	l.add(3, 7, stale)
	held := stat("Resyncs held",
		"Subtrees whose resync was refused because the store of record may lack acknowledged data the other bridge has (its audit blamed the record, or its store reports a data loss). Nothing is copied until an operator resolves it: `lighthouse status`, then POST /admin/resync with force.",
		"", instant("max by (bridge) (lighthouse_proxy_resync_held)", "{{bridge}}"))
	held.FieldConfig.Defaults.Thresholds = steps("green", 1, "red")
	held.FieldConfig.Defaults.Color = &FieldColor{Mode: "thresholds"}
	held.FieldConfig.Defaults.NoValue = "none"
	l.add(3, 7, held)
	l.add(6, 7, timeseries("Mirror queue bytes", "Payload bytes held for mirrored ops not yet finished (bounded at 256 MiB).",
		"bytes", q("max by (bridge) (lighthouse_proxy_mirror_queue_bytes)", "{{bridge}}")))
	skipped := bars(timeseries("Skipped ops by reason",
		"Ops not compared, per second, by bridge and reason: stale (the bridge's subtree is out of step), quarantined (out of step after a divergence), resync (admitted across a resync), handle (a handle the bridge no longer has), shadow_error and serving_error (an op failed on one side), shutdown, sampled_out (outside the mirror share: by design, not part of coverage).",
		"ops", q(fmt.Sprintf("sum by (bridge, reason) (rate(lighthouse_proxy_mirror_skipped_total[%s]))", ri), "{{bridge}} {{reason}}")))
	skipped.FieldConfig.Defaults.NoValue = "none skipped"
	l.add(9, 7, skipped)
	resyncs := timeseries("Resyncs (cumulative)",
		"Subtree resyncs of a bridge from the store of record since the proxy started, by result, and the snapshots each bridge installed: each step is one resync.",
		"short", q("sum by (bridge, result) (lighthouse_proxy_resyncs_total)", "resync {{bridge}} {{result}}"),
		q("max by (instance) (lighthouse_bridge_snapshot_restores_total)", "restores on {{instance}}"),
		q("max by (instance) (lighthouse_bridge_subtree_restores_total)", "subtree restores on {{instance}}"))
	resyncs.FieldConfig.Defaults.Custom.LineInterpolation = "stepAfter"
	l.add(9, 7, resyncs)
	l.add(12, 7, timeseries("Resync bytes copied",
		"Snapshot bytes copied from the store of record per second: a resync copies one subtree, not the store.",
		"Bps", q(fmt.Sprintf("sum by (bridge) (rate(lighthouse_proxy_resync_bytes_total[%s]))", ri), "{{bridge}}")))
	audit := timeseries("Resync audit differences (cumulative)",
		"Paths each resync's audit found different before copying, by result: counted (no op explains it, e.g. a lost write: a divergence of class audit), expected (ops there did not run on that bridge), uncounted (ops ran there that the audit cannot account for).",
		"short", q("sum by (bridge, result) (lighthouse_proxy_resync_audit_differences_total)", "{{bridge}} {{result}}"))
	audit.FieldConfig.Defaults.Custom.LineInterpolation = "stepAfter"
	l.add(12, 7, audit)

	l.row("Resources")
	l.add(6, 7, timeseries("CPU", "CPU seconds per second of each Lighthouse process (the bridges' executors run in child processes, not counted here).",
		"percentunit", q(fmt.Sprintf("sum by (job, instance) (rate(process_cpu_seconds_total[%s])%s)", ri, lighthouseProcs), "{{job}} {{instance}}")))
	l.add(6, 7, timeseries("Resident memory", "", "bytes",
		q("max by (job, instance) (process_resident_memory_bytes"+lighthouseProcs+")", "{{job}} {{instance}}")))
	l.add(6, 7, timeseries("Goroutines", "", "short",
		q("max by (job, instance) (go_goroutines"+lighthouseProcs+")", "{{job}} {{instance}}")))
	l.add(6, 7, timeseries("Open file descriptors", "", "short",
		q("max by (job, instance) (process_open_fds"+lighthouseProcs+")", "{{job}} {{instance}}")))
	l.add(8, 7, timeseries("Bridge open handles", "Handles (open, pread, pwrite, close) a bridge holds open for its clients.",
		"short", q("max by (instance) (lighthouse_bridge_open_handles)", "{{instance}}")))
	l.add(8, 7, timeseries("Bridge CPU priority (nice)",
		"0 while a bridge serves clients; 19 while the proxy has it only mirror, so the serving bridge gets the CPU first (its latency then includes waiting for the CPU). It goes back to 0 when its mirror queue nears a bound.",
		"short", q("max by (instance) (lighthouse_bridge_nice)", "{{instance}}")))
	l.add(8, 7, timeseries("Bridge executor starts",
		"Executor processes a bridge started, the first included: a step up means a hung executor was replaced (its ops failed).",
		"short", q("max by (instance) (lighthouse_bridge_executor_starts_total)", "{{instance}}")))
	loss := stat("Store data loss",
		"1 while a bridge's store repaired damage before the end of its log at start (acknowledged records moved aside): its /readyz fails and it is never a resync's source. `lighthouse store repair` tells what was lost.",
		"", instant("max by (instance) (lighthouse_store_data_loss)", "{{instance}}"))
	loss.FieldConfig.Defaults.Thresholds = steps("green", 1, "red")
	loss.FieldConfig.Defaults.Color = &FieldColor{Mode: "thresholds"}
	loss.FieldConfig.Defaults.Mappings = []any{map[string]any{"type": "value", "options": map[string]any{
		"0": map[string]any{"index": 0, "text": "none"},
		"1": map[string]any{"index": 1, "text": "DATA LOSS"},
	}}}
	l.add(8, 7, loss)
	dropped := timeseries("Log bytes dropped at recovery",
		"Bytes a store's recovery removed from its log at start, by kind: torn_tail (a bad last record from a crash, nothing acknowledged lost) or repaired (damage before the end, acknowledged records moved to the quarantine).",
		"bytes", q("max by (instance, kind) (lighthouse_store_recovery_dropped_bytes_total)", "{{instance}} {{kind}}"))
	dropped.FieldConfig.Defaults.NoValue = "none dropped"
	l.add(16, 7, dropped)
	return d
}

// layout places panels left to right on Grafana's 24-column grid, a new
// line when a panel does not fit, and numbers them.
type layout struct {
	d          *Dashboard
	id         int
	x, y, rowH int
}

func (l *layout) next() int { l.id++; return l.id }

func (l *layout) row(title string) {
	l.newline()
	l.d.Panels = append(l.d.Panels, &Panel{Collapsed: new(bool), GridPos: GridPos{H: 1, W: 24, X: 0, Y: l.y}, ID: l.next(), Title: title, Type: "row"})
	l.y++
}

func (l *layout) newline() {
	if l.x > 0 {
		l.x, l.y, l.rowH = 0, l.y+l.rowH, 0
	}
}

func (l *layout) add(w, h int, p *Panel) {
	if l.x+w > 24 {
		l.newline()
	}
	p.GridPos, p.ID = GridPos{H: h, W: w, X: l.x, Y: l.y}, l.next()
	l.x += w
	l.rowH = max(l.rowH, h)
	l.d.Panels = append(l.d.Panels, p)
}

// q is a range query (a time series).
func q(expr, legend string) *Target {
	return &Target{Datasource: PromDatasource, EditorMode: "code", Expr: expr, LegendFormat: legend, Range: true}
}

// instant is an instant query (stat and table panels).
func instant(expr, legend string) *Target {
	t := q(expr, legend)
	t.Range, t.Instant = false, true
	return t
}

// constant is a flat series at v: a threshold drawn as a line of its own,
// so it shows in the legend and the tooltip.
func constant(v float64) string {
	return "vector(" + strconv.FormatFloat(v, 'g', -1, 64) + ")"
}

func newPanel(typ, title, desc, unit string, targets []*Target) *Panel {
	for i, t := range targets {
		t.RefID = string(rune('A' + i))
	}
	return &Panel{Datasource: PromDatasource, Description: desc, Title: title, Type: typ, Targets: targets,
		FieldConfig: &FieldConfig{Defaults: FieldDefaults{Mappings: []any{}, Thresholds: steps("green"), Unit: unit}, Overrides: []Override{}}}
}

func timeseries(title, desc, unit string, targets ...*Target) *Panel {
	p := newPanel("timeseries", title, desc, unit, targets)
	p.FieldConfig.Defaults.Color = &FieldColor{Mode: "palette-classic"}
	p.FieldConfig.Defaults.Custom = &FieldCustom{DrawStyle: "line", FillOpacity: 10, LineInterpolation: "linear", LineWidth: 1,
		ShowPoints: "never", ThresholdsStyle: &ThresholdsStyle{Mode: "off"}}
	if unit != "s" { // latency panels are log scale: no 0
		p.FieldConfig.Defaults.Min = f64p(0)
	}
	p.Options = map[string]any{
		"legend":  map[string]any{"calcs": []string{"mean", "max", "lastNotNull"}, "displayMode": "table", "placement": "bottom", "showLegend": true},
		"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
	}
	return p
}

func stacked(p *Panel) *Panel {
	p.FieldConfig.Defaults.Custom.Stacking = &Stacking{Group: "A", Mode: "normal"}
	p.FieldConfig.Defaults.Custom.FillOpacity = 40
	return p
}

func bars(p *Panel) *Panel {
	stacked(p)
	p.FieldConfig.Defaults.Custom.DrawStyle = "bars"
	p.FieldConfig.Defaults.Custom.FillOpacity = 80
	return p
}

type statOptions map[string]any

func stat(title, desc, unit string, targets ...*Target) *Panel {
	p := newPanel("stat", title, desc, unit, targets)
	p.Options = statOptions{
		"colorMode": "value", "graphMode": "none", "justifyMode": "auto", "orientation": "auto", "textMode": "value_and_name",
		"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
	}
	return p
}

func table(title, desc string, targets ...*Target) *Panel {
	for _, t := range targets {
		t.Format = "table"
	}
	p := newPanel("table", title, desc, "", targets)
	p.Options = map[string]any{"showHeader": true, "cellHeight": "sm", "footer": map[string]any{"show": false}}
	return p
}

// withThreshold draws a red threshold at v on the panel (Grafana's
// thresholds, dashed) and styles the constant series named series (if
// any) as a dashed red line.
func withThreshold(p *Panel, v float64, series string) {
	p.FieldConfig.Defaults.Thresholds = steps("green", v, "red")
	p.FieldConfig.Defaults.Custom.ThresholdsStyle = &ThresholdsStyle{Mode: "dashed"}
	if series != "" {
		dashed(p, series, "red")
	}
}

// dashed styles the series named series as a dashed line of color.
func dashed(p *Panel, series, color string) {
	p.FieldConfig.Overrides = append(p.FieldConfig.Overrides, Override{
		Matcher: Matcher{ID: "byName", Options: series},
		Properties: []Property{
			{ID: "color", Value: FieldColor{Mode: "fixed", FixedColor: color}},
			{ID: "custom.lineStyle", Value: map[string]any{"dash": []int{10, 10}, "fill": "dash"}},
			{ID: "custom.fillOpacity", Value: 0},
		},
	})
}

// steps builds thresholds: a base colour, then (value, colour) pairs.
func steps(base string, more ...any) Thresholds {
	th := Thresholds{Mode: "absolute", Steps: []Step{{Color: base}}}
	for i := 0; i+1 < len(more); i += 2 {
		var v float64
		switch x := more[i].(type) {
		case float64:
			v = x
		case int:
			v = float64(x)
		}
		th.Steps = append(th.Steps, Step{Color: more[i+1].(string), Value: f64p(v)})
	}
	return th
}

func f64p(v float64) *float64 { return &v }
func intp(v int) *int         { return &v }

// Legend names the series of a target as Grafana would for a label set
// ({{label}} replaced by its value), for tools that plot the queries.
func Legend(format string, labels map[string]string) string {
	if format == "" {
		return ""
	}
	out := format
	for k, v := range labels {
		out = strings.ReplaceAll(out, "{{"+k+"}}", v)
		out = strings.ReplaceAll(out, "{{ "+k+" }}", v)
	}
	return out
}
