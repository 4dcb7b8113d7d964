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
