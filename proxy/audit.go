package proxy

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/order"
	"github.com/lighthouse-fs/lighthouse/rollout"
	"github.com/lighthouse-fs/lighthouse/store"
)

// auditResult is what the audit of one scope found before its resync.
type auditResult struct {
	differences int // paths whose states differ
	expected    int // ... where ops did not run on the audited bridge, or were counted already
	counted     int // ... counted now, as divergences of class audit
	uncounted   int // ... not counted: the scope saw ops the audit cannot account for
	// recordAtFault is set when the evidence says the store of record lost
	// what an op it acknowledged asked for while the other bridge has it:
	// then nothing is copied.
	recordAtFault string
	divergences   []compare.Divergence
}

// diffAt is one path whose two copies differ beyond the allowlist.
type diffAt struct {
	path   string
	a, b   *store.SubtreeEntry
	ra, rb fsop.Result
	j      compare.Judgment
}

// diffCopies compares the record's copy of sc with tgt's, path by path,
// outside the proxy's lock (the serving path takes it): the stored bytes
// first, digests and the judge only where they differ.
func (p *Proxy) diffCopies(sc *scope, rec *side, recSnap []byte, tgt *side, tgtSnap []byte) ([]diffAt, error) {
	recs, err := walk(sc.root, recSnap)
	if err != nil {
		return nil, fmt.Errorf("%s's copy: %w", rec.name, err)
	}
	tgts, err := walk(sc.root, tgtSnap)
	if err != nil {
		return nil, fmt.Errorf("%s's copy: %w", tgt.name, err)
	}
	paths := make([]string, 0, len(recs))
	for path := range recs {
		paths = append(paths, path)
	}
	for path := range tgts {
		if _, ok := recs[path]; !ok {
			paths = append(paths, path)
		}
	}
	sort.Strings(paths)
	var diffs []diffAt
	for _, path := range paths {
		a, b := recs[path], tgts[path]
		_, pin := sc.pinned[path]
		if a != nil && b != nil && a.Same(b) && (!pin || a.MtimeNs == b.MtimeNs) {
			continue
		}
		ra, rb := entryResult(a), entryResult(b)
		lstat := fsop.Op{Kind: fsop.Lstat, Path: path}
		j := p.judge.Judge(compare.Input{Op: &lstat, ReadBack: true, Mtime: pin,
			A: compare.Answer{Backend: rec.name, Result: &ra}, B: compare.Answer{Backend: tgt.name, Result: &rb}})
		if j.Class != "" && j.Class != compare.ClassAllowed {
			diffs = append(diffs, diffAt{path, a, b, ra, rb, j})
		}
	}
	return diffs, nil
}

