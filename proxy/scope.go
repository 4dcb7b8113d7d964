package proxy

import (
	"strings"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/order"
)

// Why a scope is out of step.
const (
	ScopeDiverged = "diverged" // an op or the state it left differed
	ScopeLag      = "lag"      // the mirror fell past its bound: nothing new was mirrored
	ScopeFailed   = "failed"   // an op failed on one bridge: it may have half-run
	ScopeHandle   = "handle"   // a change through a handle the bridge no longer has
	ScopeSkipped  = "skipped"  // an op reached this subtree from a scope that was not mirrored
)

// maxExpected bounds a scope's expected paths: past it the audit cannot
// tell an expected difference from a lost change, and counts none.
const maxExpected = 100000

// A scope is a subtree of one bridge that is out of step with the store of
// record (docs/ARCHITECTURE.md, "Subtree resync"): ops touching it are not
// mirrored to that bridge, not served by it, and not compared, until a
// resync audits the two copies and copies the record's over it. The rest
// of the tree is mirrored and compared as usual.
//
// A narrow scope (one made from the paths of ops) is out of step only on
// those paths: each one's subtree, and its parent directory itself (whose
// entries and link count may differ). Its root is the directory its resync
// copies; ops on other names under root ran on equal states on both
// bridges and are still mirrored and compared. A wide scope (a lag, an
// operator's resync) is out of step on all of root.
type scope struct {
	root   string // a directory ("." is the whole store)
	reason string
	narrow bool
	// subtrees: directories wholly out of step in a narrow scope (a wide
	// scope it absorbed); unlike expected paths, the audit counts what
	// differs there.
	subtrees map[string]struct{}
	// The index of a narrow scope's paths (expected, counted and
	// subtrees): each one, the parent directory of each, and every
	// directory above one, with the sequence number after which ops
	// there ran on states that differ (the least, for a directory).
	noted, parents, ancestors map[string]uint64
	since                     time.Time
	// from: ops admitted after it that touch root ran on a state that
	// differs, or did not run: they are not compared until the barrier.
	from uint64
	// barrier is the resync barrier's sequence number once it is admitted
	// (0 before): ops admitted after it are compared again.
	barrier uint64
	// expected are the paths of ops this bridge did not run: the audit does
	// not count differences there. counted are paths whose difference was
	// counted already, as a divergence of an op. uncertain: ops ran here on
	// a state the audit cannot account for (a resync that failed half-way).
	expected, counted map[string]struct{}
	uncertain         bool
	// pinned are the paths under root whose mtime was set explicitly as
	// of the barrier: the audit compares their mtimes.
	pinned   map[string]struct{}
	attempts int
	next     time.Time // earliest next attempt (backoff after a failure)
	lastErr  string
	// held is why the audit refused to copy: the store of record lost
	// something the other bridge has. The scope stays until an operator
	// resolves it (force: copy the record's anyway).
	held  string
	force bool
	// run is the resync begun last (nil before the first): an operator's
	// call that finds it begun already waits for it to settle.
	run *resyncRun
}

// structural reports whether op can move or remove the paths it names (and
// so a scope below them).
func structural(op *fsop.Op) bool {
	return op.Kind == fsop.Rename || op.Kind == fsop.Rmdir
}

// touches reports whether an op on paths touches sc: for a wide scope a
// path inside root, or (for a structural op) an ancestor of it; for a
// narrow one, a path inside one of its paths, the parent directory of one,
// or (structural) a directory above one.
func (sc *scope) touches(paths []string, structural bool) bool {
	return sc.touchesAfter(paths, structural, ^uint64(0))
}

// touchesAfter is touches for an op admitted as seq: of a narrow scope,
// only the paths noted before seq count (a path noted later was in step
// when the op ran).
func (sc *scope) touchesAfter(paths []string, structural bool, seq uint64) bool {
	if !sc.narrow {
		return touches(sc.root, paths, structural)
	}
	before := func(m map[string]uint64, p string) bool {
		from, ok := m[p]
		return ok && seq > from
	}
	for _, p := range paths {
		if p == "" {
			continue
		}
		if before(sc.parents, p) || (structural && before(sc.ancestors, p)) {
			return true
		}
		for a := p; ; a = parentDir(a) {
			if before(sc.noted, a) {
				return true
			}
			if a == order.Root {
				break
			}
		}
	}
	return false
}

// touches reports whether an op on paths touches the subtree at root: a
// path inside it, or (for a structural op) an ancestor of it.
func touches(root string, paths []string, structural bool) bool {
	for _, p := range paths {
		if p == "" {
			continue
		}
		if order.Within(p, root) || (structural && order.Within(root, p)) {
			return true
		}
	}
	return false
}

// scopeRoot is the smallest directory that holds every path's entry: the
// deepest common ancestor of their parent directories.
func scopeRoot(paths []string) string {
	root := ""
	for _, p := range paths {
		if p == "" {
			continue
		}
		d := parentDir(p)
		if root == "" {
			root = d
			continue
		}
		root = commonAncestor(root, d)
	}
	if root == "" {
		return order.Root
	}
	return root
}

