package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// RollbacksTotalDeprecated is the rollback counter's name before it
// joined the other lighthouse_rollout_* metrics: still exported, with the
// same series and values, for one release (docs/rollout.md, "Metrics"),
// so alert rules and dashboards that use it keep working while they move.
const RollbacksTotalDeprecated = "lighthouse_fuse_rollbacks_total"

// alias exports the series of a counter vector under another name.
type alias struct {
	of   *prometheus.CounterVec
	desc *prometheus.Desc
}

func newAlias(of *prometheus.CounterVec, name, help string, labels []string) *alias {
	return &alias{of: of, desc: prometheus.NewDesc(name, help, labels, nil)}
}

func (a *alias) Describe(ch chan<- *prometheus.Desc) { ch <- a.desc }

func (a *alias) Collect(ch chan<- prometheus.Metric) {
	src := make(chan prometheus.Metric)
	go func() { a.of.Collect(src); close(src) }()
	for m := range src {
		var pb dto.Metric
		if m.Write(&pb) != nil {
			continue
		}
		values := make([]string, 0, len(pb.GetLabel()))
		for _, l := range pb.GetLabel() {
			values = append(values, l.GetValue())
		}
		ch <- prometheus.MustNewConstMetric(a.desc, prometheus.CounterValue, pb.GetCounter().GetValue(), values...)
	}
}
