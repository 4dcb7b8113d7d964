package conformance

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"gopkg.in/yaml.v3"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Reference is the target every other is held to.
const Reference = "reference"

// Expected is one known difference of a target from its baseline (the
// reference, or the target it is held to: Report.Baseline), with its
// reason.
type Expected struct {
	Case    string   `yaml:"case"`
	Target  string   `yaml:"target"`
	Targets []string `yaml:"targets"` // several targets, one reason
	Reason  string   `yaml:"reason"`
}

// Expectations index the expected-differences file by case and target.
type Expectations map[string]map[string]string

//go:embed expected-differences.yaml
var expectedYAML []byte

// DefaultExpected returns the expected differences shipped with the suite
// (conformance/expected-differences.yaml).
func DefaultExpected() (Expectations, error) {
	return ParseExpected(expectedYAML, "expected-differences.yaml")
}

// LoadExpected reads an expected-differences file.
func LoadExpected(path string) (Expectations, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseExpected(b, path)
}

// ParseExpected parses an expected-differences YAML document: a list of
// {case, target (or targets), reason}. Every entry needs all three, and
// the case must exist.
func ParseExpected(b []byte, path string) (Expectations, error) {
	var list []Expected
	if err := yaml.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	known := map[string]bool{}
	for _, c := range Cases() {
		known[c.Name] = true
	}
	ex := Expectations{}
	for i, e := range list {
		targets := e.Targets
		if e.Target != "" {
			targets = append(targets, e.Target)
		}
		if e.Case == "" || len(targets) == 0 || strings.TrimSpace(e.Reason) == "" {
			return nil, fmt.Errorf("%s: entry %d needs case, target and reason", path, i+1)
		}
		if !known[e.Case] {
			return nil, fmt.Errorf("%s: entry %d names unknown case %q", path, i+1, e.Case)
		}
		if ex[e.Case] == nil {
			ex[e.Case] = map[string]string{}
		}
		for _, t := range targets {
			ex[e.Case][t] = strings.Join(strings.Fields(e.Reason), " ")
		}
	}
	return ex, nil
}

// Reason returns why c may differ from its baseline on target, if listed.
func (e Expectations) Reason(c, target string) (string, bool) {
	r, ok := e[c][target]
	return r, ok
}

// Unexpected lists "case on target" for every case where a target differs
// from its baseline and the difference is not expected.
func (r *Report) Unexpected(ex Expectations) []string {
	var out []string
	for _, o := range r.Outcomes {
		for _, t := range r.Targets {
			if t == Reference {
				continue
			}
			if _, ok := ex.Reason(o.Case.Name, t); ok {
				continue
			}
			if o.Differs(r.Baseline(t), t) {
				out = append(out, fmt.Sprintf("%s on %s", o.Case.Name, t))
			}
		}
	}
	return out
}

// Stale lists expected differences that did not occur: entries to delete.
func (r *Report) Stale(ex Expectations) []string {
	var out []string
	for _, o := range r.Outcomes {
		for t := range ex[o.Case.Name] {
			if _, ran := o.Results[t]; ran && !o.Differs(r.Baseline(t), t) {
				out = append(out, fmt.Sprintf("%s on %s", o.Case.Name, t))
			}
		}
	}
	sort.Strings(out)
	return out
}

// mark is one cell of the case-by-target table.
func (r *Report) mark(o Outcome, t string, ex Expectations) string {
	if t == Reference {
		return "ref"
	}
	if o.Results[t] == nil {
		return "n/a"
	}
	if !o.Differs(r.Baseline(t), t) {
		return "same"
	}
	if _, ok := ex.Reason(o.Case.Name, t); ok {
		return "DIFF (expected)"
	}
	return "DIFF"
}

// Table renders case by target: "same" as its baseline (the reference,
// or the target it is held to), or "DIFF".
func (r *Report) Table(ex Expectations) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "case\t%s\n", strings.Join(r.Targets, "\t"))
	for _, o := range r.Outcomes {
		cells := make([]string, len(r.Targets))
		for i, t := range r.Targets {
			cells[i] = r.mark(o, t, ex)
		}
		fmt.Fprintf(w, "%s\t%s\n", o.Case.Name, strings.Join(cells, "\t"))
	}
	w.Flush()
	return b.String()
}

