package compare

import "github.com/lighthouse-fs/lighthouse/fsop"

// Judge decides whether the two bridges' answers to one op differ, and
// how: the proxy's one call into the comparator per comparison.
type Judge struct {
	// Rules are the comparison rules; per-comparison additions come in
	// Input.Mtime.
	Rules Rules
	// Allowlist holds the known differences; nil means none.
	Allowlist Allowlist
}

// Answer is one bridge's result, named by its backend (the allowlist's
// "backend").
type Answer struct {
	Backend string
	Result  *fsop.Result
}

// Input is one comparison.
type Input struct {
	// Op is the op whose answers A and B are: for a read-back, the lstat
	// that read the state.
	Op *fsop.Op
	// ReadBack marks answers that are states read back after a mutation
	// that answered the same: any difference is class state.
	ReadBack bool
	// Mtime also compares modification times (the op set them explicitly).
	Mtime bool
	// A is the serving bridge's answer, B the mirror's.
	A, B Answer
}

// Judgment is the comparator's decision.
type Judgment struct {
	// Class is "" when the answers agree, else the class counted in
	// lighthouse_fuse_backend_divergence_total: ClassAllowed when the
	// allowlist explains the difference.
	Class string
	// Base is the class of the difference itself (for a read-back, the
	// class of the state's difference), before the allowlist.
	Base string
	// Allowed is the allowlist's reason, when Class is ClassAllowed.
	Allowed string
	// Diff renders the difference (-A +B), when Class is not "".
	Diff string
	// OrderOnly: the answers agree except for the order of directory
	// entries (reported, never a divergence).
	OrderOnly bool
}

// Divergent reports whether j counts against the candidate: a difference
// the allowlist does not explain.
func (j Judgment) Divergent() bool { return j.Class != "" && j.Class != ClassAllowed }

// Judge compares in's answers. It costs a hand-written comparison when
// they agree; the diff is rendered (with go-cmp) only when they do not.
func (j *Judge) Judge(in Input) Judgment {
	rules := j.Rules
	rules.Mtime = rules.Mtime || in.Mtime
	a, b := in.A.Result, in.B.Result
	base := Classify(a, b, rules)
	if base == "" {
		return Judgment{OrderOnly: in.Op.Kind == fsop.Readdir && !sameOrder(a.Entries, b.Entries)}
	}
	out := Judgment{Class: base, Base: base, Diff: Diff(*a, *b, rules)}
	if in.ReadBack {
		out.Class = ClassState
	}
	if reason, ok := j.Allowlist.Match(in.Op, base, rules, in.A.Backend, a, in.B.Backend, b); ok {
		out.Class, out.Allowed = ClassAllowed, reason
	}
	return out
}
