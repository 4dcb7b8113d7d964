package compare

import (
	"regexp"
	"strings"
	"testing"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

func TestClassify(t *testing.T) {
	file := func(mode uint32, size int64) *fsop.Attr { return &fsop.Attr{Mode: mode, Size: size, Nlink: 1} }
	tests := []struct {
		name string
		a, b fsop.Result
		want string
	}{
		{"equal", fsop.Result{Stat: file(0o100644, 1)}, fsop.Result{Stat: file(0o100644, 1)}, ""},
		{"errno", fsop.Result{Errno: "ENOENT"}, fsop.Result{}, ClassErrno},
		{"errno wins over data", fsop.Result{Errno: "EIO", Data: []byte("a")}, fsop.Result{Data: []byte("b")}, ClassErrno},
		{"data bytes", fsop.Result{Data: []byte("a")}, fsop.Result{Data: []byte("b")}, ClassData},
		{"byte count", fsop.Result{N: 1}, fsop.Result{N: 2}, ClassData},
		{"size", fsop.Result{Size: 1}, fsop.Result{Size: 2}, ClassData},
		{"symlink target", fsop.Result{Target: "a"}, fsop.Result{Target: "b"}, ClassData},
		{"xattr value", fsop.Result{Value: []byte("a")}, fsop.Result{Value: []byte("b")}, ClassData},
		{"xattr names", fsop.Result{Names: []string{"user.a"}}, fsop.Result{Names: []string{"user.b"}}, ClassData},
		{"mode", fsop.Result{Stat: file(0o100644, 1)}, fsop.Result{Stat: file(0o100600, 1)}, ClassAttr},
		{"statfs namelen", fsop.Result{Statfs: &fsop.StatfsInfo{Namelen: 255}}, fsop.Result{Statfs: &fsop.StatfsInfo{Namelen: 1024}}, ClassAttr},
		{"entries", fsop.Result{Entries: []fsop.Dirent{{Name: "a"}}}, fsop.Result{Entries: []fsop.Dirent{{Name: "b"}}}, ClassEntries},
		{"entries order only", fsop.Result{Entries: []fsop.Dirent{{Name: "a"}, {Name: "b"}}}, fsop.Result{Entries: []fsop.Dirent{{Name: "b"}, {Name: "a"}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(&tt.a, &tt.b, Rules{}); got != tt.want {
				t.Fatalf("Classify = %q, want %q", got, tt.want)
			}
			if eq, _ := Equal(&tt.a, &tt.b, Rules{}); eq != (tt.want == "") {
				t.Fatalf("Equal = %v disagrees with Classify %q", eq, tt.want)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	sticky := func(mode uint32) *fsop.Result {
		return &fsop.Result{Stat: &fsop.Attr{Mode: mode, Nlink: 2}}
	}
	rename := &fsop.Op{Kind: fsop.Rename, Path: "a", To: "b", Flags: fsop.RenameNoReplace}
	stat := &fsop.Op{Kind: fsop.Stat, Path: "d"}
	lstat := &fsop.Op{Kind: fsop.Lstat, Path: "d"}
	readdir := &fsop.Op{Kind: fsop.Readdir, Path: "."}
	j := Judge{Allowlist: DefaultAllowlist()}
	tests := []struct {
		name        string
		in          Input
		class, base string
		allowed     bool
		orderOnly   bool
	}{
		{"equal", Input{Op: stat, A: Answer{"bazil", sticky(0o40755)}, B: Answer{"gofuse", sticky(0o40755)}}, "", "", false, false},
		{"order only", Input{Op: readdir, A: Answer{"bazil", &fsop.Result{Entries: []fsop.Dirent{{Name: "a"}, {Name: "b"}}}},
			B: Answer{"gofuse", &fsop.Result{Entries: []fsop.Dirent{{Name: "b"}, {Name: "a"}}}}}, "", "", false, true},
		{"errno not allowed", Input{Op: stat, A: Answer{"bazil", &fsop.Result{Errno: "ENOENT"}}, B: Answer{"gofuse", &fsop.Result{}}}, ClassErrno, ClassErrno, false, false},
		// allowlist rule 1: bazil answers EINVAL to renameat2 flags
		{"rename flags on bazil", Input{Op: rename, A: Answer{"bazil", &fsop.Result{Errno: "EINVAL"}}, B: Answer{"gofuse", &fsop.Result{}}}, ClassAllowed, ClassErrno, true, false},
		{"rename flags, roles swapped", Input{Op: rename, A: Answer{"gofuse", &fsop.Result{}}, B: Answer{"bazil", &fsop.Result{Errno: "EINVAL"}}}, ClassAllowed, ClassErrno, true, false},
		{"rename, other errno", Input{Op: rename, A: Answer{"bazil", &fsop.Result{Errno: "EXDEV"}}, B: Answer{"gofuse", &fsop.Result{}}}, ClassErrno, ClassErrno, false, false},
		{"rename EINVAL from the other library", Input{Op: rename, A: Answer{"bazil", &fsop.Result{}}, B: Answer{"gofuse", &fsop.Result{Errno: "EINVAL"}}}, ClassErrno, ClassErrno, false, false},
		// allowlist rules 2 and 3: bazil drops the sticky bit on stat and lstat
		{"sticky on stat", Input{Op: stat, A: Answer{"bazil", sticky(0o40755)}, B: Answer{"gofuse", sticky(0o41755)}}, ClassAllowed, ClassAttr, true, false},
		{"sticky on lstat", Input{Op: lstat, A: Answer{"bazil", sticky(0o40755)}, B: Answer{"gofuse", sticky(0o41755)}}, ClassAllowed, ClassAttr, true, false},
		{"sticky and another bit", Input{Op: stat, A: Answer{"bazil", sticky(0o40755)}, B: Answer{"gofuse", sticky(0o41700)}}, ClassAttr, ClassAttr, false, false},
		{"sticky and nlink", Input{Op: stat, A: Answer{"bazil", sticky(0o40755)}, B: Answer{"gofuse", &fsop.Result{Stat: &fsop.Attr{Mode: 0o41755, Nlink: 3}}}}, ClassAttr, ClassAttr, false, false},
		{"read-back state", Input{Op: lstat, ReadBack: true, A: Answer{"bazil", &fsop.Result{Value: []byte{1}}}, B: Answer{"gofuse", &fsop.Result{Value: []byte{2}}}}, ClassState, ClassData, false, false},
		{"read-back allowed", Input{Op: lstat, ReadBack: true, A: Answer{"bazil", sticky(0o40755)}, B: Answer{"gofuse", sticky(0o41755)}}, ClassAllowed, ClassAttr, true, false},
		{"mtime ignored", Input{Op: stat, A: Answer{"bazil", &fsop.Result{Stat: &fsop.Attr{MtimeNs: 1}}}, B: Answer{"gofuse", &fsop.Result{Stat: &fsop.Attr{MtimeNs: 2}}}}, "", "", false, false},
		{"mtime compared when set", Input{Op: stat, Mtime: true, A: Answer{"bazil", &fsop.Result{Stat: &fsop.Attr{MtimeNs: 1}}}, B: Answer{"gofuse", &fsop.Result{Stat: &fsop.Attr{MtimeNs: 2}}}}, ClassAttr, ClassAttr, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := j.Judge(tt.in)
			if got.Class != tt.class || got.Base != tt.base || (got.Allowed != "") != tt.allowed || got.OrderOnly != tt.orderOnly {
				t.Fatalf("Judge = %+v; want class %q base %q allowed %v orderOnly %v", got, tt.class, tt.base, tt.allowed, tt.orderOnly)
			}
			if (got.Diff != "") != (tt.class != "") {
				t.Fatalf("diff %q for class %q", got.Diff, got.Class)
			}
			if got.Divergent() != (tt.class != "" && !tt.allowed) {
				t.Fatalf("Divergent() = %v", got.Divergent())
			}
		})
	}
}

func TestParseAllowlistRefuses(t *testing.T) {
	for _, doc := range []string{
		"- {op: rename, class: errno, backend: bazil}",                         // no reason
		"- {op: nosuch, class: errno, backend: bazil, reason: x}",              // unknown op
		"- {op: rename, class: nosuch, backend: bazil, reason: x}",             // unknown class
		"- {op: stat, class: attr, backend: bazil, mode_bits: '9', reason: x}", // not octal
	} {
		if _, err := ParseAllowlist([]byte(doc)); err == nil {
			t.Errorf("ParseAllowlist(%s) accepted it", doc)
		} else if !strings.Contains(err.Error(), "entry 1") {
			t.Errorf("ParseAllowlist(%s): %v does not name the entry", doc, err)
		}
	}
}

// TestDirentOffsetsIgnored: the same listing from bazil (d_off = byte
// offsets) and go-fuse (d_off = index+1) is equal, in order, and no
// divergence; a difference elsewhere renders no offsets in its diff.
func TestDirentOffsetsIgnored(t *testing.T) {
	bazil := &fsop.Result{Entries: []fsop.Dirent{de(".", "dir", 32), de("..", "dir", 64), de("a", "file", 96), de("b", "dir", 128)}}
	gofuse := &fsop.Result{Entries: []fsop.Dirent{de(".", "dir", 1), de("..", "dir", 2), de("a", "file", 3), de("b", "dir", 4)}}
	readdir := &fsop.Op{Kind: fsop.Readdir, Path: "."}
	j := Judge{Allowlist: DefaultAllowlist()}
	if got := j.Judge(Input{Op: readdir, A: Answer{"bazil", bazil}, B: Answer{"gofuse", gofuse}}); got != (Judgment{}) {
		t.Fatalf("listings that differ only in d_off judged %+v", got)
	}
	if eq, inOrder := Equal(bazil, gofuse, Rules{}); !eq || !inOrder {
		t.Fatalf("Equal = %v, in order %v; want true, true", eq, inOrder)
	}
	if d := Diff(*bazil, *gofuse, Rules{}); d != "" {
		t.Fatalf("Diff shows offsets:\n%s", d)
	}
	if n := Normalize(*bazil, Rules{}); n.Entries[3].Off != 0 || bazil.Entries[3].Off != 128 {
		t.Fatalf("Normalize: %+v from %+v; want d_off zeroed in a copy", n.Entries, bazil.Entries)
	}

	reordered := &fsop.Result{Entries: []fsop.Dirent{de(".", "dir", 1), de("..", "dir", 2), de("b", "dir", 3), de("a", "file", 4)}}
	if got := j.Judge(Input{Op: readdir, A: Answer{"bazil", bazil}, B: Answer{"gofuse", reordered}}); got != (Judgment{OrderOnly: true}) {
		t.Fatalf("reordered listing judged %+v, want order only", got)
	}
	renamed := &fsop.Result{Entries: []fsop.Dirent{de(".", "dir", 1), de("..", "dir", 2), de("a", "file", 3), de("c", "dir", 4)}}
	got := j.Judge(Input{Op: readdir, A: Answer{"bazil", bazil}, B: Answer{"gofuse", renamed}})
	if got.Class != ClassEntries || regexp.MustCompile(`Off: +[1-9]`).MatchString(got.Diff) {
		t.Fatalf("a different name judged %+v; want class entries and a diff without offsets", got)
	}
}

func de(name, typ string, off uint64) fsop.Dirent {
	return fsop.Dirent{Name: name, Type: typ, Off: off}
}
