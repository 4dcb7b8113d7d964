package order

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Mode is a hierarchical lock mode: intention modes on ancestors, S or
// X on the path itself. Two ops conflict exactly when one touches a path
// that the other touches or contains, and at least one of them writes.
type Mode uint8

const (
	IS Mode = iota // reads below this path
	IX             // writes below this path
	S              // reads this path
	X              // writes this path (or everything below it)
)

// compatible is the classic multi-granularity lock matrix.
var compatible = [4][4]bool{
	IS: {IS: true, IX: true, S: true},
	IX: {IS: true, IX: true},
	S:  {IS: true, S: true},
	X:  {},
}

// combine is the weakest mode that covers both (S+IX is treated as X).
func combine(a, b Mode) Mode {
	switch {
	case a == b:
		return a
	case a == X || b == X:
		return X
	case (a == S && b == IX) || (a == IX && b == S):
		return X
	case a == IS:
		return b
	case b == IS:
		return a
	}
	return X
}

// Key is one lock request: a path (or a handle's own key) and a mode.
type Key struct {
	Name string
	Mode Mode
}

// Root is the mount root; handle keys live outside the path tree.
const Root = "."

// HandleKey is the lock name of an open handle: its open and close
// bracket the I/O made through it.
func HandleKey(h uint64) string { return "\x00h" + strconv.FormatUint(h, 10) }

// KeysOf returns the lock requests of op: the paths it touches with S or
// X, their ancestors with IS or IX, and its handle. handlePath gives the
// path a handle was opened on ("" if unknown). Symlinks are not resolved:
// ordering is by the names the op uses (see docs/ARCHITECTURE.md).
func KeysOf(op *fsop.Op, handlePath string) []Key {
	paths, mode := LockPlan(op, handlePath)
	return BuildKeys(op, paths, mode)
}

// LockPlan returns the paths op touches and whether it reads (S) or writes
// (X) them.
func LockPlan(op *fsop.Op, handlePath string) ([]string, Mode) {
	mode := S
	if op.Kind.Mutates() {
		mode = X
	}
	switch {
	case op.HandleBased():
		return []string{handlePath}, mode
	case op.Kind == fsop.Open && op.Flags&(unix.O_CREAT|unix.O_TRUNC) == 0:
		mode = S
	case op.Kind == fsop.Close || op.Kind == fsop.Fsync:
		mode = S
	}
	return Targets(op, handlePath), mode
}

// BuildKeys turns paths and a mode into lock requests, adding intention
// locks on every ancestor and op's handle key.
func BuildKeys(op *fsop.Op, paths []string, mode Mode) []Key {
	acc := make(map[string]Mode, 4*len(paths)+1)
	add := func(name string, m Mode) {
		if old, ok := acc[name]; ok {
			m = combine(old, m)
		}
		acc[name] = m
	}
	intent := IS
	if mode == X {
		intent = IX
	}
	for _, p := range paths {
		if p == "" {
			continue
		}
		for _, a := range Ancestors(p) {
			add(a, intent)
		}
		add(p, mode)
	}
	if op.Handle != 0 {
		hm := S
		if op.Kind == fsop.Open || op.Kind == fsop.Close {
			hm = X // a handle's open and close bracket its I/O
		}
		add(HandleKey(op.Handle), hm)
	}
	out := make([]Key, 0, len(acc))
	for name, m := range acc {
		out = append(out, Key{name, m})
	}
	return out
}

// Aliases are the hard-link groups: names that may refer to one file. Ops
// on any name of a group are ordered as if on all of them. The table is
// updated at admission, before the op's outcome is known, so it only ever
// grows: link joins two names, rename adds the new names of linked names
// at or below the old one, and nothing is removed (an op that fails must
// not lose a name; an extra name only costs a little concurrency).
type Aliases struct {
	groups map[string]*aliasGroup
}

type aliasGroup struct{ names map[string]struct{} }

// maxGroupNames is the size past which a group is not enumerated: an op
// on one of its names locks the root instead (everything waits for it),
// which is always correct and keeps admission cheap.
const maxGroupNames = 64

// MaxAliasNames bounds the table; past it links are not recorded.
const MaxAliasNames = 100000

func NewAliases() *Aliases { return &Aliases{groups: map[string]*aliasGroup{}} }

// expand adds every alias of paths.
func (a *Aliases) Expand(paths []string) []string {
	var out []string
	for _, p := range paths {
		g := a.groups[p]
		if g == nil {
			continue
		}
		if out == nil {
			out = append([]string{}, paths...)
		}
		if len(g.names) > maxGroupNames {
			out = append(out, Root)
			continue
		}
		for n := range g.names {
			if n != p {
				out = append(out, n)
			}
		}
	}
	if out == nil {
		return paths
	}
	return out
}

func (a *Aliases) add(g *aliasGroup, n string) {
	g.names[n] = struct{}{}
	a.groups[n] = g
}

// link joins p and q in one group (as a hard link does).
func (a *Aliases) Link(p, q string) {
	a.Update(&fsop.Op{Kind: fsop.Link, Path: p, To: q})
}

// update records what op does to the names; false when the table is full.
func (a *Aliases) Update(op *fsop.Op) bool {
	switch op.Kind {
	case fsop.Link:
		if op.Path == op.To {
			return true
		}
		if len(a.groups) >= MaxAliasNames {
			return false
		}
		gp, gq := a.groups[op.Path], a.groups[op.To]
		switch {
		case gp == nil && gq == nil:
			g := &aliasGroup{names: map[string]struct{}{}}
			a.add(g, op.Path)
			a.add(g, op.To)
		case gp == nil:
			a.add(gq, op.Path)
		case gq == nil:
			a.add(gp, op.To)
		case gp != gq:
			for n := range gq.names {
				a.add(gp, n)
			}
		}
	case fsop.Rename:
		from, to := op.Path, op.To
		if from == to || Within(to, from) || from == Root || len(a.groups) == 0 {
			return true // fails or changes no name
		}
		var moved []string
		for n := range a.groups {
			if Within(n, from) {
				moved = append(moved, n)
			}
		}
		for _, n := range moved {
			nn := to + n[len(from):]
			if len(nn) > fsop.MaxPathLen || len(a.groups) >= MaxAliasNames {
				return false
			}
			g := a.groups[n]
			if old := a.groups[nn]; old != nil && old != g {
				for m := range old.names { // nn was linked elsewhere: keep both
					a.add(g, m)
				}
			}
			a.add(g, nn)
		}
	}
	return true
}

// ancestors lists the proper ancestors of a cleaned relative path, the
// root first: "a/b/c" -> ".", "a", "a/b". The root has none.
func Ancestors(p string) []string {
	if p == Root {
		return nil
	}
	out := []string{Root}
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return out
}

// within reports whether path p is q or below q.
func Within(p, q string) bool {
	return q == Root || p == q || strings.HasPrefix(p, q+"/")
}

// targets are the paths an op reads or changes, for the read-back check,
// quarantine and the divergence log's history.
func Targets(op *fsop.Op, handlePath string) []string {
	switch {
	case op.HandleBased():
		if handlePath == "" {
			return nil
		}
		return []string{handlePath}
	case op.Kind == fsop.Rename || op.Kind == fsop.Link:
		return []string{op.Path, op.To}
	case op.Kind == fsop.Statfs:
		return []string{Root}
	}
	return []string{op.Path}
}
