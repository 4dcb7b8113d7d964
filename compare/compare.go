// Package compare decides whether two results of the same operation are
// the same, by Lighthouse's rules, and renders the difference when not.
//
// # Rules
//
// Exact on errno, data, sizes, modes, link counts, owners, device numbers
// (st_rdev), symlink targets, xattr names and values, and directory entry
// sets (names and types).
// Ignored: inode numbers, atime, ctime, mtime unless the op sequence set it,
// the size of a directory (filesystem-specific), statfs counts unless asked
// for, and each entry's d_off (the library's own cookie: bazil.org/fuse
// gives byte offsets, go-fuse indexes; docs/compatibility.md,
// getdents/d-off).
// Directory order is compared separately: Equal reports it, it never makes
// two results unequal. The order of xattr names is ignored the same way.
//
// # Cost
//
// Equal is hand-written and allocation-free on the common path; go-cmp is
// used only by Diff, once Equal has found a mismatch (go-cmp on a 4 KiB
// result costs milliseconds, Equal a fraction of a microsecond).
package compare

import (
	"slices"
	"sort"

	"github.com/google/go-cmp/cmp"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Rules select what is compared beyond the always-exact fields.
type Rules struct {
	// Mtime compares modification times (the op sequence set them).
	Mtime bool
	// Statfs compares statfs counts, not only the name length (true when
	// both sides serve the same store).
	Statfs bool
	// DirSize compares the st_size of directories.
	DirSize bool
}

// Normalize returns r with everything the rules ignore zeroed (the
// entries' d_off too) and the directory entries sorted, so that equal
// results are deeply equal. It does not modify r.
func Normalize(r fsop.Result, rules Rules) fsop.Result {
	if r.Stat != nil {
		a := *r.Stat
		a.Ino, a.AtimeNs, a.CtimeNs = 0, 0, 0
		if !rules.Mtime {
			a.MtimeNs = 0
		}
		if !rules.DirSize && fsop.DirentType(a.Mode) == "dir" {
			a.Size = 0
		}
		r.Stat = &a
	}
	if r.Statfs != nil && !rules.Statfs {
		r.Statfs = &fsop.StatfsInfo{Namelen: r.Statfs.Namelen}
	}
	if len(r.Entries) > 0 {
		r.Entries = slices.Clone(r.Entries)
		for i := range r.Entries {
			r.Entries[i].Off = 0
		}
		sort.Slice(r.Entries, func(i, j int) bool { return r.Entries[i].Name < r.Entries[j].Name })
	}
	if len(r.Names) > 1 {
		r.Names = slices.Clone(r.Names)
		sort.Strings(r.Names)
	}
	if len(r.Data) == 0 {
		r.Data = nil
	}
	if len(r.Value) == 0 {
		r.Value = nil
	}
	return r
}

// Equal reports whether a and b are the same under rules (Classify finds
// no difference), and whether their directory entries came in the same
// order.
func Equal(a, b *fsop.Result, rules Rules) (equal, inOrder bool) {
	return Classify(a, b, rules) == "", sameOrder(a.Entries, b.Entries)
}

// sameOrder reports whether a and b list the same entries in the same
// order.
func sameOrder(a, b []fsop.Dirent) bool { return slices.EqualFunc(a, b, sameEntry) }

// sameEntry compares two entries by name and type: d_off is the library's
// cookie, not part of the directory.
func sameEntry(a, b fsop.Dirent) bool { return a.Name == b.Name && a.Type == b.Type }

func attrEqual(a, b *fsop.Attr, rules Rules) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Mode != b.Mode || a.Nlink != b.Nlink || a.UID != b.UID || a.GID != b.GID || a.Rdev != b.Rdev {
		return false
	}
	if (a.Size != b.Size) && (rules.DirSize || fsop.DirentType(a.Mode) != "dir") {
		return false
	}
	return !rules.Mtime || a.MtimeNs == b.MtimeNs
}

func statfsEqual(a, b *fsop.StatfsInfo, rules Rules) bool {
	if a == nil || b == nil {
		return a == b
	}
	if rules.Statfs {
		return *a == *b
	}
	return a.Namelen == b.Namelen
}

// sameNames compares xattr name lists as sets: listxattr's order is the
// filesystem's (insertion order on ext4, sorted in the store).
func sameNames(a, b []string) bool {
	if slices.Equal(a, b) {
		return true
	}
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// sameEntrySet compares two listings as multisets of entries (sameEntry),
// in any order.
func sameEntrySet(a, b []fsop.Dirent) bool {
	if sameOrder(a, b) {
		return true
	}
	if len(a) != len(b) {
		return false
	}
	type key struct{ name, typ string }
	count := make(map[key]int, len(a))
	for _, e := range a {
		count[key{e.Name, e.Type}]++
	}
	for _, e := range b {
		k := key{e.Name, e.Type}
		if count[k] == 0 {
			return false
		}
		count[k]--
	}
	return true
}

// Diff renders how want and got differ under rules ("" if they do not),
// in go-cmp's -want +got form.
func Diff(want, got fsop.Result, rules Rules) string {
	return cmp.Diff(Normalize(want, rules), Normalize(got, rules))
}
