package replay

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// report prints the summary table and the verdicts.
func (rp *replayer) report(in *replayInput, verdicts []string) {
	s := &rp.stats
	tw := tabwriter.NewWriter(rp.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, n int64, detail string) { fmt.Fprintf(tw, "%s\t%d\t%s\n", name, n, detail) }
	sumMap := func(m map[string]int64) (int64, string) {
		var total int64
		keys := make([]string, 0, len(m))
		for k, n := range m {
			total += n
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
		return total, strings.Join(parts, ", ")
	}
	fmt.Fprintln(rp.out)
	row("ops replayed", s.ops, fmt.Sprintf("  refused %d, failed %d", s.refused, s.failed))
	row("compared", s.compared, "")
	nSkip, skipDetail := sumMap(s.skipped)
	if skipDetail != "" {
		skipDetail = "  " + skipDetail
	}
	row("not compared", nSkip, skipDetail)
	nDiv, _ := sumMap(s.byClass)
	row("divergences", nDiv, "")
	for _, c := range compare.Classes {
		if n, ok := s.byClass[c]; ok {
			row(c, n, "")
		}
	}
	row("not allowed", int64(len(s.notAllowed)), "")
	row("resyncs", s.resyncs, "")
	tw.Flush()
	if in.records > 0 {
		n, detail := sumMap(in.recorded)
		if detail != "" {
			detail = " (" + detail + ")"
		}
		fmt.Fprintf(rp.out, "recorded: %d ops, %d with a different result on the shadow%s; %s results the same as recorded: %d of %d\n",
			in.records, n, detail, rp.names[0], s.sameAsRecorded, s.recordedCompared)
		if s.outOfOrder > 0 {
			fmt.Fprintf(rp.out, "warning: %d record lines came more than %d lines late and ran out of admission order\n", s.outOfOrder, reorderWindow)
		}
	}
	if len(in.divs) > 0 {
		fmt.Fprintln(rp.out)
		for _, v := range verdicts {
			fmt.Fprintln(rp.out, v)
		}
	}
	for i, d := range s.notAllowed {
		if i == 5 {
			fmt.Fprintf(rp.out, "... and %d more\n", len(s.notAllowed)-i)
			break
		}
		b, _ := json.Marshal(d.Op)
		fmt.Fprintf(rp.out, "\nnot allowed: %s on %s (%s serving, %s mirror)\n%s", d.Class, b, d.Serving.Backend, d.Mirror.Backend, d.Diff)
	}
}

// SchemaReplay names `lighthouse replay --json`'s object (docs/json.md).
const SchemaReplay = "lighthouse.replay/v1"

// ReplayJSON is the summary of a replay for scripts.
type ReplayJSON struct {
	Schema             string           `json:"schema"`
	Outcome            verdict.Outcome  `json:"outcome"`
	ExitStatus         int              `json:"exit_status"`
	Ops                int64            `json:"ops"`
	Refused            int64            `json:"refused"`
	Failed             int64            `json:"failed"`
	Compared           int64            `json:"compared"`
	Skipped            map[string]int64 `json:"skipped_by_reason"`
	DivergencesByClass map[string]int64 `json:"divergences_by_class"`
	NotAllowed         int              `json:"not_allowed"`
	Resyncs            int64            `json:"resyncs"`
	Records            int64            `json:"record_lines"`
	DivergenceLines    []string         `json:"divergence_lines"` // one verdict per divergence line
}

func (rp *replayer) json(in *replayInput, verdicts []string, v verdict.Verdict) ReplayJSON {
	s := &rp.stats
	if verdicts == nil {
		verdicts = []string{}
	}
	return ReplayJSON{Schema: SchemaReplay, Outcome: v.Outcome, ExitStatus: v.ExitCode, Ops: s.ops, Refused: s.refused,
		Failed: s.failed, Compared: s.compared, Skipped: s.skipped, DivergencesByClass: s.byClass,
		NotAllowed: len(s.notAllowed), Resyncs: s.resyncs, Records: in.records, DivergenceLines: verdicts}
}
