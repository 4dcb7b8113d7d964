package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/conformance"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

var minimizedRe = regexp.MustCompile(`minimized (\d+) ops to (\d+) in (\d+) replays`)

// TestReplayMinimize buries a real divergence (bazil drops the sticky bit:
// write s, chmod s 01644, stat s) in a 5,000-op history of unrelated ops
// and of ops on s that do not matter, and has `lighthouse replay
// --minimize` shrink it on fresh bridges: at most 5 ops must remain, the
// stat last, and the printed case must be one traffic-cases.jsonl takes.
func TestReplayMinimize(t *testing.T) {
	requireE2E(t)
	timed(t)
	rng := rand.New(rand.NewPCG(14, 5000))
	var recent []fsop.Op
	for i := 0; i < 50; i++ {
		recent = append(recent, fsop.Op{Kind: fsop.Mkdir, Path: fmt.Sprintf("u%d", i), Mode: 0o755})
	}
	for len(recent) < 4999 {
		f := fmt.Sprintf("u%d/f%d", rng.IntN(50), rng.IntN(40))
		switch n := len(recent); {
		case n == 1200:
			recent = append(recent, fsop.Op{Kind: fsop.WriteFile, Path: "s", Data: []byte("sticky")})
		case n == 3700:
			recent = append(recent, fsop.Op{Kind: fsop.Chmod, Path: "s", Mode: 0o1644})
		case n > 1200 && n%97 == 0: // ops on s that leave its mode alone, or are undone
			recent = append(recent, []fsop.Op{{Kind: fsop.ReadFile, Path: "s"}, {Kind: fsop.Stat, Path: "s"},
				{Kind: fsop.Chmod, Path: "s", Mode: 0o600}, {Kind: fsop.Append, Path: "s", Data: []byte("+")}}[rng.IntN(4)])
		case rng.IntN(3) == 0:
			recent = append(recent, fsop.Op{Kind: fsop.Stat, Path: f})
		default:
			recent = append(recent, fsop.Op{Kind: fsop.WriteFile, Path: f, Data: []byte(strconv.Itoa(len(recent)))})
		}
	}
	div := proxy.Divergence{Seq: 5000, Class: compare.ClassAttr, Op: fsop.Op{Kind: fsop.Stat, Path: "s"}, Recent: recent}
	line, err := json.Marshal(div)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log, allow := filepath.Join(dir, "divergences.jsonl"), filepath.Join(dir, "allow.yaml")
	if err := os.WriteFile(log, append(line, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(allow, []byte("[]\n"), 0o644); err != nil { // no known differences: the class stays attr
		t.Fatal(err)
	}
	out, _, code := runReplay(t, log, "--minimize", "--allowlist", allow, "--dir", filepath.Join(dir, "bridges"))
	if code != 0 {
		t.Fatalf("replay --minimize exit %d", code)
	}
	m := minimizedRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no result line in:\n%s", out)
	}
	before, _ := strconv.Atoi(m[1])
	after, _ := strconv.Atoi(m[2])
	t.Logf("minimized %d ops to %d in %s replays", before, after, m[3])
	if before != 5000 || after > 5 {
		t.Errorf("minimized %d ops to %d, want 5000 to at most 5", before, after)
	}
	caseLine := out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]
	tcs, err := conformance.ParseTrafficCases([]byte(caseLine))
	if err != nil || len(tcs) != 1 {
		t.Fatalf("the printed case does not parse (%v): %s", err, caseLine)
	}
	ops := tcs[0].Ops
	last := ops[len(ops)-1]
	hasChmod := false
	for _, op := range ops {
		hasChmod = hasChmod || (op.Kind == fsop.Chmod && op.Mode == 0o1644)
	}
	if last.Kind != fsop.Stat || last.Path != "s" || !hasChmod {
		t.Errorf("the case lost the divergence: %+v", ops)
	}
}
