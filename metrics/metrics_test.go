package metrics

import (
	"reflect"
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

// TestLint lints every metric struct on the registry of the process that
// exports it (a bridge; the proxy with its rollout controller), each
// vector with one child, and checks every field reached the registry.
func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build []func(prometheus.Registerer) any
	}{
		{"bridge", []func(prometheus.Registerer) any{
			func(r prometheus.Registerer) any { return NewBridge(r) }}},
		{"proxy", []func(prometheus.Registerer) any{
			func(r prometheus.Registerer) any { return NewProxy(r) },
			func(r prometheus.Registerer) any { return NewRollout(r) }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			fields := 0
			for _, build := range tc.build {
				fields += touchAll(t, build(reg))
			}
			problems, err := testutil.GatherAndLint(reg)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("lint %s: %s", p.Metric, p.Text)
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "proxy" {
				fields++ // the rollback counter's deprecated name (alias.go) has no field of its own
			}
			if len(mfs) != fields {
				t.Errorf("%d metric families gathered, %d fields declared", len(mfs), fields)
			}
		})
	}
}

// touchAll creates one child of every vector field of the metric struct
// *s (a vector without children is not gathered, so not linted) and
// returns the number of fields.
func touchAll(t *testing.T, s any) int {
	t.Helper()
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		f := v.Field(i).Interface()
		var get func(...string) (any, error)
		switch m := f.(type) {
		case *prometheus.CounterVec:
			get = func(l ...string) (any, error) { return m.GetMetricWithLabelValues(l...) }
		case *prometheus.GaugeVec:
			get = func(l ...string) (any, error) { return m.GetMetricWithLabelValues(l...) }
		case *prometheus.HistogramVec:
			get = func(l ...string) (any, error) { return m.GetMetricWithLabelValues(l...) }
		case prometheus.Collector:
			continue
		default:
			t.Fatalf("%s.%s: %T is not a metric", v.Type(), v.Type().Field(i).Name, f)
		}
		// The label count is not exported: try arities until one fits.
		var labels []string
		for ; len(labels) <= 8; labels = append(labels, "x") {
			if _, err := get(labels...); err == nil {
				break
			}
		}
		if len(labels) > 8 {
			t.Fatalf("%s.%s: no label arity up to 8 fits", v.Type(), v.Type().Field(i).Name)
		}
	}
	return v.NumField()
}
