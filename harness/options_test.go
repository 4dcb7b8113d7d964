package harness_test

import (
	"testing"

	"github.com/lighthouse-fs/lighthouse/harness"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// TestOptionsCheck: the flag combinations `up` does not run are usage
// errors (exit 2), found before anything starts.
func TestOptionsCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    harness.Options
		ok   bool
	}{
		{"interactive", harness.Options{}, true},
		{"workload json", harness.Options{Workload: true, JSON: true}, true},
		{"aa gofuse", harness.Options{Workload: true, AA: "gofuse"}, true},
		{"aa bazil", harness.Options{AA: "bazil"}, true},
		{"json without workload", harness.Options{JSON: true}, false},
		{"json with aa", harness.Options{Workload: true, JSON: true, AA: "bazil"}, false},
		{"aa unknown library", harness.Options{AA: "ext4"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Check()
			if tc.ok {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if verdict.Status(err) != verdict.ExitUsage {
				t.Fatalf("Check: %v (status %d), want a usage error", err, verdict.Status(err))
			}
		})
	}
}
