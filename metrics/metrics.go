// Package metrics declares every Prometheus metric Lighthouse exports, in
// one place, so names and labels cannot drift between the bridge, the
// proxy, the dashboards and the alert rules.
//
// # Construction
//
// Metrics are built from an injected prometheus.Registerer (never package
// globals): a test uses a fresh prometheus.NewRegistry, a process its own.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Names of the contract metrics (../shared/design/ARCHITECTURE.md).
const (
	OperationsTotal   = "lighthouse_fuse_operations_total"
	OperationDuration = "lighthouse_fuse_operation_duration_seconds"
	BackendActive     = "lighthouse_fuse_backend_active"
	DivergenceTotal   = "lighthouse_fuse_backend_divergence_total"
	RollbacksTotal    = "lighthouse_rollout_rollbacks_total"
)

// Result label values of OperationsTotal.
const (
	ResultOK      = "ok"      // the filesystem answered success
	ResultErrno   = "errno"   // the filesystem answered an errno
	ResultRefused = "refused" // a bad request: escapes, bounds
	ResultFailed  = "failed"  // the bridge could not execute it (executor died, timeout)
)

// LatencyBuckets span a cached stat (~2 us) to the 1 s rollback threshold
// and beyond, roughly x2.5 per bucket.
var LatencyBuckets = []float64{
	5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Bridge is what one bridge exports.
type Bridge struct {
	Operations *prometheus.CounterVec   // {backend, op, result}
	Duration   *prometheus.HistogramVec // {backend, op}
	Active     *prometheus.GaugeVec     // {backend, role}: 1 for the backend in use
	Executors  prometheus.Counter       // executor processes started (restarts included)
	Restores   prometheus.Counter       // snapshots installed through PUT /v1/snapshot
	// SubtreeRestores: subtree snapshots installed through PUT /v1/snapshot?path=P
	SubtreeRestores prometheus.Counter
	// RecoveryDropped {kind}: log bytes the store's recovery removed when
	// the bridge started: torn_tail (no acknowledged record in it) or
	// repaired (acknowledged records moved to the quarantine).
	RecoveryDropped *prometheus.CounterVec
	// DataLoss is 1 while the store reports a repaired data loss.
	DataLoss prometheus.Gauge
	Handles  prometheus.Gauge // open handles
	Nice     prometheus.Gauge // nice value: 0 serving, higher while only mirroring
}

// NewBridge registers the bridge metrics on reg.
func NewBridge(reg prometheus.Registerer) *Bridge {
	f := promauto.With(reg)
	return &Bridge{
		Operations: f.NewCounterVec(prometheus.CounterOpts{
			Name: OperationsTotal,
			Help: "Filesystem operations executed, by FUSE backend, op and result (ok, errno, refused, failed).",
		}, []string{"backend", "op", "result"}),
		Duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    OperationDuration,
			Help:    "Time to execute one operation through the backend's mount, seconds.",
			Buckets: LatencyBuckets,
		}, []string{"backend", "op"}),
		Active: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: BackendActive,
			Help: "1 for the FUSE backend a bridge runs (bazil, gofuse or degraded), by role (primary, shadow).",
		}, []string{"backend", "role"}),
		Executors: f.NewCounter(prometheus.CounterOpts{
			Name: "lighthouse_bridge_executor_starts_total",
			Help: "Executor processes started, the first one included; more than one means a hung executor was replaced.",
		}),
		Restores: f.NewCounter(prometheus.CounterOpts{
			Name: "lighthouse_bridge_snapshot_restores_total",
			Help: "Snapshots installed through PUT /v1/snapshot (resyncs).",
		}),
		SubtreeRestores: f.NewCounter(prometheus.CounterOpts{
			Name: "lighthouse_bridge_subtree_restores_total",
			Help: "Subtree snapshots installed through PUT /v1/snapshot?path=P (resyncs of one directory).",
		}),
		RecoveryDropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lighthouse_store_recovery_dropped_bytes_total",
			Help: "Log bytes the store's recovery removed at start, by kind: torn_tail (a bad last record, no acknowledged record lost) or repaired (damage before the end: acknowledged records moved to the quarantine).",
		}, []string{"kind"}),
		DataLoss: f.NewGauge(prometheus.GaugeOpts{
			Name: "lighthouse_store_data_loss",
			Help: "1 while the bridge's store reports a repaired data loss (acknowledged records moved aside): /readyz fails and the bridge must not be a resync's source.",
		}),
		Handles: f.NewGauge(prometheus.GaugeOpts{
			Name: "lighthouse_bridge_open_handles",
			Help: "Open handles (handle-based ops) held by the bridge.",
		}),
		Nice: f.NewGauge(prometheus.GaugeOpts{
			Name: "lighthouse_bridge_nice",
			Help: "The bridge's nice value: 0 while it serves clients, higher while a proxy has it only mirror (it yields the CPU).",
		}),
	}
}

