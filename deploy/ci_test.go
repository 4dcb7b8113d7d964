package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// workflow is the part of a GitHub Actions workflow this check reads.
type workflow struct {
	Jobs map[string]struct {
		Strategy struct {
			Matrix struct {
				Group []string `yaml:"group"`
			} `yaml:"matrix"`
		} `yaml:"strategy"`
		Steps []struct {
			Run string `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

var makeTarget = regexp.MustCompile(`\bmake ([a-z][a-z0-9-]*)`)

// TestWorkflowCallsWhatCIRuns keeps .github/workflows/compat.yml and
// .ci/run from drifting: the workflow's test jobs are exactly the groups
// `make test` runs, and every make target .ci/run calls is called by a job.
func TestWorkflowCallsWhatCIRuns(t *testing.T) {
	raw, err := os.ReadFile("../.github/workflows/compat.yml")
	if err != nil {
		t.Fatal(err)
	}
	var wf workflow
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("./test-group.sh", "--list").Output()
	if err != nil {
		t.Fatalf("test-group.sh --list: %v", err)
	}
	groups := strings.Fields(string(out))

	called := map[string]bool{}
	var jobGroups []string
	for _, job := range wf.Jobs {
		jobGroups = append(jobGroups, job.Strategy.Matrix.Group...)
		for _, s := range job.Steps {
			for _, m := range makeTarget.FindAllStringSubmatch(s.Run, -1) {
				called[m[1]] = true
			}
			if strings.Contains(s.Run, "make test-${{ matrix.group }}") {
				for _, g := range job.Strategy.Matrix.Group {
					called["test-"+g] = true
				}
			}
		}
	}
	for _, g := range groups {
		if !called["test-"+g] {
			t.Errorf("make test-%s (a group of `make test`) is called by no workflow job", g)
		}
	}
	for _, g := range jobGroups {
		if !slices.Contains(groups, g) {
			t.Errorf("the workflow tests group %q, which deploy/test-group.sh does not have", g)
		}
	}

	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range makeTarget.FindAllStringSubmatch(string(ci), -1) {
		want = append(want, m[1])
	}
	sort.Strings(want)
	if len(want) < 4 {
		t.Fatalf(".ci/run calls only %v", want)
	}
	for _, target := range slices.Compact(want) {
		if target == "test" {
			continue // its groups are checked above
		}
		if !called[target] {
			t.Errorf(".ci/run calls `make %s`, no workflow job does", target)
		}
	}
}
