package compare

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Divergence classes: the class label of lighthouse_fuse_backend_divergence_total.
const (
	ClassErrno       = "errno"        // different errno (or one side failed)
	ClassData        = "data"         // file data, xattr values or names, symlink target, byte counts
	ClassAttr        = "attr"         // stat or statfs fields
	ClassEntries     = "entries"      // directory entry sets
	ClassState       = "state"        // same answer, different state afterwards (read-back)
	ClassShadowError = "shadow_error" // the mirror bridge could not run the op
	ClassAllowed     = "allowed"      // a known difference from the allowlist
	// ClassAudit: a resync's audit found two copies of a path different
	// where no op explains it (a lost write, chmod or utimens that no
	// later op showed).
	ClassAudit = "audit"
)

// Classes lists every class, for dashboards and tests.
var Classes = []string{ClassErrno, ClassData, ClassAttr, ClassEntries, ClassState, ClassShadowError, ClassAllowed, ClassAudit}

// Classify names the first way a and b differ under rules, or "" if they
// are the same (directory order aside).
func Classify(a, b *fsop.Result, rules Rules) string {
	switch {
	case a.Errno != b.Errno:
		return ClassErrno
	case a.N != b.N || a.Size != b.Size || a.Target != b.Target || !bytes.Equal(a.Data, b.Data) ||
		!bytes.Equal(a.Value, b.Value) || !sameNames(a.Names, b.Names):
		return ClassData
	case !attrEqual(a.Stat, b.Stat, rules) || !statfsEqual(a.Statfs, b.Statfs, rules):
		return ClassAttr
	case !sameEntrySet(a.Entries, b.Entries):
		return ClassEntries
	}
	return ""
}

// Allowed is one known, accepted difference between two backends.
type Allowed struct {
	// Op and Class select the divergence ("rename", "errno").
	Op    string `yaml:"op"`
	Class string `yaml:"class"`
	// Backend is the library whose answer is the odd one; Errno, if set,
	// is that answer's errno.
	Backend string `yaml:"backend"`
	Errno   string `yaml:"errno,omitempty"`
	// ModeBits, for class attr, is the only st_mode bits allowed to differ
	// (octal string, e.g. "1000" for the sticky bit).
	ModeBits string `yaml:"mode_bits,omitempty"`
	Reason   string `yaml:"reason"`
}

// Allowlist is the known differences, each with a reason.
type Allowlist []Allowed

//go:embed allowlist.yaml
var defaultAllowlist []byte

// DefaultAllowlist is the known differences between bazil and go-fuse that
// ship with Lighthouse (compare/allowlist.yaml).
func DefaultAllowlist() Allowlist {
	l, err := ParseAllowlist(defaultAllowlist)
	if err != nil {
		panic("compare/allowlist.yaml: " + err.Error()) // caught by the tests
	}
	return l
}

// LoadAllowlist reads an allowlist YAML file (a list of Allowed). Every
// entry needs op, class, backend and reason.
func LoadAllowlist(path string) (Allowlist, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseAllowlist(b)
}

// ParseAllowlist parses an allowlist document.
func ParseAllowlist(b []byte) (Allowlist, error) {
	var list Allowlist
	if err := yaml.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("parse allowlist: %w", err)
	}
	for i, a := range list {
		if a.Op == "" || a.Class == "" || a.Backend == "" || strings.TrimSpace(a.Reason) == "" {
			return nil, fmt.Errorf("allowlist entry %d: needs op, class, backend and reason", i+1)
		}
		if !fsop.Kind(a.Op).Known() {
			return nil, fmt.Errorf("allowlist entry %d: unknown op %q", i+1, a.Op)
		}
		if !slices.Contains(Classes, a.Class) {
			return nil, fmt.Errorf("allowlist entry %d: unknown class %q", i+1, a.Class)
		}
		if a.ModeBits != "" {
			var bits uint32
			if _, err := fmt.Sscanf(a.ModeBits, "%o", &bits); err != nil {
				return nil, fmt.Errorf("allowlist entry %d: mode_bits %q is not octal", i+1, a.ModeBits)
			}
		}
	}
	return list, nil
}

// Match returns the reason if the difference between the results of op on
// two backends (class already known, under rules) is allowlisted. An entry
// with mode_bits allows only those bits to differ: every other attribute
// must be equal under the same rules.
func (l Allowlist) Match(op *fsop.Op, class string, rules Rules, backendA string, a *fsop.Result, backendB string, b *fsop.Result) (string, bool) {
	for _, e := range l {
		if e.Op != string(op.Kind) || e.Class != class {
			continue
		}
		var odd *fsop.Result
		switch e.Backend {
		case backendA:
			odd = a
		case backendB:
			odd = b
		default:
			continue
		}
		if e.Errno != "" && odd.Errno != e.Errno {
			continue
		}
		if e.ModeBits != "" {
			var bits uint32
			fmt.Sscanf(e.ModeBits, "%o", &bits)
			if a.Stat == nil || b.Stat == nil || (a.Stat.Mode^b.Stat.Mode)&^bits != 0 {
				continue
			}
			sa, sb := *a.Stat, *b.Stat
			sa.Mode, sb.Mode = 0, 0
			if !attrEqual(&sa, &sb, rules) {
				continue
			}
		}
		return e.Reason, true
	}
	return "", false
}