// Proxy is what the front proxy exports.
type Proxy struct {
	Divergence  *prometheus.CounterVec   // {op, class}
	Compared    *prometheus.CounterVec   // {op}
	Ops         *prometheus.CounterVec   // {op, served_by, result}
	Duration    *prometheus.HistogramVec // {op, served_by}: serving-path latency seen by clients
	Fallbacks   *prometheus.CounterVec   // {bridge}: served ops the store of record answered in the bridge's place
	Order       *prometheus.CounterVec   // {op}: readdir order differences (not divergences)
	QueueDepth  *prometheus.GaugeVec     // {bridge}: mirrored ops not yet finished on bridge
	QueueBytes  *prometheus.GaugeVec     // {bridge}
	Lag         *prometheus.GaugeVec     // {bridge}: age of the oldest unfinished mirrored op, seconds
	Stale       *prometheus.GaugeVec     // {bridge}: 1 while the bridge is out of step and not mirrored
	Skipped     *prometheus.CounterVec   // {bridge, reason}: ops not compared
	MirrorShare *prometheus.GaugeVec     // {bridge}: share of the tree mirrored to the bridge
	Resyncs     *prometheus.CounterVec   // {bridge, result}
	ResyncPause prometheus.Histogram     // serving pause while the source snapshot is taken
	ResyncBytes *prometheus.CounterVec   // {bridge}: snapshot bytes copied by resyncs
	ResyncHeld  *prometheus.GaugeVec     // {bridge}: subtrees not copied because the store of record lost data
	// AuditDifferences {bridge, result}: paths a resync's audit found
	// different: counted (divergences), expected (ops did not run there),
	// uncounted (the audit could not account for ops that ran there).
	AuditDifferences *prometheus.CounterVec
	Dropped          *prometheus.CounterVec // {log}: records dropped because a log writer fell behind
	Active           *prometheus.GaugeVec   // {backend, role}: the bridges behind the proxy
}

// NewProxy registers the proxy metrics on reg.
func NewProxy(reg prometheus.Registerer) *Proxy {
	f := promauto.With(reg)
	return &Proxy{
		Divergence: f.NewCounterVec(prometheus.CounterOpts{
			Name: DivergenceTotal,
			Help: "Compared ops whose results differ between the two FUSE backends, by op and class (errno, data, attr, entries, state, shadow_error, allowed).",
		}, []string{"op", "class"}),
		Compared: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lighthouse_proxy_compared_total",
			Help: "Ops whose results were compared between the two backends.",
		}, []string{"op"}),
		Ops: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lighthouse_proxy_operations_total",
			Help: "Ops received by the proxy, by op, the backend that served them and result (ok, errno, refused, failed).",
		}, []string{"op", "served_by", "result"}),
		Duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lighthouse_proxy_request_duration_seconds",
			Help:    "Serving-path latency of one op through the proxy, seconds, by the backend that served it.",
			Buckets: LatencyBuckets,
		}, []string{"op", "served_by"}),
		Fallbacks: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lighthouse_proxy_serve_fallbacks_total",
			Help: "Ops the bridge was to serve but did not answer in time (ServeFallback), which the store of record answered in its place; the bridge is then out of step until a resync.",
		}, []string{"bridge"}),
		Order: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lighthouse_proxy_readdir_order_differences_total",
			Help: "Directory listings with the same entries in a different order (reported, not a divergence).",
		}, []string{"op"}),
		QueueDepth: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lighthouse_proxy_mirror_queue_depth",
			Help: "Mirrored ops admitted but not yet finished on the mirror bridge.",
		}, []string{"bridge"}),
		QueueBytes: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lighthouse_proxy_mirror_queue_bytes",
			Help: "Payload bytes held for mirrored ops not yet finished.",
		}, []string{"bridge"}),
		Lag: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lighthouse_proxy_mirror_lag_seconds",
			Help: "Age of the oldest mirrored op not yet finished on the bridge.",
		}, []string{"bridge"}),
		Stale: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lighthouse_proxy_mirror_stale",
			Help: "Subtrees of a bridge out of step (lagging, dead, or diverged) waiting for a resync; 0 when it is in step.",
		}, []string{"bridge"}),
		Skipped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lighthouse_proxy_mirror_skipped_total",
			Help: "Ops not compared, by mirror bridge and reason (stale, quarantined, handle, shadow_error, serving_error, resync, shutdown, sampled_out: outside the mirror share, by design).",
		}, []string{"bridge", "reason"}),
		MirrorShare: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lighthouse_proxy_mirror_share",
			Help: "Share of the tree (by unit: the first --mirror-share-depth path components) mirrored to the bridge and compared; ops in the rest are served by the store of record alone (skipped, sampled_out). 1: everything.",
		}, []string{"bridge"}),
		Resyncs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lighthouse_proxy_resyncs_total",
			Help: "Resyncs of a bridge from a snapshot of the other, by result (ok, failed).",
		}, []string{"bridge", "result"}),
		ResyncBytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lighthouse_proxy_resync_bytes_total",
			Help: "Snapshot bytes a resync copied from the store of record to the other bridge.",
		}, []string{"bridge"}),
		ResyncHeld: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lighthouse_proxy_resync_held",
			Help: "Subtrees a resync refused to copy because the store of record lost what the other bridge has: an operator must resolve them.",
		}, []string{"bridge"}),
		AuditDifferences: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lighthouse_proxy_resync_audit_differences_total",
			Help: "Paths a resync's audit found different, by result: counted (a divergence of class audit), expected (ops did not run there), uncounted (ops ran there that the audit cannot account for).",
		}, []string{"bridge", "result"}),
		ResyncPause: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "lighthouse_proxy_resync_pause_seconds",
			Help:    "How long the serving bridge was held at a barrier while its snapshot was taken.",
			Buckets: LatencyBuckets,
		}),
		Dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lighthouse_proxy_log_dropped_total",
			Help: "Records not written because a log writer fell behind (record, divergence).",
		}, []string{"log"}),
		Active: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: BackendActive,
			Help: "1 for each FUSE backend behind the proxy, by role (primary, shadow).",
		}, []string{"backend", "role"}),
	}
}