// CasesText renders every case of the report in full, as
// docs/compatibility.md shows one, with each target's verdict: what
// `lighthouse compat --case` prints.
func (r *Report) CasesText(a, b string, ex Expectations) string {
	var s strings.Builder
	for _, o := range r.Outcomes {
		r.caseMarkdown(&s, o, a, b, ex)
		var verdicts []string
		for _, t := range r.Targets {
			if t != Reference {
				verdicts = append(verdicts, t+": "+r.mark(o, t, ex))
			}
		}
		fmt.Fprintf(&s, "verdict: %s\n\n", strings.Join(verdicts, ", "))
	}
	return s.String()
}

// Summary counts, per target, the cases that match its baseline.
func (r *Report) Summary() string {
	var parts []string
	for _, t := range r.Targets {
		if t == Reference {
			continue
		}
		same, ran := 0, 0
		for _, o := range r.Outcomes {
			if o.Results[t] == nil {
				continue // the case does not apply there
			}
			ran++
			if !o.Differs(r.Baseline(t), t) {
				same++
			}
		}
		parts = append(parts, fmt.Sprintf("%s %d/%d same as %s", t, same, ran, r.Baseline(t)))
	}
	return strings.Join(parts, ", ")
}

// held lists the targets held to another target than the reference
// (Target.HeldTo), in the report's order.
func (r *Report) held() []string {
	var out []string
	for _, t := range r.Targets {
		if r.Baseline(t) != Reference {
			out = append(out, t)
		}
	}
	return out
}

// Markdown renders docs/compatibility.md: per op family, every case where
// the two libraries differ from each other or from the reference, or a
// held target (the front) from its baseline, with the results side by
// side.
func (r *Report) Markdown(a, b string, ex Expectations) string {
	var s strings.Builder
	held := r.held()
	r.introMarkdown(&s, a, b, held)
	families := familiesOf(r.Outcomes)
	r.familyTable(&s, families, a, b, held)
	if r.Settings != "" {
		s.WriteString("\n" + r.Settings)
	}
	for _, h := range held {
		r.heldMarkdown(&s, h, ex)
	}
	s.WriteString("## Cases from live traffic\n\n" +
		"A divergence the proxy recorded (a line of its divergences.jsonl: the op and the recent ops on its paths) becomes a case in one step: " +
		"`lighthouse replay --minimize divergences.jsonl` shrinks it and prints it as a line of `conformance/traffic-cases.jsonl` " +
		"(or `lighthouse compat --divergence divergences.jsonl:LINE --emit` prints it unshrunk, and without `--emit` runs it on both libraries at once); " +
		"append the line and run `make compat`. Such cases form the traffic family.\n\n")
	who := strings.Join(append([]string{a, b}, held...), ", ") + " and the reference"
	for _, f := range families {
		r.familyMarkdown(&s, f, a, b, who, ex)
	}
	return s.String()
}

// introMarkdown is the report's title and what was run and compared.
func (r *Report) introMarkdown(s *strings.Builder, a, b string, held []string) {
	fmt.Fprintf(s, "# Compatibility: %s vs %s\n\n", a, b)
	fmt.Fprintf(s, "Generated by the conformance suite (`make compat`), not written by hand. ")
	fmt.Fprintf(s, "%d cases, each a short sequence of real syscalls, run on: %s. ", len(r.Outcomes), strings.Join(r.Targets, ", "))
	for _, h := range held {
		fmt.Fprintf(s, "%s is held to %s, not to the reference: it must answer every step as %s does. ", h, r.Baseline(h), r.Baseline(h))
	}
	fmt.Fprintf(s, "Compared exactly except inode numbers, atime, ctime, mtime (unless the case sets it), directory sizes and statfs counts; ")
	fmt.Fprintf(s, "directory order differences are listed but are not differences.\n\n")
	fmt.Fprintf(s, "%s.\n\n", r.Summary())
}

// family is the outcomes of one family of cases.
type family struct {
	name     string
	outcomes []Outcome
}

// familiesOf groups outcomes by family, the families in the order of
// their first case.
func familiesOf(outcomes []Outcome) []family {
	var fs []family
	idx := map[string]int{}
	for _, o := range outcomes {
		f := o.Case.Family()
		i, ok := idx[f]
		if !ok {
			i = len(fs)
			idx[f] = i
			fs = append(fs, family{name: f})
		}
		fs[i].outcomes = append(fs[i].outcomes, o)
	}
	return fs
}

