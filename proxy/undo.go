package proxy

import (
	"context"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Undoing a refused rename on the mirror. bazil refuses renameat2 with
// flags (EINVAL, nothing done) where go-fuse performs it: an allowed
// difference whose states differ. The mirror's ops after it on the same
// names would run on a state that differs and could not be compared until
// a resync. When the serving bridge refused the rename and the mirror
// performed it, the mirror's worker still holds the rename's locks there
// (finish keeps them until both bridges have answered, whichever answers
// last, and releases them after the comparison), so no later op on those
// names has run: the proxy undoes the rename on the mirror first, the two
// states are equal again, and nothing is put out of step. The difference
// is still counted (class allowed), with both answers in the log.

// mayUndo reports whether op is a rename that undoRename can undo: one
// with flags, which bazil refuses and go-fuse performs.
func mayUndo(op *fsop.Op) bool {
	return op.Kind == fsop.Rename && op.Flags != 0 && op.Flags&^(fsop.RenameNoReplace|fsop.RenameExchange) == 0
}

// undoable reports whether r, answered by both bridges, is a rename with
// flags that the serving bridge refused and s, the mirror, performed (an
// op not mirrored never ran there). p.mu is not held.
func (p *Proxy) undoable(r *rec, s Side) bool {
	if p.noUndo || !r.mirrored || !mayUndo(&r.op) {
		return false
	}
	sv := r.serving
	if s == sv || r.err[s] != nil || r.res[s].Errno != "" || r.err[sv] != nil || r.res[sv].Errno == "" {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return s != p.record
}

// undoRename runs r's inverse on side s (see undoable): a rename back with
// the same flags (an exchange exchanges back). It reports whether s's state
// is what it was before r.
func (p *Proxy) undoRename(r *rec, s Side) bool {
	inv := r.op
	inv.Path, inv.To = r.op.To, r.op.Path
	ctx, cancel := context.WithTimeout(p.stop, p.cfg.OpTimeout)
	defer cancel()
	res, err := p.sides[s].b.Exec(ctx, &inv)
	ok := err == nil && res.Errno == ""
	if ok {
		r.hist.otherOK.Store(false) // an audit's evidence: the mirror holds no trace of r
	} else {
		p.warnEvery("undo "+p.sides[s].name, time.Minute, "a rename the serving bridge refused could not be undone on the mirror: its subtree is resynced", "bridge", p.sides[s].name, "path", r.op.Path, "to", r.op.To, "err", err, "errno", res.Errno)
	}
	return ok
}
