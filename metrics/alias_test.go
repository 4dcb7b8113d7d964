package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRollbacksDeprecatedName: the old name of the rollback counter
// exports the same series and values as the new one, and is marked
// deprecated.
func TestRollbacksDeprecatedName(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := NewRollout(reg)
	r.Rollbacks.WithLabelValues("manual").Add(2)
	r.Rollbacks.WithLabelValues("divergence").Inc()
	want := `
# HELP %s %s
# TYPE %s counter
%s{trigger="divergence"} 1
%s{trigger="manual"} 2
`
	for _, name := range []string{RollbacksTotal, RollbacksTotalDeprecated} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		help := ""
		for _, mf := range mfs {
			if mf.GetName() == name {
				help = mf.GetHelp()
			}
		}
		if (name == RollbacksTotalDeprecated) != strings.HasPrefix(help, "DEPRECATED") {
			t.Errorf("%s help %q", name, help)
		}
		exp := strings.ReplaceAll(want, "%s", name)
		exp = strings.Replace(exp, "# HELP "+name+" "+name, "# HELP "+name+" "+help, 1)
		if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), name); err != nil {
			t.Error(err)
		}
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", err, probs)
	}
}
