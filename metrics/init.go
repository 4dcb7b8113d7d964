package metrics

// Every counter and gauge whose label values are known when its process
// starts exists at 0 from the first scrape: a dashboard panel shows 0
// instead of "no data", and rate() sees the first event as an increase.
// Histograms are not: a quantile of no observation is NaN either way.

// Results are the result label values of the operations counters.
var Results = []string{ResultOK, ResultErrno, ResultRefused, ResultFailed}

// Resync results and proxy log names, the label values of Resyncs and
// Dropped.
var (
	ResyncResults = []string{"ok", "failed"}
	LogNames      = []string{"record", "divergence"}
)

// Init creates the bridge's series for its backend and every op kind.
func (b *Bridge) Init(backend string, ops []string) {
	for _, op := range ops {
		for _, r := range Results {
			b.Operations.WithLabelValues(backend, op, r)
		}
	}
}

// Init creates the proxy's series for its two bridges and every op kind
// (the divergence and compared counters are created by the proxy, with
// the comparator's classes; the skipped counter with its reasons).
func (p *Proxy) Init(bridges []string, ops []string) {
	for _, op := range ops {
		for _, b := range bridges {
			for _, r := range Results {
				p.Ops.WithLabelValues(op, b, r)
			}
		}
	}
	p.Order.WithLabelValues("readdir")
	for _, b := range bridges {
		p.QueueDepth.WithLabelValues(b).Set(0)
		p.QueueBytes.WithLabelValues(b).Set(0)
		p.Lag.WithLabelValues(b).Set(0)
		for _, r := range ResyncResults {
			p.Resyncs.WithLabelValues(b, r)
		}
	}
	for _, l := range LogNames {
		p.Dropped.WithLabelValues(l)
	}
}