// familyTable is the table of differences counted per family: a against
// b, each against the reference, and each held target against its
// baseline.
func (r *Report) familyTable(s *strings.Builder, families []family, a, b string, held []string) {
	fmt.Fprintf(s, "| family | cases | %s ≠ %s | %s ≠ reference | %s ≠ reference |", a, b, a, b)
	for _, h := range held {
		fmt.Fprintf(s, " %s ≠ %s |", h, r.Baseline(h))
	}
	s.WriteString("\n|---|---|---|---|---|" + strings.Repeat("---|", len(held)) + "\n")
	for _, f := range families {
		var ab, ar, br int
		hr := make([]int, len(held))
		for _, o := range f.outcomes {
			if o.Differs(a, b) {
				ab++
			}
			if o.Differs(Reference, a) {
				ar++
			}
			if o.Differs(Reference, b) {
				br++
			}
			for i, h := range held {
				if o.Differs(r.Baseline(h), h) {
					hr[i]++
				}
			}
		}
		fmt.Fprintf(s, "| %s | %d | %d | %d | %d |", f.name, len(f.outcomes), ab, ar, br)
		for _, n := range hr {
			fmt.Fprintf(s, " %d |", n)
		}
		s.WriteString("\n")
	}
}

// familyMarkdown is the section of family f: each case with a difference,
// then the cases on which who all agree.
func (r *Report) familyMarkdown(s *strings.Builder, f family, a, b, who string, ex Expectations) {
	fmt.Fprintf(s, "\n## %s\n\n", f.name)
	if about := familyAbout[f.name]; about != "" {
		s.WriteString(about + "\n\n")
	}
	var agree []string
	for _, o := range f.outcomes {
		if !o.Differs(a, b) && !o.Differs(Reference, a) && !o.Differs(Reference, b) && !r.heldDiffers(o) {
			agree = append(agree, "`"+o.Case.Name+"`")
			continue
		}
		r.caseMarkdown(s, o, a, b, ex)
	}
	switch {
	case len(agree) == len(f.outcomes):
		fmt.Fprintf(s, "No differences found: %s agree on all %d cases: %s.\n", who, len(agree), strings.Join(agree, ", "))
	case len(agree) > 0:
		fmt.Fprintf(s, "%s agree on every step of the other cases: %s.\n", who, strings.Join(agree, ", "))
	}
}

// heldDiffers reports whether a held target differs from its baseline on o.
func (r *Report) heldDiffers(o Outcome) bool {
	for _, h := range r.held() {
		if o.Differs(r.Baseline(h), h) {
			return true
		}
	}
	return false
}

// heldMarkdown is the section listing every case where held target h
// differs from its baseline, with the reason (or none: a failure).
func (r *Report) heldMarkdown(s *strings.Builder, h string, ex Expectations) {
	base := r.Baseline(h)
	fmt.Fprintf(s, "## %s vs %s\n\n", h, base)
	if r.About[h] != "" {
		fmt.Fprintf(s, "%s: %s\n\n", h, r.About[h])
	}
	var diff []Outcome
	ran := 0
	for _, o := range r.Outcomes {
		if o.Results[h] == nil {
			continue
		}
		ran++
		if o.Differs(base, h) {
			diff = append(diff, o)
		}
	}
	fmt.Fprintf(s, "%s answers %d of %d cases exactly as %s. ", h, ran-len(diff), ran, base)
	if len(diff) == 0 {
		s.WriteString("It differs nowhere.\n\n")
		return
	}
	fmt.Fprintf(s, "Where it differs (each case is shown in full below):\n\n")
	for _, o := range diff {
		var steps []string
		for _, m := range o.Compare(base, h) {
			if !m.OrderOnly {
				steps = append(steps, strconv.Itoa(m.Index))
			}
		}
		reason, ok := ex.Reason(o.Case.Name, h)
		if !ok {
			reason = "not expected: a failure of the suite"
		}
		word := "step"
		if len(steps) > 1 {
			word = "steps"
		}
		fmt.Fprintf(s, "- `%s` (%s %s): %s\n", o.Case.Name, word, strings.Join(steps, ", "), reason)
	}
	s.WriteString("\n")
}

