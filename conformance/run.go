// Package conformance is Lighthouse's differential conformance suite: short
// sequences of real filesystem operations, run on several targets (a plain
// directory, the kernel's own semantics and the reference; the store through
// bazil; the store through go-fuse; the store called directly) and compared
// result by result.
//
// # Findings, not failures
//
// A difference between the two FUSE libraries is a finding: the suite
// reports it (Report.Markdown writes docs/compatibility.md). A target that
// differs from the reference where the op is meant to be supported is a
// failure, unless the case is in the expected-differences file with a
// reason. A target can instead be held to another target
// (Target.HeldTo): the front mount is held to bazil, the primary's
// library, since it must answer exactly as the primary's own mount does.
//
// # Processes
//
// The suite only makes syscalls; the mounts it drives must be served by
// another process (see internal/mounttest and `lighthouse mount`).
package conformance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/store"
	"github.com/lighthouse-fs/lighthouse/storeexec"
	"github.com/lighthouse-fs/lighthouse/sysexec"
)

// MountNameMax is the store's name cap on the mounts the suite runs on
// (store.Options.NameMax): above the kernel's FUSE limit, so that each
// library's own limit shows instead of the store's.
const MountNameMax = store.NameMaxLimit

// Executor runs a case's ops on one target. Implementations: sysexec (real
// syscalls on a directory, a plain one or a FUSE mount) and storeexec (the
// store called directly).
type Executor interface {
	// Exec runs one validated op and returns its result. Filesystem errors
	// are in Result.Errno; the returned error is for requests the executor
	// refuses (for example a symlink that leads out of the root).
	Exec(op *fsop.Op) (fsop.Result, error)
	// Close releases what the executor holds (open handles).
	Close() error
}

var (
	_ Executor = (*sysexec.Executor)(nil)
	_ Executor = (*storeexec.Executor)(nil)
)

// Target is one place the cases run.
type Target struct {
	Name string
	// Root is the directory the cases run under; empty for a target that
	// is not a directory (the store called directly), where the syscall
	// cases (Case.Sys) do not apply.
	Root string
	// NewCase returns an executor rooted at a fresh, empty directory for
	// the named case.
	NewCase func(caseName string) (Executor, error)
	// HeldTo names the target whose answers this one must give; empty:
	// the reference. The front mount is held to the primary's library
	// (bazil): it must be indistinguishable from the primary's own mount,
	// whatever that mount gets wrong.
	HeldTo string
	// About says what a held target is, for its section of the report.
	About string
	// Hold, if set, stops the process that serves the target's mount, so
	// that the mount's requests wait in the kernel's queue until release
	// (the interrupt family). Nil for a target no process of ours serves.
	Hold func() (release func() error, err error)
}

// DirTarget runs each case in a new subdirectory of root through real
// syscalls: root is a plain directory or a FUSE mount served elsewhere.
func DirTarget(name, root string) Target {
	return Target{Name: name, Root: root, NewCase: func(caseName string) (Executor, error) {
		dir := filepath.Join(root, strings.ReplaceAll(caseName, "/", "."))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, fmt.Errorf("prepare case %s: %w", caseName, err)
		}
		return sysexec.New(dir, sysexec.Limits{})
	}}
}

// StoreTarget runs each case on a new memory store called directly.
func StoreTarget(name string) Target {
	return Target{Name: name, NewCase: func(string) (Executor, error) {
		return storeexec.New(store.OpenMemory(store.Options{})), nil
	}}
}

// Outcome is one case's results on every target, index-aligned with the
// case's steps (Ops or Sys). A target where the case does not apply has no
// results.
type Outcome struct {
	Case    Case
	Results map[string][]fsop.Result
}