func parentDir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return order.Root
}

// commonAncestor is the deepest directory that is or contains both a and b.
func commonAncestor(a, b string) string {
	for !order.Within(b, a) {
		a = parentDir(a)
	}
	return a
}

// covering returns the first active scope of s that an op on paths
// touches. p.mu is held.
func (s *side) covering(paths []string, structural bool) *scope {
	for _, sc := range s.scopes {
		if sc.touches(paths, structural) {
			return sc
		}
	}
	return nil
}

// inStep reports whether none of paths lies in a scope of s. p.mu is held.
func (s *side) inStep(paths []string, structural bool) bool {
	return s.covering(paths, structural) == nil
}

// stale reports whether the whole bridge is out of step. p.mu is held.
func (s *side) stale() bool {
	for _, sc := range s.scopes {
		if sc.wholeStore() {
			return true
		}
	}
	return false
}

// incomparable returns the scope of s that makes r (admitted before now)
// not comparable, if any: r touches it and ran there on a state not known
// equal to the record's (after the scope's start and before its resync
// barrier). p.mu is held.
func (s *side) incomparable(r *rec) *scope {
	st := structural(&r.op)
	for _, list := range [2][]*scope{s.scopes, s.settled} {
		for _, sc := range list {
			if r.seq > sc.from && (sc.barrier == 0 || r.seq < sc.barrier) && sc.touchesAfter(r.paths, st, r.seq) {
				return sc
			}
		}
	}
	return nil
}

// wholeStore reports whether sc puts the whole store out of step.
func (sc *scope) wholeStore() bool { return sc.root == order.Root && !sc.narrow }

// skipReason is why an op touching sc is not compared.
func (sc *scope) skipReason() string {
	switch {
	case sc.barrier != 0:
		return SkipResync
	case sc.reason == ScopeLag || sc.reason == ScopeFailed:
		return SkipStale
	}
	return SkipQuarantined
}

// addScope marks the subtree holding paths out of step on s, merging it
// with the scopes it overlaps, and wakes the resync loop. Paths go into the
// scope's counted set (their difference was counted) or expected set (s
// did not run the op). A file's other names (hard links, the new name of a
// file renamed under an open handle) are out of step with it: the scope
// holds them too, or an op on another name would compare the drift again.
// p.mu is held.
func (p *Proxy) addScope(s *side, paths []string, reason string, from uint64, counted bool) *scope {
	paths = p.aliases.Expand(paths)
	sc := p.newScope(s, scopeRoot(paths), reason, from, true)
	for _, path := range paths {
		if path != "" {
			sc.note(path, counted, from)
		}
	}
	return sc
}

// addScopeAt marks the whole subtree at root out of step on s (see
// addScope). p.mu is held.
func (p *Proxy) addScopeAt(s *side, root, reason string, from uint64) *scope {
	return p.newScope(s, root, reason, from, false)
}

// newScope returns the scope of s that holds root, made or widened: a
// narrow one if narrow (its caller notes its paths), else wide. p.mu is
// held.
func (p *Proxy) newScope(s *side, root, reason string, from uint64, narrow bool) *scope {
	var sc *scope
	for _, o := range s.scopes {
		if order.Within(root, o.root) {
			sc = o // already inside an active scope
			if !narrow {
				sc.addSubtree(root, from)
			}
			break
		}
	}
	if sc == nil {
		sc = &scope{root: root, reason: reason, since: time.Now(), from: from, narrow: narrow}
		kept := s.scopes[:0]
		for _, o := range s.scopes {
			if order.Within(o.root, root) {
				sc.absorb(o)
			} else {
				kept = append(kept, o)
			}
		}
		s.scopes = append(kept, sc)
		p.log.Info("subtree out of step: not mirrored, served or compared there until its resync",
			"bridge", s.name, "subtree", sc.root, "reason", reason)
	}
	sc.from = min(sc.from, from)
	p.metrics.Stale.WithLabelValues(s.name).Set(float64(len(s.scopes)))
	p.kickResync()
	return sc
}

// widen puts all of sc's root out of step.
func (sc *scope) widen() {
	sc.narrow, sc.subtrees, sc.noted, sc.parents, sc.ancestors = false, nil, nil, nil, nil
}

// addSubtree puts the whole subtree at root (inside sc's) out of step
// from the op after from on.
func (sc *scope) addSubtree(root string, from uint64) {
	switch {
	case !sc.narrow:
	case root == sc.root || len(sc.subtrees) >= maxExpected:
		sc.widen()
	default:
		if sc.subtrees == nil {
			sc.subtrees = map[string]struct{}{}
		}
		sc.subtrees[root] = struct{}{}
		sc.index(root, from)
	}
}

