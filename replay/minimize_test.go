package replay

import (
	"slices"
	"testing"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// ddmin finds the three indices a failure needs among 1,000, without
// trying every subset, and keeps their order.
func TestDdmin(t *testing.T) {
	need := []int{3, 417, 998}
	c := make([]int, 1000)
	for i := range c {
		c[i] = i
	}
	tests := 0
	got := ddmin(c, func(keep []int) bool {
		tests++
		for _, n := range need {
			if !slices.Contains(keep, n) {
				return false
			}
		}
		return true
	})
	if !slices.Equal(got, need) {
		t.Errorf("ddmin kept %v, want %v", got, need)
	}
	if tests > 400 {
		t.Errorf("ddmin ran %d tests for 3 of 1,000", tests)
	}
	if got := ddmin(c, func([]int) bool { return true }); len(got) != 0 {
		t.Errorf("a failure needing nothing kept %v", got)
	}
}

func TestRelatedOps(t *testing.T) {
	recent := []fsop.Op{{Kind: fsop.Mkdir, Path: "d"}, {Kind: fsop.Stat, Path: "dd"}, {Kind: fsop.Create, Path: "d/f/g"},
		{Kind: fsop.Rename, Path: "x", To: "d/f"}, {Kind: fsop.Stat, Path: "e"}}
	if got := relatedOps(recent, fsop.Op{Kind: fsop.Stat, Path: "d/f"}); !slices.Equal(got, []int{0, 2, 3}) {
		t.Errorf("related ops %v, want [0 2 3]", got)
	}
}
