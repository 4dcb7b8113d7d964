package proxy

import (
	"fmt"
	"testing"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/order"
)

// TestHistoryFollowsRenamesAndLinks: the ops recorded before a divergence
// on a name include what happened to the same file under its earlier
// names, through a directory rename and a hard link, and nothing else.
func TestHistoryFollowsRenamesAndLinks(t *testing.T) {
	h := newHistory()
	ops := []fsop.Op{
		{Kind: fsop.WriteFile, Path: "a/f", Data: []byte("1")}, // 1
		{Kind: fsop.WriteFile, Path: "x", Data: []byte("2")},   // 2: unrelated
		{Kind: fsop.Rename, Path: "a", To: "b"},                // 3
		{Kind: fsop.Append, Path: "b/f", Data: []byte("3")},    // 4
		{Kind: fsop.Link, Path: "b/f", To: "c"},                // 5
		{Kind: fsop.Chmod, Path: "c", Mode: 0o600},             // 6
		{Kind: fsop.WriteFile, Path: "a/f", Data: []byte("4")}, // 7: a new a/f, after the rename
		{Kind: fsop.Stat, Path: "c"},                           // 8: the divergent op
	}
	for i := range ops {
		h.add(&rec{seq: uint64(i + 1), op: ops[i], paths: order.Targets(&ops[i], "")})
	}
	got := h.before(8, []string{"c"})
	want := []fsop.Kind{fsop.WriteFile, fsop.Rename, fsop.Append, fsop.Link, fsop.Chmod}
	if fmt.Sprint(kinds(got)) != fmt.Sprint(want) || string(got[0].Data) != "1" {
		t.Errorf("history of c: %v, want %v starting with the write of a/f before the rename", describe(got), want)
	}
}

func kinds(ops []fsop.Op) []fsop.Kind {
	var k []fsop.Kind
	for _, op := range ops {
		k = append(k, op.Kind)
	}
	return k
}

func describe(ops []fsop.Op) []string {
	var d []string
	for _, op := range ops {
		d = append(d, fmt.Sprintf("%s %s %s %q", op.Kind, op.Path, op.To, op.Data))
	}
	return d
}

// TestAncestorMovedAfterABusyDirectoryForgetsItsRename: a directory
// renamed and then hammered with more ops than its history keeps (the
// end-to-end workload's t0) has forgotten the rename; the audit must
// still not take what an op on t0/l0 did before it as evidence (it held a
// resync on "bazil lost the symlink" when t0 had only moved).
func TestAncestorMovedAfterABusyDirectoryForgetsItsRename(t *testing.T) {
	h := newHistory()
	ops := []fsop.Op{
		{Kind: fsop.Symlink, Path: "t0/l0", Target: "u0"}, // 1
		{Kind: fsop.Rename, Path: "t0", To: "t3/v1"},      // 2
		{Kind: fsop.Mkdir, Path: "t0", Mode: 0o755},       // 3
	}
	for range historyPerPath {
		ops = append(ops, fsop.Op{Kind: fsop.Chmod, Path: "t0", Mode: 0o700})
	}
	for i := range ops {
		h.add(&rec{seq: uint64(i + 1), op: ops[i], paths: order.Targets(&ops[i], "")})
	}
	end := uint64(len(ops) + 1)
	if !h.ancestorMovedAfter("t0/l0", 1, end) {
		t.Errorf("t0's rename (op 2) fell out of its history, and t0/l0 is taken as not moved since op 1")
	}
	if h.ancestorMovedAfter("t0/l0", end-1, end) {
		t.Errorf("nothing moved t0 after its last op, yet t0/l0 is taken as moved")
	}
}