// absorb takes o (a scope inside sc) into sc.
func (sc *scope) absorb(o *scope) {
	if !o.narrow {
		sc.addSubtree(o.root, o.from)
	}
	fromOf := func(path string) uint64 {
		if f, ok := o.noted[path]; ok {
			return f
		}
		return o.from
	}
	for path := range o.subtrees {
		sc.addSubtree(path, fromOf(path))
	}
	sc.from = min(sc.from, o.from)
	sc.since = minTime(sc.since, o.since)
	sc.uncertain = sc.uncertain || o.uncertain
	for path := range o.expected {
		sc.note(path, false, fromOf(path))
	}
	for path := range o.counted {
		sc.note(path, true, fromOf(path))
	}
	if o.held != "" && sc.held == "" {
		sc.held = o.held
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// note records path as counted or expected, out of step from the op after
// from on.
func (sc *scope) note(path string, counted bool, from uint64) {
	m := &sc.expected
	if counted {
		m = &sc.counted
	}
	if *m == nil {
		*m = map[string]struct{}{}
	}
	if len(*m) < maxExpected {
		(*m)[path] = struct{}{}
		sc.index(path, from)
		return
	}
	if !counted {
		sc.uncertain = true
	}
	sc.widen() // the paths out of step are no longer all known
}

// index adds path, out of step from the op after from on, to a narrow
// scope's index.
func (sc *scope) index(path string, from uint64) {
	if !sc.narrow {
		return
	}
	if sc.noted == nil {
		sc.noted, sc.parents, sc.ancestors = map[string]uint64{}, map[string]uint64{}, map[string]uint64{}
	}
	lower := func(m map[string]uint64, k string) bool {
		if f, ok := m[k]; ok && f <= from {
			return false
		}
		m[k] = from
		return true
	}
	lower(sc.noted, path)
	if path == order.Root {
		return
	}
	a := parentDir(path)
	lower(sc.parents, a)
	for lower(sc.ancestors, a) && a != order.Root { // a directory's is the least below it
		a = parentDir(a)
	}
}

// skipInto records that r touched sc and was not mirrored to s: its paths
// inside sc are expected to differ; a path it reached outside sc (a rename
// out of it) is now out of step too. p.mu is held.
func (p *Proxy) skipInto(s *side, sc *scope, r *rec) {
	paths := r.paths
	if r.op.Kind.Mutates() {
		paths = p.aliases.Expand(paths) // a change reaches every name of its file
	}
	var outside []string
	for _, path := range paths {
		switch {
		case path == "":
		case order.Within(path, sc.root):
			sc.note(path, false, r.seq-1)
		case !structural(&r.op) || !order.Within(sc.root, path):
			outside = append(outside, path)
		}
	}
	if structural(&r.op) {
		// Moving or removing an ancestor of sc: its parent is out of step.
		for _, path := range r.paths {
			if path != "" && order.Within(sc.root, path) && path != sc.root {
				outside = append(outside, path)
			}
		}
	}
	if len(outside) > 0 {
		p.addScope(s, outside, ScopeSkipped, r.seq-1, false)
	}
}

// settle forgets resynced scopes whose barrier every op not yet
// accounted for has passed (oldest is the oldest such op's sequence
// number). p.mu is held.
func (s *side) settle(oldest uint64) {
	kept := s.settled[:0]
	for _, sc := range s.settled {
		if sc.barrier == 0 || sc.barrier > oldest {
			kept = append(kept, sc)
		}
	}
	s.settled = kept
}

// mtimeSet reports whether the last change of path set its modification
// time explicitly (utimens): then both bridges must report that time, and
// it is compared. p.mu is held.
func (p *Proxy) mtimeSet(path string) bool { return p.pinned.has(path) }

// pinnedUnder copies the paths under root whose mtime is compared. p.mu
// is held.
func (p *Proxy) pinnedUnder(root string) map[string]struct{} { return p.pinned.within(root) }

// pin records what op does to modification times: utimens sets its
// path's (compared from then on); any other change of a file's content or
// a directory's entries sets them to each bridge's own clock (no longer
// compared), and a rename makes the names under it name other files.
// p.mu is held.
func (p *Proxy) pin(op *fsop.Op, paths []string) {
	if !op.Kind.Mutates() || op.Kind == fsop.Close || op.Kind == fsop.Fsync {
		return
	}
	if op.Kind == fsop.Utimens {
		p.pinned.add(op.Path)
		return
	}
	for _, path := range paths {
		switch path {
		case "":
			continue
		case order.Root:
			// A link group too large to name (or the root itself): forget
			// every pin rather than compare an mtime that moved.
			p.pinned.clear()
		}
		p.pinned.remove(path)
		p.pinned.remove(parentDir(path))
	}
	if op.Kind == fsop.Rename {
		// The names under a renamed directory, at both ends, now name
		// other files or none: an mtime pinned there no longer applies.
		p.pinned.removeWithin(op.Path)
		p.pinned.removeWithin(op.To)
	}
}
