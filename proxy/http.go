package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/internal/httpguard"
)

// Handler is the proxy's client API: the bridges' own protocol
// (docs/protocol.md), so a client cannot tell the proxy from a bridge. Its
// bodies are bounded like a bridge's (fsop.DefaultMaxRequest each, the
// httpguard budget in all), and only JSON from no foreign Origin is taken.
func (p *Proxy) Handler() http.Handler {
	bodies := httpguard.NewBodies(fsop.DefaultMaxRequest, 0, p.cfg.Registerer)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/ops", bodies.JSON(p.handleOps))
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, p.Status()) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", p.handleReady)
	return mux
}

// AdminHandler serves the admin port: /metrics from gatherer and
// /admin/status.
func (p *Proxy) AdminHandler(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /admin/status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, p.Status()) })
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (p *Proxy) handleOps(w http.ResponseWriter, r *http.Request) {
	exec := func(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
		rc, res, err := p.exec(WithClient(ctx, r.RemoteAddr), op)
		if p.cfg.OnAPIChange != nil && op.Kind.Mutates() && op.Kind != fsop.Close {
			// Even a failed op may have changed something.
			p.cfg.OnAPIChange(rc.paths)
		}
		return res, err
	}
	fsop.ServeOps(w, r, fsop.DefaultMaxRequest, exec, func(err error) bool { return errors.Is(err, ErrRefused) })
}

// handleReady answers 200 when the primary bridge answers a stat of the
// root through the serving path's transport.
func (p *Proxy) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := contextTimeout(2 * time.Second)
	defer cancel()
	op := fsop.Op{Kind: fsop.Stat, Path: "."}
	if _, err := p.sides[Primary].b.Exec(ctx, &op); failed(err) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// ResyncRequest is the body of POST /admin/resync.
type ResyncRequest struct {
	Bridge  string `json:"bridge"`  // backend or role name of the bridge to overwrite
	Subtree string `json:"subtree"` // a directory ("." for the whole store)
	// Force copies a subtree held because its audit found the store of
	// record at fault: the operator chose the record's copy.
	Force bool `json:"force,omitempty"`
}

// HandleResync answers POST /admin/resync (mount it behind the admin
// token): the subtree is audited and copied from the store of record now.
func (p *Proxy) HandleResync(w http.ResponseWriter, r *http.Request) {
	var req ResyncRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Bridge == "" || req.Subtree == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("bad resync request (want {\"bridge\": ..., \"subtree\": ..., \"force\": false}): %v", err)})
		return
	}
	if err := p.ResyncSubtree(req.Bridge, req.Subtree, req.Force); err != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, p.Status())
}

// BridgeStatus is one bridge as the proxy sees it.
type BridgeStatus struct {
	Backend string `json:"backend"`
	Role    string `json:"role"`
	// Record: this bridge is the store of record (never overwritten by a
	// resync; it serves what the other cannot).
	Record bool `json:"record"`
	// Stale: the whole bridge is out of step; StaleReason says why.
	Stale       bool    `json:"stale"`
	StaleReason string  `json:"stale_reason,omitempty"`
	QueueDepth  int     `json:"queue_depth"`
	QueueBytes  int64   `json:"queue_bytes"`
	LagSeconds  float64 `json:"lag_seconds"`
	// Quarantined is the number of subtrees out of step (OutOfStep).
	Quarantined int           `json:"quarantined_paths"`
	OutOfStep   []ScopeStatus `json:"out_of_step,omitempty"`
}

// ScopeStatus is one subtree out of step on a bridge: why, since when,
// and what will bring it back.
type ScopeStatus struct {
	Subtree string `json:"subtree"`
	// Names is how many names under Subtree are out of step when only
	// they are (a narrow scope); 0 when all of Subtree is.
	Names  int       `json:"names,omitempty"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// Fix says what brings the subtree back in step (a resync from the
	// store of record, when; or an operator, when the audit held it).
	Fix       string `json:"fix"`
	LastError string `json:"last_error,omitempty"`
	Attempts  int    `json:"attempts,omitempty"`
	Held      string `json:"held,omitempty"`
}

// Status is what /v1/info and /admin/status answer.
type Status struct {
	Ops      int64   `json:"ops"`
	Compared int64   `json:"compared"`
	Pending  int64   `json:"pending"`  // served, outcome not known yet
	Coverage float64 `json:"coverage"` // compared / (ops - pending - sampled out)
	// MirrorShare is the share of the tree mirrored to the bridge that is
	// not the store of record (1: all of it); MirrorShareAuto: it adapts.
	MirrorShare     float64          `json:"mirror_share"`
	MirrorShareAuto bool             `json:"mirror_share_auto,omitempty"`
	Divergent       int64            `json:"divergent"`
	ByClass         map[string]int64 `json:"divergences_by_class"`
	Skipped         map[string]int64 `json:"skipped"`
	Resyncs         int64            `json:"resyncs"`
	Fallbacks       int64            `json:"fallbacks,omitempty"` // served ops the store of record answered in place of a late bridge
	Readbacks       int64            `json:"readbacks"`
	Bridges         []BridgeStatus   `json:"bridges"`
}

// Status reports the proxy's counters and both bridges' mirror state.
func (p *Proxy) Status() Status {
	v := p.Stats()
	st := Status{Ops: v.Ops, Compared: v.Compared, Pending: v.Pending, Coverage: v.Coverage(), Divergent: v.Divergent, ByClass: v.ByClass, Skipped: v.Skipped, Resyncs: v.Resyncs, Fallbacks: v.Fallbacks, Readbacks: v.Readbacks}
	p.mu.Lock()
	defer p.mu.Unlock()
	st.MirrorShare, st.MirrorShareAuto = p.share.share, p.share.auto
	for _, s := range p.sides {
		b := BridgeStatus{Backend: s.name, Role: s.role, Record: s.idx == p.record, Stale: s.stale(), QueueDepth: s.pending.Len(),
			QueueBytes: s.bytes, Quarantined: len(s.scopes)}
		for _, sc := range s.scopes {
			b.OutOfStep = append(b.OutOfStep, sc.status(p.sides[s.idx.other()].name))
			if sc.wholeStore() {
				b.StaleReason = sc.reason
				if sc.lastErr != "" {
					b.StaleReason += ": " + sc.lastErr
				}
			}
		}
		if f := s.pending.Front(); f != nil {
			b.LagSeconds = time.Since(f.Value.(*rec).admitted).Seconds()
		}
		st.Bridges = append(st.Bridges, b)
	}
	return st
}

// status describes sc for people; record names the store of record.
func (sc *scope) status(record string) ScopeStatus {
	out := ScopeStatus{Subtree: sc.root, Reason: sc.reason, Since: sc.since, LastError: sc.lastErr, Attempts: sc.attempts, Held: sc.held}
	if sc.narrow {
		out.Names = len(sc.expected) + len(sc.counted)
	}
	switch {
	case sc.held != "":
		out.Fix = "an operator: the audit found the store of record (" + record + ") at fault, so nothing is copied; check both copies, then resync (POST /admin/resync)"
	case time.Now().Before(sc.next):
		out.Fix = fmt.Sprintf("a resync from %s, retried in %s", record, time.Until(sc.next).Round(time.Second))
	default:
		out.Fix = "a resync from " + record + ", now"
	}
	return out
}