// audit compares the store of record's copy of sc (recSnap, from rec) with
// tgt's (tgtSnap), path by path, before tgt's is replaced: a difference no
// op explains (a lost write, chmod or utimens) is counted even if no later
// op would have shown it, and both states go to the divergence log. Each
// difference is judged against the last op on its path: the bridge whose
// state does not hold what that acknowledged op asked for is at fault.
func (p *Proxy) audit(sc *scope, rec *side, recSnap []byte, tgt *side, tgtSnap []byte) (auditResult, error) {
	var res auditResult
	diffs, err := p.diffCopies(sc, rec, recSnap, tgt, tgtSnap)
	if err != nil {
		return res, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, df := range diffs {
		path := df.path
		res.differences++
		if p.outOfDate(path) {
			res.expected++ // its ops were sampled out: never mirrored here
			continue
		}
		// Whether counted or not, the evidence decides whether the record's
		// copy may replace the other: never when the record lost what an
		// op it was told to do asked for and the other holds it.
		hist := p.history.lineage(path, sc.barrier)
		fault, last := blameBack(hist, entryView{df.a}, entryView{df.b})
		if last != nil && p.history.ancestorMovedAfter(path, last.seq, sc.barrier) {
			fault, last = "", nil // the op's effect moved with an ancestor
		}
		if _, pin := sc.pinned[path]; last != nil && last.op.Kind == fsop.Utimens && !pin {
			// Its mtime moved since (a change of its content, or of its
			// entries for a directory, through other paths' ops): the time
			// the utimens set tells nothing about who lost what.
			fault, last = "", nil
		}
		if last != nil && len(p.aliases.Expand([]string{path})) > 1 {
			// One of several names of a file: an op through another name
			// (or a handle) changed it too, and this path's ops alone
			// cannot tell which bridge lost what.
			fault, last = "", nil
		}
		if fault == "record" && res.recordAtFault == "" {
			res.recordAtFault = fmt.Sprintf("%s %s: %s holds what %s acknowledged, %s does not", last.op.Kind, path, tgt.name, p.sides[last.served].name, rec.name)
		}
		switch {
		case sc.explains(path, df.a, df.b) || tgt.countedElsewhere(sc, path) || len(p.rbPending[path]) > 0 ||
			(last != nil && last.counted.Load()):
			// Expected, counted already, or about to be: a read-back of an
			// op there has not been judged yet. The op the difference is
			// blamed on may have been counted by its read-back while this
			// resync was under way, its scope already gone.
			res.expected++
			continue
		case sc.uncertain:
			res.uncounted++
			continue
		case len(hist) == 0 && !p.history.ancestorChanged(path, sc.barrier):
			// No op this proxy admitted changed the path: the copies
			// differed before it saw them (the bridges were not in step
			// when it started), or its bounded history forgot the op.
			res.uncounted++
			continue
		}
		res.counted++
		lstat := fsop.Op{Kind: fsop.Lstat, Path: path}
		op := lstat
		if last != nil {
			op = last.op
		} else if len(hist) > 0 {
			op = hist[0].h.op
		}
		ra, rb := df.ra, df.rb
		d := compare.Divergence{Time: time.Now(), Seq: sc.barrier, Op: op, Class: compare.ClassAudit, Readback: &lstat,
			Serving: compare.Outcome{Backend: rec.name, Role: rec.role, Result: &ra},
			Mirror:  compare.Outcome{Backend: tgt.name, Role: tgt.role, Result: &rb},
			Diff:    df.j.Diff, Fault: faultName(fault, rec, tgt),
			Recent: p.history.before(sc.barrier, []string{path})}
		res.divergences = append(res.divergences, d)
	}
	return res, nil
}

// countAudit counts and logs what an audit found (outside p.mu).
func (p *Proxy) countAudit(tgt *side, sc *scope, a auditResult) {
	p.metrics.AuditDifferences.WithLabelValues(tgt.name, "expected").Add(float64(a.expected))
	p.metrics.AuditDifferences.WithLabelValues(tgt.name, "counted").Add(float64(a.counted))
	p.metrics.AuditDifferences.WithLabelValues(tgt.name, "uncounted").Add(float64(a.uncounted))
	p.stats.add(func(s *Stats) {
		s.AuditExpected += int64(a.expected)
		s.AuditUncounted += int64(a.uncounted)
	})
	if a.uncounted > 0 {
		p.log.Warn("resync audit: differences not counted, the subtree saw ops the audit cannot account for",
			"bridge", tgt.name, "subtree", sc.root, "differences", a.uncounted)
	}
	for _, d := range a.divergences {
		p.metrics.Divergence.WithLabelValues(string(d.Op.Kind), d.Class).Inc()
		p.stats.add(func(s *Stats) {
			s.ByClass[d.Class]++
			s.Divergent++
			if len(s.Examples[d.Class]) < examplesPerClass {
				s.Examples[d.Class] = append(s.Examples[d.Class], d)
			}
		})
		p.logs.divergence(d)
		if p.cfg.OnDivergence != nil {
			p.cfg.OnDivergence(d)
		}
		if p.cfg.Observe != nil && d.Fault != p.sides[Primary].name {
			// Evidence against the primary is not held against the candidate.
			p.cfg.Observe(rollout.Observation{Compared: true, Divergent: true})
		}
	}
}

// explains reports whether the difference at path is expected: ops there
// (or on an ancestor: a rename or removal of a directory) did not run on
// the audited bridge, or their difference was counted already. A parent
// directory of such a path may differ in its link count and times only.
func (sc *scope) explains(path string, a, b *store.SubtreeEntry) bool {
	for _, set := range []map[string]struct{}{sc.expected, sc.counted} {
		for p := path; ; p = parentDir(p) {
			if _, ok := set[p]; ok {
				return true
			}
			if p == order.Root {
				break
			}
		}
	}
	if a == nil || b == nil || !a.IsDir() || !b.IsDir() || a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID {
		return false
	}
	for _, set := range []map[string]struct{}{sc.expected, sc.counted} {
		for p := range set {
			if parentDir(p) == path {
				return true
			}
		}
	}
	return false
}

// countedElsewhere reports whether another scope of s counted path's
// difference already (a divergence found while sc's resync was under way).
// p.mu is held.
func (s *side) countedElsewhere(sc *scope, path string) bool {
	for _, list := range [2][]*scope{s.scopes, s.settled} {
		for _, o := range list {
			if o == sc {
				continue
			}
			if _, ok := o.counted[path]; ok {
				return true
			}
		}
	}
	return false
}

// walk indexes a subtree snapshot by path.
func walk(root string, snap []byte) (map[string]*store.SubtreeEntry, error) {
	out := map[string]*store.SubtreeEntry{}
	err := store.WalkSubtree(root, snap, func(e *store.SubtreeEntry) error {
		out[e.Path] = e
		return nil
	})
	return out, err
}

// entryResult is the abstract state of a path as a read-back reports it
// (storeexec.State): lstat, a digest of the content, the symlink target,
// the xattr names and a digest of their values; ENOENT when absent.
func entryResult(e *store.SubtreeEntry) fsop.Result {
	if e == nil {
		return fsop.Result{Errno: "ENOENT"}
	}
	r := fsop.Result{Stat: &fsop.Attr{Mode: e.Mode, Nlink: e.Nlink, UID: e.UID, GID: e.GID, Size: e.Size, MtimeNs: e.MtimeNs, Rdev: e.Rdev},
		Target: e.Target}
	if e.Mode&syscall.S_IFMT == syscall.S_IFREG { // as State: only a regular file has content
		d := e.Digest()
		r.Value, r.N = d[:], e.Size
	}
	if len(e.Xattrs) > 0 {
		names := make([]string, 0, len(e.Xattrs))
		for n := range e.Xattrs {
			names = append(names, n)
		}
		sort.Strings(names)
		h := sha256.New()
		for _, n := range names {
			fmt.Fprintf(h, "%s\x00%d\x00", n, len(e.Xattrs[n]))
			h.Write(e.Xattrs[n])
		}
		r.Names, r.Data = names, h.Sum(nil)
	}
	return r
}

// view is a path's state as evidence reads it: an entry of a subtree
// snapshot (audit) or a read-back's state (live).
type view interface {
	present() bool
	attr() fsop.Attr
	isDir() bool
	target() string
	// xattr returns the value of an xattr, whether it is set, and whether
	// the view can tell.
	xattr(name string) (v []byte, ok, known bool)
	// holdsData reports whether the content from off holds the op's data
	// (h, or the op's full data when the view needs it), if it can tell.
	holdsData(h *histOp, data []byte, off int64) (ok, known bool)
}

// blame says which copy fails what the last acknowledged op on path asked
// for: "record" (a, the store of record's), "other" (b), or "" when the
// op is unknown, was not acknowledged, or both or neither hold it.
func blame(last *histOp, data []byte, path string, a, b view) string {
	if last == nil || !last.acked.Load() {
		return ""
	}
	okA, knownA := holds(last, data, path, a)
	okB, knownB := holds(last, data, path, b)
	switch {
	case !knownA || !knownB || okA == okB:
		return ""
	case okA:
		return "other"
	}
	return "record"
}

// blameBack is blame over a path's history, newest op first (lineage):
// an op both copies hold (or both lack) says nothing, so the one before it
// is asked, until one op tells the copies apart. A rename that gave the
// path its name is followed to the ops on the earlier name. It stops at
// another op that gives the path a new identity (create, link, removal,
// an exchange): what came before happened to another file. It returns the
// deciding op too.
func blameBack(hist []histAt, a, b view) (string, *histOp) {
	appended := false // only appends and attribute changes since: a write_file is a prefix
	for _, at := range hist {
		h := at.h
		if !h.acked.Load() {
			if h.otherOK.Load() {
				return "", nil // it failed on one bridge only: the copies parted there
			}
			continue // failed on both (or not mirrored): changed nothing
		}
		if f := blame(h, nil, at.path, a, b); f != "" {
			return f, h
		}
		if h.op.Kind == fsop.WriteFile && appended {
			okA, okB := prefixHolds(h, a), prefixHolds(h, b)
			switch {
			case okA && !okB:
				return "other", h
			case okB && !okA:
				return "record", h
			}
			return "", nil
		}
		if h.op.Kind == fsop.Append {
			appended = true
		}
		_, knownA := holds(h, nil, at.path, a)
		_, knownB := holds(h, nil, at.path, b)
		if !knownA || !knownB {
			return "", nil
		}
		switch h.op.Kind {
		case fsop.Write, fsop.Pwrite, fsop.Append, fsop.Truncate, fsop.Ftruncate,
			fsop.Chmod, fsop.Chown, fsop.Utimens, fsop.Setxattr, fsop.Removexattr:
		case fsop.Rename:
			if h.op.To != at.path || h.op.Flags&fsop.RenameExchange != 0 {
				return "", nil
			}
		default:
			return "", nil
		}
	}
	return "", nil
}

// prefixHolds reports whether v's content starts with what the write_file
// h wrote (appends came after it).
func prefixHolds(h *histOp, v view) bool {
	if !v.present() || v.isDir() || v.attr().Size < int64(h.n) {
		return false
	}
	ok, known := v.holdsData(h, nil, 0)
	return ok && known
}

// holds reports whether v (the state of path) holds what the acknowledged
// op h asked for, and whether that can be told. data is the op's full
// payload when still at hand (nil in an audit: h's digest serves).
func holds(h *histOp, data []byte, path string, v view) (ok, known bool) {
	op := &h.op
	exists := v.present()
	a := v.attr()
	switch op.Kind {
	case fsop.Mkdir:
		return exists && v.isDir(), path == op.Path
	case fsop.Create:
		return exists && !v.isDir() && v.target() == "", path == op.Path
	case fsop.Symlink:
		return exists && v.target() == op.Target, path == op.Path
	case fsop.Unlink, fsop.Rmdir:
		return !exists, path == op.Path
	case fsop.Link:
		return exists, path == op.To
	case fsop.Rename:
		if op.Flags&fsop.RenameExchange != 0 {
			return exists, true
		}
		return exists == (path == op.To), true
	case fsop.WriteFile:
		if !exists || a.Size != int64(h.n) {
			return false, path == op.Path
		}
		ok, known := v.holdsData(h, data, 0)
		return ok, known && path == op.Path
	case fsop.Write, fsop.Pwrite:
		if !exists || a.Size < op.Offset+int64(h.n) {
			return false, true
		}
		return v.holdsData(h, data, op.Offset)
	case fsop.Append:
		if !exists || a.Size < int64(h.n) {
			return false, true
		}
		return v.holdsData(h, data, -1)
	case fsop.Truncate, fsop.Ftruncate:
		return exists && a.Size == op.Size, true
	case fsop.Chmod:
		return exists && a.Mode&0o7777 == op.Mode&0o7777, path == op.Path
	case fsop.Chown:
		return exists && (op.UID < 0 || int64(a.UID) == op.UID) && (op.GID < 0 || int64(a.GID) == op.GID), path == op.Path
	case fsop.Utimens:
		return exists && a.MtimeNs == op.MtimeNs, path == op.Path
	case fsop.Setxattr:
		val, has, known := v.xattr(op.Name)
		return has && len(val) == h.n && xxhash.Sum64(val) == h.sum, known && path == op.Path
	case fsop.Removexattr:
		_, has, known := v.xattr(op.Name)
		return !has, known && path == op.Path
	}
	return false, false
}

// entryView is an audit's view of a subtree snapshot's entry.
type entryView struct{ e *store.SubtreeEntry }

func (v entryView) present() bool { return v.e != nil }
func (v entryView) isDir() bool   { return v.e != nil && v.e.IsDir() }
func (v entryView) target() string {
	if v.e == nil {
		return ""
	}
	return v.e.Target
}
func (v entryView) attr() fsop.Attr {
	if v.e == nil {
		return fsop.Attr{}
	}
	return fsop.Attr{Mode: v.e.Mode, UID: v.e.UID, GID: v.e.GID, Size: v.e.Size, MtimeNs: v.e.MtimeNs}
}
func (v entryView) xattr(name string) ([]byte, bool, bool) {
	val, ok := xattr(v.e, name)
	return val, ok, true
}
func (v entryView) holdsData(h *histOp, _ []byte, off int64) (bool, bool) {
	if off < 0 {
		off = v.e.Size - int64(h.n) // an append: the content's end, if nothing came after
	}
	return rangeSum(v.e, off, h.n) == h.sum, true
}

// stateView is a read-back's view of a path (storeexec.State: lstat, the
// SHA-256 of the whole content, the xattr names and a digest of values).
type stateView struct{ r *fsop.Result }

func (v stateView) present() bool { return v.r.Errno == "" && v.r.Stat != nil }
func (v stateView) isDir() bool   { return v.present() && fsop.DirentType(v.r.Stat.Mode) == "dir" }
func (v stateView) target() string {
	return v.r.Target
}
func (v stateView) attr() fsop.Attr {
	if v.r.Stat == nil {
		return fsop.Attr{}
	}
	return *v.r.Stat
}
func (v stateView) xattr(name string) ([]byte, bool, bool) {
	for _, n := range v.r.Names {
		if n == name {
			return nil, true, false // set; its value is only in a digest
		}
	}
	return nil, false, true
}
func (v stateView) holdsData(h *histOp, data []byte, off int64) (bool, bool) {
	if data == nil || len(v.r.Value) < sha256.Size {
		return false, false
	}
	sum := sha256.Sum256(data)
	if d, ok := fsop.StateRangeDigest(v.r); ok {
		return string(sum[:]) == string(d), true // the range the op wrote
	}
	if off == 0 && v.r.Stat != nil && v.r.Stat.Size == int64(len(data)) {
		return string(sum[:]) == string(v.r.Value[:sha256.Size]), true // the whole content
	}
	return false, false
}

func xattr(e *store.SubtreeEntry, name string) ([]byte, bool) {
	if e == nil {
		return nil, false
	}
	v, ok := e.Xattrs[name]
	return v, ok
}

// rangeSum is the xxhash of n bytes of e's content from off.
func rangeSum(e *store.SubtreeEntry, off int64, n int) uint64 {
	buf := make([]byte, n)
	got := e.ReadAt(buf, off)
	return xxhash.Sum64(buf[:got])
}

// faultName names the bridge the evidence blames ("" for none).
func faultName(fault string, rec, tgt *side) string {
	switch fault {
	case "record":
		return rec.name
	case "other":
		return tgt.name
	}
	return ""
}