func (r *Report) caseMarkdown(s *strings.Builder, o Outcome, a, b string, ex Expectations) {
	fmt.Fprintf(s, "### %s\n\n", o.Case.Name)
	ra, oka := ex.Reason(o.Case.Name, a)
	rb, okb := ex.Reason(o.Case.Name, b)
	switch {
	case oka && okb && ra == rb:
		fmt.Fprintf(s, "Expected on %s and %s: %s\n\n", a, b, ra)
	default:
		if oka {
			fmt.Fprintf(s, "Expected on %s: %s\n\n", a, ra)
		}
		if okb {
			fmt.Fprintf(s, "Expected on %s: %s\n\n", b, rb)
		}
	}
	cols := []string{Reference, a, b}
	for _, h := range r.held() {
		if rh, ok := ex.Reason(o.Case.Name, h); ok {
			fmt.Fprintf(s, "Expected on %s (against %s): %s\n\n", h, r.Baseline(h), rh)
		}
		cols = append(cols, h)
	}
	fmt.Fprintf(s, "Reproduce: `lighthouse compat --case %s`\n\n", o.Case.Name)
	fmt.Fprintf(s, "| # | op | %s | |\n|---|---|%s---|\n", strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
	for i := 0; i < o.Case.Len(); i++ {
		mark := ""
		if r.opDiffers(o, i, Reference, a) || r.opDiffers(o, i, Reference, b) || r.opDiffers(o, i, a, b) {
			mark = "≠"
		}
		for _, h := range cols[3:] {
			if r.opDiffers(o, i, r.Baseline(h), h) {
				mark = "≠"
			}
		}
		fmt.Fprintf(s, "| %d | `%s` |", i, strings.ReplaceAll(o.Case.Call(i), "|", `\|`))
		for _, t := range cols {
			fmt.Fprintf(s, " %s |", stepResult(o, t, i))
		}
		fmt.Fprintf(s, " %s |\n", mark)
	}
	s.WriteString("\n")
}

// stepResult is target t's result of step i in one line.
func stepResult(o Outcome, t string, i int) string {
	res := o.Results[t]
	if i >= len(res) {
		return "n/a"
	}
	if len(o.Case.Sys) > 0 {
		if res[i].Errno != "" {
			return res[i].Errno
		}
		if len(res[i].Data) == 0 {
			return "ok"
		}
		return strings.ReplaceAll(string(res[i].Data), "|", `\|`)
	}
	return resultString(res[i])
}

func (r *Report) opDiffers(o Outcome, i int, a, b string) bool {
	for _, m := range o.Compare(a, b) {
		if m.Index == i && !m.OrderOnly {
			return true
		}
	}
	return false
}

// opString is an op in one line of JSON, long data and names elided.
func opString(op fsop.Op) string {
	op.Path, op.To, op.Target, op.Name = elide(op.Path), elide(op.To), elide(op.Target), elide(op.Name)
	if len(op.Data) > 32 {
		op.Data = append(op.Data[:16:16], "..."...)
	}
	if len(op.Value) > 32 {
		op.Value = append(op.Value[:16:16], "..."...)
	}
	b, _ := json.Marshal(op)
	return strings.ReplaceAll(string(b), "|", `\|`)
}

// elide shortens a long name to its start and its length.
func elide(s string) string {
	if len(s) <= 64 {
		return s
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:16], len(s))
}

// resultString is a result in one line, normalised and with data elided.
func resultString(res fsop.Result) string {
	if res.Errno != "" {
		return res.Errno
	}
	var parts []string
	if a := res.Stat; a != nil {
		parts = append(parts, fmt.Sprintf("mode=%o nlink=%d size=%d uid=%d gid=%d", a.Mode, a.Nlink, a.Size, a.UID, a.GID))
	}
	if res.Data != nil {
		if len(res.Data) > 24 {
			parts = append(parts, fmt.Sprintf("data=%d bytes", len(res.Data)))
		} else {
			parts = append(parts, fmt.Sprintf("data=%q", res.Data))
		}
	}
	if res.N != 0 {
		parts = append(parts, fmt.Sprintf("n=%d", res.N))
	}
	if res.Size != 0 {
		parts = append(parts, fmt.Sprintf("size=%d", res.Size))
	}
	if res.Entries != nil {
		names := make([]string, len(res.Entries))
		for i, e := range res.Entries {
			names[i] = elide(e.Name) + ":" + e.Type
		}
		parts = append(parts, "entries="+strings.Join(names, ","))
	}
	if res.Target != "" {
		parts = append(parts, "target="+elide(res.Target))
	}
	if res.Value != nil {
		if len(res.Value) > 24 {
			parts = append(parts, fmt.Sprintf("value=%d bytes", len(res.Value)))
		} else {
			parts = append(parts, fmt.Sprintf("value=%q", res.Value))
		}
	}
	if res.Names != nil {
		parts = append(parts, "names="+strings.Join(res.Names, ","))
	}
	if res.Statfs != nil {
		parts = append(parts, fmt.Sprintf("namelen=%d", res.Statfs.Namelen))
	}
	if len(parts) == 0 {
		return "ok"
	}
	return strings.ReplaceAll(strings.Join(parts, " "), "|", `\|`)
}