// Run runs every case on every target, in order. An error means a target
// could not run a case at all (not that it answered differently).
func Run(cases []Case, targets []Target, progress func(done, total int)) (*Report, error) {
	rep := &Report{Targets: make([]string, len(targets)), HeldTo: map[string]string{}, About: map[string]string{}}
	for i, t := range targets {
		rep.Targets[i] = t.Name
		if t.HeldTo != "" {
			rep.HeldTo[t.Name], rep.About[t.Name] = t.HeldTo, t.About
		}
	}
	for i, c := range cases {
		out := Outcome{Case: c, Results: map[string][]fsop.Result{}}
		for _, t := range targets {
			res, err := runCase(t, c)
			if err != nil {
				return nil, fmt.Errorf("case %s on %s: %w", c.Name, t.Name, err)
			}
			out.Results[t.Name] = res
		}
		rep.Outcomes = append(rep.Outcomes, out)
		if progress != nil {
			progress(i+1, len(cases))
		}
	}
	return rep, nil
}

// RunOps runs one op sequence on one target (the property test uses it).
func RunOps(t Target, name string, ops []fsop.Op) ([]fsop.Result, error) {
	return runCase(t, Case{Name: name, Ops: ops})
}

func runCase(t Target, c Case) ([]fsop.Result, error) {
	if len(c.Sys) > 0 {
		if t.Root == "" {
			return nil, nil
		}
		return runSys(t, c)
	}
	ex, err := t.NewCase(c.Name)
	if err != nil {
		return nil, err
	}
	defer ex.Close()
	results := make([]fsop.Result, len(c.Ops))
	for i := range c.Ops {
		op := c.Ops[i] // a copy: Validate cleans paths in place
		if err := op.Validate(); err != nil {
			return nil, fmt.Errorf("op %d (%s): %w", i, op.Kind, err)
		}
		res, err := ex.Exec(&op)
		if err != nil {
			if errors.Is(err, fsop.ErrPathEscapes) {
				res = fsop.Result{Errno: "REFUSED"} // the same on every target, whatever the message
			} else {
				return nil, fmt.Errorf("op %d (%s): %w", i, op.Kind, err)
			}
		}
		results[i] = res
	}
	return results, nil
}

// Report holds the outcome of a run.
type Report struct {
	Targets []string
	// HeldTo maps a target held to another than the reference
	// (Target.HeldTo) to that target.
	HeldTo map[string]string
	// About says what each held target is (Target.About).
	About    map[string]string
	Outcomes []Outcome
	// Settings, if set, is the negotiated-settings section (SettingsMarkdown)
	// that Markdown puts after the summary.
	Settings string
}

// Baseline is the target t is held to: the reference unless
// Target.HeldTo said otherwise.
func (r *Report) Baseline(t string) string {
	if b := r.HeldTo[t]; b != "" {
		return b
	}
	return Reference
}

// Mismatch is one step whose result differs between two targets.
type Mismatch struct {
	Index     int
	Op        fsop.Op     // zero for a syscall step
	Call      string      // the step as the report shows it
	Want      fsop.Result // the first target's result
	Got       fsop.Result
	Diff      string
	OrderOnly bool // only the directory order differs
}

// Compare lists the ops of o whose results differ between targets a and b.
// A difference in directory order alone is listed with OrderOnly set.
func (o Outcome) Compare(a, b string) []Mismatch {
	ra, rb := o.Results[a], o.Results[b]
	var out []Mismatch
	for i := 0; i < o.Case.Len() && i < len(ra) && i < len(rb); i++ {
		var op fsop.Op
		if i < len(o.Case.Ops) {
			op = o.Case.Ops[i]
		}
		m := Mismatch{Index: i, Op: op, Call: o.Case.Call(i), Want: ra[i], Got: rb[i]}
		eq, sameOrder := compare.Equal(&ra[i], &rb[i], o.Case.Rules)
		if eq && !sameOrder && op.Kind == fsop.Readdir {
			m.OrderOnly = true
			out = append(out, m)
			continue
		}
		if !eq {
			m.Want, m.Got = compare.Normalize(ra[i], o.Case.Rules), compare.Normalize(rb[i], o.Case.Rules)
			m.Diff = compare.Diff(ra[i], rb[i], o.Case.Rules)
			out = append(out, m)
		}
	}
	return out
}

// Differs reports whether a and b differ on o in more than directory order.
func (o Outcome) Differs(a, b string) bool {
	for _, m := range o.Compare(a, b) {
		if !m.OrderOnly {
			return true
		}
	}
	return false
}
