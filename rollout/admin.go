package rollout

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/lighthouse-fs/lighthouse/internal/httpguard"
)

// EnvAdminToken names the bearer token the admin API requires when set.
const EnvAdminToken = "LIGHTHOUSE_ADMIN_TOKEN"

// PromoteRequest is the body of POST /admin/promote: a phase name or a
// weight, and why.
type PromoteRequest struct {
	Phase  string   `json:"phase,omitempty"`
	Weight *float64 `json:"weight,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

// AdminStatus is GET /admin/status: the rollout and whatever the proxy
// adds, and whether the admin API requires a token (Auth "token") or is
// open to anyone who reaches it (Auth "none").
type AdminStatus struct {
	Rollout Status `json:"rollout"`
	Proxy   any    `json:"proxy,omitempty"`
	Auth    string `json:"admin_auth"`
}

// Register adds /admin/status, /admin/promote, /admin/rollback and
// /admin/alertmanager (Alertmanager's webhook: docs/fleet.md) to mux.
// With a non-empty token every admin request needs
// "Authorization: Bearer <token>" (compared in constant time), else 401.
// A POST must say Content-Type: application/json (else 415: a browser
// cannot send that cross-site without a preflight) and every request
// carry no Origin but the server's own loopback one (else 403).
// proxyStatus, if not nil, is included in the status; more are further
// admin POST endpoints ("POST /admin/resync") behind the same guards.
func (c *Controller) Register(mux *http.ServeMux, token string, proxyStatus func() any, more map[string]http.HandlerFunc) {
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if token != "" {
				got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
				if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
					w.Header().Set("WWW-Authenticate", `Bearer realm="lighthouse admin"`)
					writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token (" + EnvAdminToken + ")"})
					return
				}
			}
			h(w, r)
		}
	}
	for pattern, h := range more {
		mux.HandleFunc(pattern, httpguard.PostJSON(auth(h)))
	}
	authStatus := "none"
	if token != "" {
		authStatus = "token"
	}
	mux.HandleFunc("GET /admin/status", httpguard.SameOrigin(auth(func(w http.ResponseWriter, _ *http.Request) {
		st := AdminStatus{Rollout: c.Status(), Auth: authStatus}
		if proxyStatus != nil {
			st.Proxy = proxyStatus()
		}
		writeJSON(w, http.StatusOK, st)
	})))
	mux.HandleFunc("POST /admin/promote", httpguard.PostJSON(auth(func(w http.ResponseWriter, r *http.Request) {
		var req PromoteRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad promote request: " + err.Error()})
			return
		}
		weight, err := req.target()
		if err == nil {
			err = c.Promote(weight, "operator: "+req.Reason)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, c.Status())
	})))
	mux.HandleFunc("POST /admin/alertmanager", httpguard.PostJSON(auth(c.alertmanagerWebhook)))
	mux.HandleFunc("POST /admin/rollback", httpguard.PostJSON(auth(func(w http.ResponseWriter, r *http.Request) {
		reason := r.URL.Query().Get("reason")
		c.Rollback("operator: " + reason)
		writeJSON(w, http.StatusOK, c.Status())
	})))
}

func (req PromoteRequest) target() (float64, error) {
	switch {
	case req.Weight != nil && req.Phase != "":
		return 0, fmt.Errorf("give a phase or a weight, not both")
	case req.Weight != nil:
		return *req.Weight, nil
	case req.Phase != "":
		w, ok := PhaseWeight[req.Phase]
		if !ok {
			return 0, fmt.Errorf("unknown phase %q (shadow, canary, progressive, full)", req.Phase)
		}
		return w, nil
	}
	return 0, fmt.Errorf("give a phase (shadow, canary, progressive, full) or a weight in [0, 1]")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
