package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBridgeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewBridge(reg)
	m.Operations.WithLabelValues("bazil", "stat", ResultOK).Inc()
	m.Duration.WithLabelValues("bazil", "stat").Observe(0.0002)
	m.Active.WithLabelValues("bazil", "primary").Set(1)
	if got := testutil.ToFloat64(m.Operations.WithLabelValues("bazil", "stat", ResultOK)); got != 1 {
		t.Fatalf("operations = %v", got)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
	want := `
# HELP lighthouse_fuse_backend_active 1 for the FUSE backend a bridge runs (bazil, gofuse or degraded), by role (primary, shadow).
# TYPE lighthouse_fuse_backend_active gauge
lighthouse_fuse_backend_active{backend="bazil",role="primary"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), BackendActive); err != nil {
		t.Fatal(err)
	}
	// A second bridge in the same process needs its own registry.
	defer func() {
		if recover() == nil {
			t.Fatal("registering twice on one registry did not fail")
		}
	}()
	NewBridge(reg)
}
