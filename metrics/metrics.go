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
	Handles    prometheus.Gauge         // open handles
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
		Handles: f.NewGauge(prometheus.GaugeOpts{
			Name: "lighthouse_bridge_open_handles",
			Help: "Open handles (handle-based ops) held by the bridge.",
		}),
	}
}
