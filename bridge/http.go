package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/internal/httpguard"
)

// probeName is the file /readyz writes, reads back and removes through the
// mount. No client op may name it at any depth, nor make a symlink whose
// target names it, so no path (a symlink to "." included) can reach the
// probe's file; every listing hides it, so the probe never shows up as a
// difference between two bridges.
const probeName = ".lighthouse-readyz"

// isReserved says whether op names the probe's file: as a component of its
// path or destination, or of a symlink's target (a symlink "p" to
// ".lighthouse-readyz" would let create "p" write the probe's file).
func isReserved(op *fsop.Op) bool {
	names := func(p string) bool {
		return slices.Contains(strings.Split(p, "/"), probeName)
	}
	return names(op.Path) || names(op.To) || (op.Kind == fsop.Symlink && names(op.Target))
}

func hideProbe(op *fsop.Op, res *fsop.Result) {
	if op.Kind == fsop.Readdir {
		res.Entries = slices.DeleteFunc(res.Entries, func(e fsop.Dirent) bool { return e.Name == probeName })
	}
}

// Handler returns the bridge's HTTP API: /v1/ops, /v1/info, /v1/snapshot,
// /healthz, /readyz and /metrics (from gatherer, if not nil).
func (b *Bridge) Handler(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/ops", b.bodies.JSON(b.handleOps))
	mux.HandleFunc("GET /v1/info", b.handleInfo)
	mux.HandleFunc("GET /v1/snapshot", b.handleGetSnapshot)
	mux.HandleFunc("PUT /v1/snapshot", httpguard.SameOrigin(b.handlePutSnapshot))
	mux.HandleFunc("GET /v1/state", b.handleState)
	mux.HandleFunc("GET /v1/frames", b.handleFrames) // frames.go: the proxy's transport
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", b.handleReady)
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func (b *Bridge) handleOps(w http.ResponseWriter, r *http.Request) {
	fsop.ServeOps(w, r, b.cfg.MaxBody, b.Exec, func(err error) bool { return errors.Is(err, errRefused) })
}

// Info is what GET /v1/info answers.
type Info = fsop.BridgeInfo

func (b *Bridge) Info() Info {
	return Info{ActiveBackend: b.active, Backend: b.cfg.Backend, Fallback: b.cfg.Fallback, Role: b.cfg.Role,
		Mount: b.cfg.MountDir, Degraded: b.active == Degraded, Inodes: b.st.Inodes(), Generation: b.st.Generation(),
		UptimeSeconds: int64(time.Since(b.started).Seconds()), PID: os.Getpid(), Nice: b.currentNice(),
		RecoveryCutBytes: b.st.Recovery().CutBytes, DataLoss: b.dataLoss()}
}

// handleState answers GET /v1/state?path=P[&off=O&len=N] with State(P)
// (and the digest of that range) as a result object (docs/protocol.md).
func (b *Bridge) handleState(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("path") || strings.ContainsRune(q.Get("path"), 0) {
		writeError(w, http.StatusBadRequest, errors.New("missing query parameter path (GET /v1/state?path=dir/file)"))
		return
	}
	var off, n int64
	if q.Has("len") {
		var err1, err2 error
		off, err1 = strconv.ParseInt(q.Get("off"), 10, 64)
		n, err2 = strconv.ParseInt(q.Get("len"), 10, 64)
		if err1 != nil || err2 != nil || n < 0 {
			writeError(w, http.StatusBadRequest, errors.New("off and len must be integers, len not negative (off < 0: the last len bytes)"))
			return
		}
	}
	res, err := b.State(fsop.StateArg(q.Get("path"), off, n))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fsop.EncodeResults(w, []fsop.Result{res}, false)
}

func (b *Bridge) handleInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, b.Info())
}

// Probe writes, reads back and removes a file through the mount (or the
// store, degraded) and reports what went wrong, if anything. Whatever a
// failed probe, a crash or an older version left under the probe's name is
// removed first, so no leftover keeps a bridge not ready.
func (b *Bridge) Probe(ctx context.Context) error {
	payload := []byte(fmt.Sprintf("readyz %d", time.Now().UnixNano()))
	steps := []fsop.Op{
		{Kind: fsop.WriteFile, Path: probeName, Data: payload},
		{Kind: fsop.ReadFile, Path: probeName},
		{Kind: fsop.Unlink, Path: probeName},
	}
	b.rlockExec()
	defer b.opsMu.RUnlock()
	if err := b.clearProbe(ctx, probeName, 0); err != nil {
		return fmt.Errorf("remove what is left at %s: %w", probeName, err)
	}
	for i := range steps {
		res, err := b.execLocked(ctx, &steps[i], true)
		if err != nil {
			return fmt.Errorf("%s %s: %w", steps[i].Kind, probeName, err)
		}
		if res.Errno != "" {
			return fmt.Errorf("%s %s: %s", steps[i].Kind, probeName, res.Errno)
		}
		if steps[i].Kind == fsop.ReadFile && string(res.Data) != string(payload) {
			return fmt.Errorf("read back %q, wrote %q", res.Data, payload)
		}
	}
	return nil
}

// clearProbe removes path and, if it is a directory, everything below it,
// through the mount; a missing path is fine. opsMu is held.
func (b *Bridge) clearProbe(ctx context.Context, path string, depth int) error {
	run := func(op fsop.Op) (fsop.Result, error) {
		res, err := b.execLocked(ctx, &op, true)
		if err == nil && res.Errno != "" && res.Errno != "ENOENT" {
			err = fmt.Errorf("%s %s: %s", op.Kind, op.Path, res.Errno)
		}
		return res, err
	}
	st, err := run(fsop.Op{Kind: fsop.Lstat, Path: path})
	if err != nil || st.Stat == nil {
		return err
	}
	if st.Stat.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		_, err = run(fsop.Op{Kind: fsop.Unlink, Path: path})
		return err
	}
	if depth > 64 {
		return fmt.Errorf("%s: more than 64 directories deep", path)
	}
	dir, err := run(fsop.Op{Kind: fsop.Readdir, Path: path})
	if err != nil {
		return err
	}
	for _, e := range dir.Entries {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		if err := b.clearProbe(ctx, path+"/"+e.Name, depth+1); err != nil {
			return err
		}
	}
	_, err = run(fsop.Op{Kind: fsop.Rmdir, Path: path})
	return err
}

func (b *Bridge) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	err := b.dataLossErr()
	if err == nil {
		err = b.Probe(ctx)
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error(), "active_backend": b.active})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "active_backend": b.active})
}
