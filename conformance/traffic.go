package conformance

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Cases from live traffic: a divergence the proxy recorded (a line of its
// divergences.jsonl: the op and the recent ops on its paths) becomes a
// case, usually after `lighthouse replay --minimize` has shrunk it. The
// one-step procedure: append the line that command prints to
// conformance/traffic-cases.jsonl and run `make compat`.

// TrafficCase is one line of traffic-cases.jsonl.
type TrafficCase struct {
	Name string    `json:"name"` // traffic/...
	From string    `json:"from"` // the divergence it came from, for the reader
	Ops  []fsop.Op `json:"ops"`
}

//go:embed traffic-cases.jsonl
var trafficJSONL []byte

// trafficCases are the cases of traffic-cases.jsonl. The file ships with
// the binary; a line that does not parse is a bug every test catches.
func trafficCases() []Case {
	tcs, err := ParseTrafficCases(trafficJSONL)
	if err != nil {
		panic("conformance/traffic-cases.jsonl: " + err.Error())
	}
	cs := make([]Case, len(tcs))
	for i, tc := range tcs {
		cs[i] = Case{Name: tc.Name, Ops: tc.Ops}
	}
	return cs
}

// ParseTrafficCases reads traffic-cases.jsonl: one TrafficCase a line,
// names under traffic/ and unique, every op valid.
func ParseTrafficCases(b []byte) ([]TrafficCase, error) {
	var out []TrafficCase
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		var tc TrafficCase
		if err := json.Unmarshal(line, &tc); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if !strings.HasPrefix(tc.Name, "traffic/") || seen[tc.Name] || len(tc.Ops) == 0 {
			return nil, fmt.Errorf("line %d: want a new name under traffic/ and at least one op, got %q with %d ops", n, tc.Name, len(tc.Ops))
		}
		for i := range tc.Ops {
			op := tc.Ops[i]
			if err := op.Validate(); err != nil {
				return nil, fmt.Errorf("line %d: op %d: %w", n, i, err)
			}
		}
		seen[tc.Name] = true
		out = append(out, tc)
	}
	return out, sc.Err()
}

// divergenceLine is the part of a proxy divergence line a case needs.
type divergenceLine struct {
	Seq    uint64    `json:"seq"`
	Op     *fsop.Op  `json:"op"`
	Class  string    `json:"class"`
	Recent []fsop.Op `json:"recent"`
}

// FromDivergence turns a divergence line (its recent ops, then its op)
// into a case named name, run from an empty directory: the parent
// directories its paths need and the sequence does not make itself come
// first, as mkdir ops.
func FromDivergence(raw []byte, name string) (TrafficCase, error) {
	var d divergenceLine
	if err := json.Unmarshal(raw, &d); err != nil {
		return TrafficCase{}, fmt.Errorf("not a divergence line: %w", err)
	}
	if d.Op == nil || d.Class == "" {
		return TrafficCase{}, fmt.Errorf("not a divergence line (no op or class): a --record line?")
	}
	seq := append(append([]fsop.Op(nil), d.Recent...), *d.Op)
	if !strings.HasPrefix(name, "traffic/") {
		name = "traffic/" + name
	}
	return TrafficCase{Name: name, From: fmt.Sprintf("divergence seq %d: %s on %s %q", d.Seq, d.Class, d.Op.Kind, d.Op.Path),
		Ops: WithParents(seq)}, nil
}

// WithParents prefixes ops with a mkdir of every parent directory their
// paths name that no mkdir in ops makes, shallowest first.
func WithParents(ops []fsop.Op) []fsop.Op {
	made := map[string]bool{}
	for _, op := range ops {
		if op.Kind == fsop.Mkdir {
			made[path.Clean(op.Path)] = true
		}
	}
	need := map[string]bool{}
	for _, op := range ops {
		for _, p := range []string{op.Path, op.To} {
			if p == "" {
				continue
			}
			for d := path.Dir(path.Clean(p)); d != "." && d != "/"; d = path.Dir(d) {
				if !made[d] {
					need[d] = true
				}
			}
		}
	}
	dirs := make([]string, 0, len(need))
	for d := range need {
		dirs = append(dirs, d)
	}
	sort.Slice(dirs, func(i, j int) bool {
		if a, b := strings.Count(dirs[i], "/"), strings.Count(dirs[j], "/"); a != b {
			return a < b
		}
		return dirs[i] < dirs[j]
	})
	out := make([]fsop.Op, 0, len(dirs)+len(ops))
	for _, d := range dirs {
		out = append(out, mkdir(d))
	}
	return append(out, ops...)
}

// DivergenceAt reads line n (1-based; 0: the first divergence line) of a
// divergence log, given as "FILE" or "FILE:N".
func DivergenceAt(spec string) (raw []byte, n int, err error) {
	file := spec
	if i := strings.LastIndexByte(spec, ':'); i > 0 {
		if _, err := fmt.Sscanf(spec[i+1:], "%d", &n); err == nil {
			file = spec[:i]
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, 0, err
	}
	for i, line := range bytes.Split(b, []byte("\n")) {
		if (n == 0 && bytes.Contains(line, []byte(`"class"`)) && bytes.Contains(line, []byte(`"recent"`))) || i+1 == n {
			return line, i + 1, nil
		}
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("%s: no divergence line", file)
	}
	return nil, 0, fmt.Errorf("%s has no line %d", file, n)
}