// Rollout is what the rollout controller exports. The alert rules
// (deploy/prometheus/rules.yml) and the dashboards read these names.
type Rollout struct {
	Rollbacks    *prometheus.CounterVec // {trigger}
	Weight       prometheus.Gauge       // fraction of ops the candidate serves
	Phase        *prometheus.GaugeVec   // {phase}: 1 for the current phase
	Observations *prometheus.CounterVec // {signal, outcome}
	CUSUM        *prometheus.GaugeVec   // {signal}
	WindowRate   *prometheus.GaugeVec   // {signal}
	LatencyRatio *prometheus.GaugeVec   // {op}: NaN without a verdict
	LatencyZ     *prometheus.GaugeVec   // {op}: NaN without a verdict
}

// NewRollout registers the rollout controller's metrics on reg.
func NewRollout(reg prometheus.Registerer) *Rollout {
	f := promauto.With(reg)
	const rollbacksHelp = "Rollbacks of the candidate's serving weight to 0, by trigger (divergence, error_rate, p99_latency, latency_ratio, manual)."
	rollbacks := f.NewCounterVec(prometheus.CounterOpts{Name: RollbacksTotal, Help: rollbacksHelp}, []string{"trigger"})
	if reg != nil {
		reg.MustRegister(newAlias(rollbacks, RollbacksTotalDeprecated,
			"DEPRECATED: use "+RollbacksTotal+" (the same series); removed in the next release. "+rollbacksHelp, []string{"trigger"}))
	}
	return &Rollout{
		Rollbacks: rollbacks,
		Weight: f.NewGauge(prometheus.GaugeOpts{
			Name: "lighthouse_rollout_candidate_weight",
			Help: "Fraction of ops served by the candidate bridge (0 shadow, 0.1 canary, 0.5-0.9 progressive, 1 full).",
		}),
		Phase: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lighthouse_rollout_phase",
			Help: "1 for the current rollout phase.",
		}, []string{"phase"}),
		Observations: f.NewCounterVec(prometheus.CounterOpts{
			Name: "lighthouse_rollout_observations_total",
			Help: "Observations of the candidate per signal (divergence, error, slow) and outcome (bad, good): the alert rules' rates.",
		}, []string{"signal", "outcome"}),
		CUSUM: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lighthouse_rollout_cusum",
			Help: "Each trigger's CUSUM statistic; the trigger fires at its threshold h.",
		}, []string{"signal"}),
		WindowRate: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lighthouse_rollout_window_rate",
			Help: "Each signal's bad fraction over the last window of observations.",
		}, []string{"signal"}),
		LatencyRatio: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lighthouse_rollout_latency_ratio",
			Help: "Per op kind, the candidate's median serving latency over the primary's, over the same recent ops (served ops only; NaN until each side served enough).",
		}, []string{"op"}),
		LatencyZ: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lighthouse_rollout_latency_rank_z",
			Help: "Per op kind, the Mann-Whitney rank test's z of the candidate's serving latencies against the primary's (positive: the candidate is slower; NaN until each side served enough).",
		}, []string{"op"}),
	}
}
