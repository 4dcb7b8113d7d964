package noise

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

func TestAnalyze(t *testing.T) {
	stat := func(ino uint64, mode uint32, ctime int64) *fsop.Result {
		return &fsop.Result{Stat: &fsop.Attr{Mode: mode, Ino: ino, CtimeNs: ctime}}
	}
	ents := func(names ...string) *fsop.Result {
		r := &fsop.Result{}
		for _, n := range names {
			r.Entries = append(r.Entries, fsop.Dirent{Name: n, Type: "file"})
		}
		return r
	}
	recs := []proxy.Record{
		{Seq: 1, Op: fsop.Op{Kind: fsop.Stat, Path: "a"}, Serving: proxy.Outcome{Result: stat(5, 0o100644, 1)}, Mirror: &proxy.Outcome{Result: stat(9, 0o100644, 2)}},
		{Seq: 2, Op: fsop.Op{Kind: fsop.Readdir, Path: "."}, Serving: proxy.Outcome{Result: ents("a", "b")}, Mirror: &proxy.Outcome{Result: ents("b", "a")}},
		{Seq: 3, Op: fsop.Op{Kind: fsop.Stat, Path: "s"}, Class: compare.ClassAttr,
			Serving: proxy.Outcome{Result: stat(3, 0o101644, 1)}, Mirror: &proxy.Outcome{Result: stat(3, 0o100644, 1)}},
		{Seq: 4, Op: fsop.Op{Kind: fsop.Stat, Path: "x"}, Skipped: "resync", Serving: proxy.Outcome{Result: stat(1, 0o100644, 1)}},
		{Seq: 5, Op: fsop.Op{Kind: fsop.Readdir, Path: "."}, Serving: proxy.Outcome{Result: withOffsets(ents("a", "b"), 32, 64)},
			Mirror: &proxy.Outcome{Result: withOffsets(ents("a", "b"), 1, 2)}},
	}
	var buf bytes.Buffer
	for _, r := range recs {
		b, _ := json.Marshal(r)
		buf.Write(append(b, '\n'))
	}
	f, err := Analyze(&buf, compare.DefaultAllowlist())
	if err != nil {
		t.Fatal(err)
	}
	if f.Records != 5 || f.Compared != 4 || f.Beyond() != 1 {
		t.Errorf("records %d compared %d beyond %d, want 5 4 1", f.Records, f.Compared, f.Beyond())
	}
	if f.Ignored["inode numbers"] != 1 || f.Ignored["ctime"] != 1 || f.Ignored["directory order"] != 1 ||
		f.Ignored["entry d_off"] != 1 || f.Ignored["mtime"] != 0 {
		t.Errorf("ignored %v", f.Ignored)
	}
	flagged := strings.Join(f.Flagged(), "; ")
	for _, want := range []string{"comparator ignores mtime", "allowlist rename/errno on bazil"} {
		if !strings.Contains(flagged, want) {
			t.Errorf("flagged %q lacks %q", flagged, want)
		}
	}
	if strings.Contains(flagged, "inode numbers") || strings.Contains(flagged, "allowlist stat/attr") {
		t.Errorf("flagged a rule the A/A run justified: %q", flagged)
	}
	var out bytes.Buffer
	f.WriteText(&out, "bazil")
	if !strings.Contains(out.String(), "divergences beyond directory order  1") {
		t.Errorf("report:\n%s", out.String())
	}
}

func withOffsets(r *fsop.Result, offs ...uint64) *fsop.Result {
	for i, o := range offs {
		r.Entries[i].Off = o
	}
	return r
}
