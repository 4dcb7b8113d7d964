// Package deploy holds the deployment files (start scripts, seccomp
// profile, Prometheus rules, the CI workflow's test groups). Its only Go is
// tests: Prometheus's own rule checker and rule unit tests on the rules,
// and the check that the CI workflow calls what .ci/run calls.
package deploy

import (
	"os/exec"
	"testing"
)

// TestPrometheusRules checks deploy/prometheus/rules.yml and fleet.yml and
// runs their unit tests (rules_test.yml, fleet_test.yml: series that must
// and must not fire each alert).
func TestPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; deploy/install-deps.sh installs it)")
	}
	for _, args := range [][]string{{"check", "rules", "rules.yml", "fleet.yml"}, {"test", "rules", "rules_test.yml", "fleet_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
