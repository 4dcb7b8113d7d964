package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/lighthouse-fs/lighthouse/conformance"
	"github.com/lighthouse-fs/lighthouse/fsop"
)

// ErrNotReproduced is the error of a --minimize run where a divergence did
// not reproduce with its whole recorded history: there is nothing to
// shrink.
var ErrNotReproduced = errors.New("divergence not reproduced")

// Minimized is the result of shrinking one divergence line.
type Minimized struct {
	Line    int
	Before  int       // ops replayed: the recent ops and the op
	Ops     []fsop.Op // the smallest sequence found that still diverges the same way; the op last
	Replays int       // sequences replayed to find it
	Case    conformance.TrafficCase
}

// minimize shrinks divergence line l by delta debugging (ddmin) over its
// recent ops, the op itself always last: each candidate is replayed on the
// bridges reset to the baseline, and kept if its last op diverges the same
// way (the same op kind and class). Two cheap candidates come first: the
// op alone, and the recent ops that name one of its paths or a parent or
// child of them; ddmin then starts from the smallest that reproduced.
func (rp *replayer) minimize(ctx context.Context, l replayLine) (Minimized, error) {
	d := l.div
	m := Minimized{Line: l.line, Before: len(d.Recent) + 1}
	tried := map[string]bool{}
	var runErr error
	test := func(keep []int) bool {
		key := fmt.Sprint(keep)
		if v, ok := tried[key]; ok || runErr != nil {
			return v && runErr == nil
		}
		ops := make([]fsop.Op, 0, len(keep)+1)
		for _, i := range keep {
			ops = append(ops, d.Recent[i])
		}
		run, err := rp.runSequence(ctx, append(ops, d.Op), newProgress(0))
		m.Replays++
		if err != nil {
			runErr = err
			return false
		}
		same := false
		for _, x := range run.onOp {
			same = same || (x.Class == d.Class && x.Op.Kind == d.Op.Kind)
		}
		tried[key] = same
		return same
	}
	all := make([]int, len(d.Recent))
	for i := range all {
		all[i] = i
	}
	if !test(all) {
		if runErr != nil {
			return m, runErr
		}
		return m, fmt.Errorf("line %d: %w with its %d recent ops: nothing to shrink", l.line, ErrNotReproduced, len(d.Recent))
	}
	start := all
	for _, cand := range [][]int{{}, relatedOps(d.Recent, d.Op)} {
		if len(cand) < len(start) && test(cand) {
			start = cand
			break
		}
	}
	keep := ddmin(start, test)
	if runErr != nil {
		return m, runErr
	}
	for _, i := range keep {
		m.Ops = append(m.Ops, d.Recent[i])
	}
	m.Ops = append(m.Ops, d.Op)
	m.Case = conformance.TrafficCase{
		Name: fmt.Sprintf("traffic/line-%d-%s-%s", l.line, d.Op.Kind, d.Class),
		From: fmt.Sprintf("divergence seq %d: %s on %s %q, %d ops shrunk to %d", d.Seq, d.Class, d.Op.Kind, d.Op.Path, m.Before, len(m.Ops)),
		Ops:  conformance.WithParents(m.Ops),
	}
	return m, nil
}

// relatedOps are the indices of the ops in recent that name one of op's
// paths, or a parent or child of one.
func relatedOps(recent []fsop.Op, op fsop.Op) []int {
	related := func(a, b string) bool {
		if a == "" || b == "" {
			return false
		}
		a, b = path.Clean(a), path.Clean(b)
		return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
	}
	var out []int
	for i, r := range recent {
		for _, p := range []string{r.Path, r.To} {
			if related(p, op.Path) || related(p, op.To) {
				out = append(out, i)
				break
			}
		}
	}
	return out
}

// ddmin is Zeller's delta debugging: it returns a subsequence of c on
// which test holds, from which no single chunk at the finest granularity
// tried can be removed. test must hold on c.
func ddmin(c []int, test func([]int) bool) []int {
	n := 2
	for len(c) > 0 {
		if len(c) == 1 {
			if test(nil) {
				return nil
			}
			return c
		}
		n = min(n, len(c))
		chunks := split(c, n)
		reduced := false
		for _, ch := range chunks {
			if test(ch) {
				c, n, reduced = ch, 2, true
				break
			}
		}
		if !reduced && n > 2 { // with two chunks each complement is the other chunk
			for i := range chunks {
				comp := complement(chunks, i)
				if test(comp) {
					c, n, reduced = comp, max(n-1, 2), true
					break
				}
			}
		}
		if !reduced {
			if n >= len(c) {
				return c
			}
			n = min(2*n, len(c))
		}
	}
	return c
}

// split cuts c into n chunks of nearly equal length, in order.
func split(c []int, n int) [][]int {
	out := make([][]int, 0, n)
	for i := 0; i < n; i++ {
		lo, hi := i*len(c)/n, (i+1)*len(c)/n
		out = append(out, c[lo:hi:hi])
	}
	return out
}

// complement is every chunk but the i-th, in order.
func complement(chunks [][]int, i int) []int {
	var out []int
	for j, ch := range chunks {
		if j != i {
			out = append(out, ch...)
		}
	}
	return out
}

// minimizeReport prints one result: the sizes, every op, and the case
// line to add to conformance/traffic-cases.jsonl.
func (rp *replayer) minimizeReport(m Minimized) error {
	line, err := json.Marshal(m.Case)
	if err != nil {
		return err
	}
	fmt.Fprintf(rp.out, "line %d: minimized %d ops to %d in %d replays; each still diverges on its last op:\n", m.Line, m.Before, len(m.Ops), m.Replays)
	for i, op := range m.Ops {
		b, _ := json.Marshal(op)
		fmt.Fprintf(rp.out, "  %d. %s\n", i+1, b)
	}
	fmt.Fprintf(rp.out, "as a conformance case (append to conformance/traffic-cases.jsonl, then make compat; rerun it with lighthouse compat --case %s):\n%s\n", m.Case.Name, line)
	return nil
}
