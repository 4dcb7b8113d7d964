package replay

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

func TestParseLine(t *testing.T) {
	rec, _ := json.Marshal(proxy.Record{Seq: 4, Op: fsop.Op{Kind: fsop.Mkdir, Path: "a", Mode: 0o755}})
	div, _ := json.Marshal(proxy.Divergence{Seq: 9, Class: compare.ClassErrno, Op: fsop.Op{Kind: fsop.Stat, Path: "y"},
		Recent: []fsop.Op{{Kind: fsop.WriteFile, Path: "x", Data: []byte("hi")}}})
	for _, tc := range []struct {
		name, line string
		rec, div   bool
		err        string
	}{
		{"record", string(rec), true, false, ""},
		{"divergence", string(div), false, true, ""},
		{"not JSON", `{"op":`, false, false, "not a JSON object"},
		{"no op", `{"seq": 1}`, false, false, `no "op" field`},
		{"unknown field", `{"seq": 1, "op": {"op": "stat", "path": "a"}, "colour": 1}`, false, false, "record line"},
		{"bad op name", `{"seq": 2, "op": {"op": "mkdri", "path": "a"}}`, false, false, "mkdri"},
		{"no op name", `{"seq": 2, "op": {"path": "a"}}`, false, false, "no op name"},
		{"divergence without class", `{"seq": 2, "op": {"op": "stat", "path": "a"}, "diff": "x"}`, false, false, `no "class"`},
		{"bad recent op", `{"seq": 2, "class": "errno", "op": {"op": "stat", "path": "a"}, "recent": [{"op": "nope"}]}`, false, false, "recent op 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := parseReplayLine([]byte(tc.line))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || (l.rec != nil) != tc.rec || (l.div != nil) != tc.div {
				t.Fatalf("got rec %v div %v err %v", l.rec != nil, l.div != nil, err)
			}
		})
	}
}

func writeFile(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadInput(t *testing.T) {
	r1, _ := json.Marshal(proxy.Record{Seq: 1, Class: compare.ClassData, Op: fsop.Op{Kind: fsop.Stat, Path: "."}})
	r2, _ := json.Marshal(proxy.Record{Seq: 2, Op: fsop.Op{Kind: fsop.Stat, Path: "."}})
	d, _ := json.Marshal(proxy.Divergence{Seq: 3, Class: compare.ClassAllowed, Op: fsop.Op{Kind: fsop.Stat, Path: "d"}, Diff: "x"})
	in, err := readReplayInput(writeFile(t, string(r1), "", string(r2), string(d)))
	if err != nil {
		t.Fatal(err)
	}
	if in.records != 2 || in.recorded[compare.ClassData] != 1 || len(in.divs) != 1 || in.divs[0].line != 4 {
		t.Errorf("records %d, recorded %v, divergence lines %d", in.records, in.recorded, len(in.divs))
	}
	for name, path := range map[string]string{"empty": writeFile(t, ""), "missing": filepath.Join(t.TempDir(), "none"),
		"bad line 2": writeFile(t, string(r1), `{"seq": 2, "op": {"op": "mkdri", "path": "a"}}`)} {
		_, err := readReplayInput(path)
		if !errors.Is(err, ErrInput) {
			t.Errorf("%s: err %v, want ErrInput", name, err)
		}
		if name == "bad line 2" && !strings.Contains(err.Error(), path+":2:") {
			t.Errorf("%s: %v does not name the line", name, err)
		}
	}
}

// TestRunRefusesBadConfig: bad flags and input are usage errors, found
// before any bridge starts.
func TestRunRefusesBadConfig(t *testing.T) {
	good := writeFile(t, `{"seq": 1, "op": {"op": "stat", "path": "."}}`)
	for _, tc := range []struct {
		name string
		path string
		cfg  Config
		want string
	}{
		{"pace", good, Config{Pace: "slow"}, `--pace "slow"`},
		{"one bridge", good, Config{Pace: "fast", PrimaryURL: "http://127.0.0.1:1"}, "give both --primary and --shadow"},
		{"bad file", writeFile(t, "nonsense"), Config{Pace: "fast"}, "in.jsonl:1: not a JSON object"},
	} {
		err := Run(context.Background(), tc.path, tc.cfg)
		if verdict.Status(err) != verdict.ExitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v (status %d), want a usage error with %q", tc.name, err, verdict.Status(err), tc.want)
		}
	}
}

func TestRecordHeapOrdersBySeq(t *testing.T) {
	h := &recordHeap{}
	for _, seq := range []uint64{5, 1, 4, 2, 3} {
		heap.Push(h, &proxy.Record{Seq: seq})
	}
	for want := uint64(1); want <= 5; want++ {
		if got := heap.Pop(h).(*proxy.Record).Seq; got != want {
			t.Fatalf("popped %d, want %d", got, want)
		}
	}
}

func TestReport(t *testing.T) {
	var out bytes.Buffer
	rp := &replayer{out: &out, names: [2]string{"bazil", "gofuse"}, stats: replayStats{
		ops: 12, refused: 1, failed: 2, compared: 9, resyncs: 1, sameAsRecorded: 7, recordedCompared: 8,
		byClass: map[string]int64{compare.ClassAllowed: 1, compare.ClassErrno: 2},
		skipped: map[string]int64{"quarantined": 2, "stale": 1},
		notAllowed: []proxy.Divergence{{Class: compare.ClassErrno, Op: fsop.Op{Kind: fsop.Stat, Path: "y"},
			Serving: proxy.Outcome{Backend: "bazil"}, Mirror: proxy.Outcome{Backend: "gofuse"}, Diff: "-a\n+b\n"}},
	}}
	rp.report(&replayInput{records: 10, recorded: map[string]int64{compare.ClassErrno: 1}, divs: []replayLine{{}}}, []string{"line 1: reproduced"})
	got := out.String()
	for _, want := range []string{
		"ops replayed  12  refused 1, failed 2\n",
		"not compared   3  quarantined 2, stale 1\n",
		"divergences   3", "not allowed   1", "resyncs   1",
		"recorded: 10 ops, 1 with a different result on the shadow (errno 1); bazil results the same as recorded: 7 of 8\n",
		"line 1: reproduced\n",
		`not allowed: errno on {"op":"stat","path":"y"} (bazil serving, gofuse mirror)`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}
