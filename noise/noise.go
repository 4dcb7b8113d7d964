// Package noise measures an A/A noise floor, as Diffy does: two bridges
// running the same FUSE library take the same ops through the proxy, and
// whatever differs between them differs by chance (timing, inode numbers,
// directory order), not because of the library. It reads the proxy's
// record log of such a run, counts each kind of difference, and checks the
// comparator's rules and the allowlist against it: a rule that hides a
// difference the A/A run does not show is flagged, since it could hide a
// real difference between the libraries instead of noise.
package noise

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

// Floor is what an A/A run showed.
type Floor struct {
	Records  int64            // record lines read
	Compared int64            // ops with both results, compared
	Classes  map[string]int64 // divergences by class, as the proxy classified them
	// Ignored counts, for each difference the comparator ignores, the
	// compared ops whose results differed only there (or there too).
	Ignored map[string]int64
	// Allowlist counts the compared ops each allowlist entry would have
	// hidden, by entry index.
	Allowlist []int64
	allow     compare.Allowlist
}

// Comparator rules: what compare.Equal and compare.Classify ignore under
// the proxy's rules, with the test that a pair of results differs there.
var ignoredFields = []struct {
	name   string
	differ func(a, b *fsop.Result) bool
}{
	{"inode numbers", func(a, b *fsop.Result) bool { return a.Stat != nil && b.Stat != nil && a.Stat.Ino != b.Stat.Ino }},
	{"atime", func(a, b *fsop.Result) bool {
		return a.Stat != nil && b.Stat != nil && a.Stat.AtimeNs != b.Stat.AtimeNs
	}},
	{"ctime", func(a, b *fsop.Result) bool {
		return a.Stat != nil && b.Stat != nil && a.Stat.CtimeNs != b.Stat.CtimeNs
	}},
	{"mtime", func(a, b *fsop.Result) bool {
		return a.Stat != nil && b.Stat != nil && a.Stat.MtimeNs != b.Stat.MtimeNs
	}},
	{"directory sizes", func(a, b *fsop.Result) bool {
		return a.Stat != nil && b.Stat != nil && fsop.DirentType(a.Stat.Mode) == "dir" && a.Stat.Size != b.Stat.Size
	}},
	{"statfs counts", func(a, b *fsop.Result) bool {
		return a.Statfs != nil && b.Statfs != nil && *a.Statfs != *b.Statfs && a.Statfs.Namelen == b.Statfs.Namelen
	}},
	{"directory order", func(a, b *fsop.Result) bool {
		return len(a.Entries) > 0 && !slices.EqualFunc(a.Entries, b.Entries, func(x, y fsop.Dirent) bool {
			return x.Name == y.Name && x.Type == y.Type
		})
	}},
	{"entry d_off", func(a, b *fsop.Result) bool { return offsetsDiffer(a.Entries, b.Entries) }},
}

// offsetsDiffer reports whether an entry of the same name has another
// d_off in a than in b.
func offsetsDiffer(a, b []fsop.Dirent) bool {
	off := make(map[string]uint64, len(a))
	for _, e := range a {
		off[e.Name] = e.Off
	}
	for _, e := range b {
		if o, ok := off[e.Name]; ok && o != e.Off {
			return true
		}
	}
	return false
}

// Analyze reads a record log (`lighthouse proxy --record`) of an A/A run
// and checks allow against it.
func Analyze(r io.Reader, allow compare.Allowlist) (*Floor, error) {
	f := &Floor{Classes: map[string]int64{}, Ignored: map[string]int64{}, Allowlist: make([]int64, len(allow)), allow: allow}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for n := 1; sc.Scan(); n++ {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var rec proxy.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("record line %d: %w", n, err)
		}
		f.Records++
		f.add(&rec)
	}
	return f, sc.Err()
}

func (f *Floor) add(rec *proxy.Record) {
	if rec.Class != "" {
		f.Classes[rec.Class]++
	}
	if rec.Skipped != "" || rec.Mirror == nil || rec.Serving.Result == nil || rec.Mirror.Result == nil {
		return
	}
	f.Compared++
	a, b := rec.Serving.Result, rec.Mirror.Result
	for _, fld := range ignoredFields {
		if fld.differ(a, b) {
			f.Ignored[fld.name]++
		}
	}
	class := compare.Classify(a, b, compare.Rules{})
	if class == "" {
		return
	}
	for i, e := range f.allow {
		// As if the A/A pair were the two libraries: the entry's backend
		// stands for either side.
		if _, ok := (compare.Allowlist{e}).Match(&rec.Op, class, compare.Rules{}, e.Backend, a, e.Backend+"-other", b); ok {
			f.Allowlist[i]++
		} else if _, ok := (compare.Allowlist{e}).Match(&rec.Op, class, compare.Rules{}, e.Backend+"-other", a, e.Backend, b); ok {
			f.Allowlist[i]++
		}
	}
}

// Beyond is the number of divergences other than directory order (which
// the proxy does not count as one) and the allowlisted ones.
func (f *Floor) Beyond() int64 {
	var n int64
	for c, k := range f.Classes {
		if c != compare.ClassAllowed {
			n += k
		}
	}
	return n
}

// Flagged lists the rules that hide a difference this A/A run did not
// show: comparator rules whose field never differed by chance, and
// allowlist entries that matched nothing (a library difference, justified
// only by the compatibility catalogue, never by noise).
func (f *Floor) Flagged() []string {
	var out []string
	for _, fld := range ignoredFields {
		if f.Ignored[fld.name] == 0 {
			out = append(out, "comparator ignores "+fld.name)
		}
	}
	for i, e := range f.allow {
		if f.Allowlist[i] == 0 {
			out = append(out, fmt.Sprintf("allowlist %s/%s on %s", e.Op, e.Class, e.Backend))
		}
	}
	return out
}

// WriteText writes the noise-floor section of a report.
func (f *Floor) WriteText(out io.Writer, library string) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\nA/A NOISE FLOOR (%s vs %s, %d ops recorded, %d compared)\n", library, library, f.Records, f.Compared)
	classes := make([]string, 0, len(f.Classes))
	for c := range f.Classes {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	fmt.Fprintf(w, "  divergences beyond directory order\t%d\t", f.Beyond())
	for _, c := range classes {
		fmt.Fprintf(w, " %s=%d", c, f.Classes[c])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  comparator rule\tdiffered by chance\tverdict\n")
	for _, fld := range ignoredFields {
		fmt.Fprintf(w, "  ignores %s\t%d of %d\t%s\n", fld.name, f.Ignored[fld.name], f.Compared, ruleVerdict(f.Ignored[fld.name],
			"noise: the rule is justified", "FLAGGED: hides a difference A/A does not show"))
	}
	fmt.Fprintf(w, "  allowlist entry\tmatched in A/A\tverdict\n")
	for i, e := range f.allow {
		fmt.Fprintf(w, "  %s/%s on %s\t%d\t%s\n", e.Op, e.Class, e.Backend, f.Allowlist[i], ruleVerdict(f.Allowlist[i],
			"matches chance differences too: its reason may not hold",
			"FLAGGED: hides a difference A/A does not show (a library difference: justified by docs/compatibility.md, not by noise)"))
	}
	w.Flush()
}

func ruleVerdict(n int64, seen, unseen string) string {
	if n > 0 {
		return seen
	}
	return unseen
}
