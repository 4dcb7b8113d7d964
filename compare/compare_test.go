package compare

import (
	"strings"
	"testing"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

func TestEqual(t *testing.T) {
	file := func(size int64, mtime int64) *fsop.Attr {
		return &fsop.Attr{Mode: 0o100644, Size: size, Nlink: 1, MtimeNs: mtime, AtimeNs: 5, CtimeNs: 6, Ino: 7}
	}
	dir := func(size int64) *fsop.Attr { return &fsop.Attr{Mode: 0o40755, Size: size, Nlink: 2} }
	ents := func(names ...string) []fsop.Dirent {
		var out []fsop.Dirent
		for _, n := range names {
			out = append(out, fsop.Dirent{Name: n, Type: "file"})
		}
		return out
	}
	tests := []struct {
		name      string
		a, b      fsop.Result
		rules     Rules
		equal     bool
		sameOrder bool
	}{
		{"identical", fsop.Result{Data: []byte("x")}, fsop.Result{Data: []byte("x")}, Rules{}, true, true},
		{"errno differs", fsop.Result{Errno: "ENOENT"}, fsop.Result{}, Rules{}, false, true},
		{"data differs", fsop.Result{Data: []byte("x")}, fsop.Result{Data: []byte("y")}, Rules{}, false, true},
		{"nil and empty data", fsop.Result{Data: nil}, fsop.Result{Data: []byte{}}, Rules{}, true, true},
		{"ino atime ctime ignored", fsop.Result{Stat: file(1, 9)}, fsop.Result{Stat: &fsop.Attr{Mode: 0o100644, Size: 1, Nlink: 1, MtimeNs: 9}}, Rules{}, true, true},
		{"mtime ignored by default", fsop.Result{Stat: file(1, 1)}, fsop.Result{Stat: file(1, 2)}, Rules{}, true, true},
		{"mtime compared when set", fsop.Result{Stat: file(1, 1)}, fsop.Result{Stat: file(1, 2)}, Rules{Mtime: true}, false, true},
		{"file size exact", fsop.Result{Stat: file(1, 0)}, fsop.Result{Stat: file(2, 0)}, Rules{}, false, true},
		{"dir size ignored", fsop.Result{Stat: dir(4096)}, fsop.Result{Stat: dir(0)}, Rules{}, true, true},
		{"dir size compared", fsop.Result{Stat: dir(4096)}, fsop.Result{Stat: dir(0)}, Rules{DirSize: true}, false, true},
		{"mode exact", fsop.Result{Stat: dir(0)}, fsop.Result{Stat: &fsop.Attr{Mode: 0o41755, Nlink: 2}}, Rules{}, false, true},
		{"rdev exact", fsop.Result{Stat: &fsop.Attr{Mode: 0o20644, Nlink: 1, Rdev: 0x103}}, fsop.Result{Stat: &fsop.Attr{Mode: 0o20644, Nlink: 1, Rdev: 0x105}}, Rules{}, false, true},
		{"rdev missing", fsop.Result{Stat: &fsop.Attr{Mode: 0o60644, Nlink: 1, Rdev: 0x801}}, fsop.Result{Stat: &fsop.Attr{Mode: 0o60644, Nlink: 1}}, Rules{}, false, true},
		{"rdev equal", fsop.Result{Stat: &fsop.Attr{Mode: 0o60644, Nlink: 1, Rdev: 0x801, Ino: 3}}, fsop.Result{Stat: &fsop.Attr{Mode: 0o60644, Nlink: 1, Rdev: 0x801, Ino: 4}}, Rules{}, true, true},
		{"readdir order only", fsop.Result{Entries: ents("a", "b")}, fsop.Result{Entries: ents("b", "a")}, Rules{}, true, false},
		{"readdir missing entry", fsop.Result{Entries: ents("a", "b")}, fsop.Result{Entries: ents("a")}, Rules{}, false, false},
		{"readdir duplicate", fsop.Result{Entries: ents("a", "b")}, fsop.Result{Entries: ents("a", "a")}, Rules{}, false, false},
		{"xattr names any order", fsop.Result{Names: []string{"user.b", "user.a"}}, fsop.Result{Names: []string{"user.a", "user.b"}}, Rules{}, true, true},
		{"xattr names differ", fsop.Result{Names: []string{"user.b"}}, fsop.Result{Names: []string{"user.a"}}, Rules{}, false, true},
		{"statfs counts ignored", fsop.Result{Statfs: &fsop.StatfsInfo{Blocks: 1, Namelen: 255}}, fsop.Result{Statfs: &fsop.StatfsInfo{Blocks: 2, Namelen: 255}}, Rules{}, true, true},
		{"statfs counts compared", fsop.Result{Statfs: &fsop.StatfsInfo{Blocks: 1}}, fsop.Result{Statfs: &fsop.StatfsInfo{Blocks: 2}}, Rules{Statfs: true}, false, true},
		{"stat missing on one side", fsop.Result{Stat: dir(0)}, fsop.Result{}, Rules{}, false, true},
		{"symlink target", fsop.Result{Target: "a"}, fsop.Result{Target: "b"}, Rules{}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eq, same := Equal(&tt.a, &tt.b, tt.rules)
			if eq != tt.equal || same != tt.sameOrder {
				t.Fatalf("Equal = %v, sameOrder %v; want %v, %v", eq, same, tt.equal, tt.sameOrder)
			}
			// Diff agrees with Equal (order aside, which Normalize removes).
			if d := Diff(tt.a, tt.b, tt.rules); (d == "") != tt.equal {
				t.Fatalf("Diff %q disagrees with Equal=%v", d, tt.equal)
			}
		})
	}
}

func TestNormalizeDoesNotModifyInput(t *testing.T) {
	r := fsop.Result{Stat: &fsop.Attr{Ino: 9, Mode: 0o100644}, Entries: []fsop.Dirent{{Name: "b"}, {Name: "a"}}}
	n := Normalize(r, Rules{})
	if r.Stat.Ino != 9 || r.Entries[0].Name != "b" {
		t.Fatal("Normalize changed its input")
	}
	if n.Stat.Ino != 0 || n.Entries[0].Name != "a" {
		t.Fatalf("not normalised: %+v", n)
	}
}

func TestDiffNamesTheField(t *testing.T) {
	d := Diff(fsop.Result{Errno: "ENOENT"}, fsop.Result{Errno: "EEXIST"}, Rules{})
	if !strings.Contains(d, "ENOENT") || !strings.Contains(d, "EEXIST") {
		t.Fatalf("diff does not show both errnos: %s", d)
	}
}

// TestDiffShowsRdev: a device number that differs is in the diff.
func TestDiffShowsRdev(t *testing.T) {
	d := Diff(fsop.Result{Stat: &fsop.Attr{Mode: 0o20644, Rdev: 0x103}}, fsop.Result{Stat: &fsop.Attr{Mode: 0o20644, Rdev: 0x105}}, Rules{})
	if !strings.Contains(d, "Rdev") {
		t.Fatalf("diff does not name rdev: %s", d)
	}
}

func BenchmarkEqual4K(b *testing.B) {
	data := make([]byte, 4096)
	x := fsop.Result{Data: data, Stat: &fsop.Attr{Mode: 0o100644, Size: 4096}}
	y := fsop.Result{Data: append([]byte{}, data...), Stat: &fsop.Attr{Mode: 0o100644, Size: 4096}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if eq, _ := Equal(&x, &y, Rules{}); !eq {
			b.Fatal("unequal")
		}
	}
}
