package bridge

// The copy mechanism of a resync: GET and PUT /v1/snapshot, of the whole
// store or, with ?path=P, of one directory's subtree (docs/protocol.md).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/store"
	"github.com/lighthouse-fs/lighthouse/storeexec"
)

// Error codes of the snapshot endpoints, in the "code" field of an error
// body, so a client can tell them apart without parsing the message.
const (
	CodeCrossLink   = "cross_link"   // 409: a hard link crosses the subtree; widen it
	CodeNotFound    = "ENOENT"       // 404: the path does not exist
	CodeNotDir      = "ENOTDIR"      // 400: the path is not a directory
	CodeBadPath     = "EINVAL"       // 400: the path is not a clean relative path
	CodeBadSnapshot = "bad_snapshot" // 400: the body is not a valid snapshot of that kind
)

// snapshotError answers err of a snapshot endpoint with its status and
// code.
func snapshotError(w http.ResponseWriter, err error) {
	body := map[string]string{"error": err.Error()}
	status := http.StatusInternalServerError
	var cross *store.CrossLinkError
	switch {
	case errors.As(err, &cross):
		status, body["code"], body["inside"], body["outside"] = http.StatusConflict, CodeCrossLink, cross.Inside, cross.Outside
	case errors.Is(err, syscall.ENOENT):
		status, body["code"] = http.StatusNotFound, CodeNotFound
	case errors.Is(err, syscall.ENOTDIR):
		status, body["code"] = http.StatusBadRequest, CodeNotDir
	case errors.Is(err, syscall.EINVAL):
		status, body["code"] = http.StatusBadRequest, CodeBadPath
	case errors.Is(err, store.ErrBadSnapshot):
		status, body["code"] = http.StatusBadRequest, CodeBadSnapshot
	}
	writeJSON(w, status, body)
}

func (b *Bridge) handleGetSnapshot(w http.ResponseWriter, r *http.Request) {
	var snap []byte
	if q := r.URL.Query(); q.Has("path") {
		var err error
		if snap, err = b.SnapshotSubtree(q.Get("path")); err != nil {
			snapshotError(w, err)
			return
		}
	} else {
		snap = b.st.Snapshot()
	}
	sum, _ := store.Checksum(snap)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(fsop.ChecksumHeader, fmt.Sprintf("%08x", sum))
	w.Write(snap)
}

func (b *Bridge) handlePutSnapshot(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, b.cfg.MaxSnapshot)
	snap, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("snapshot larger than %d bytes", b.cfg.MaxSnapshot))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Errorf("read snapshot: %w", err))
		return
	}
	if want := r.Header.Get(fsop.ChecksumHeader); want != "" {
		sum, err := store.Checksum(snap)
		if err != nil || fmt.Sprintf("%08x", sum) != strings.ToLower(want) {
			writeError(w, http.StatusBadRequest, fmt.Errorf("snapshot checksum %08x does not match %s %s", sum, fsop.ChecksumHeader, want))
			return
		}
	}
	q := r.URL.Query()
	if !q.Has("path") {
		if err := b.Restore(r.Context(), snap); err != nil {
			snapshotError(w, err)
			return
		}
		sum, _ := store.Checksum(b.st.Snapshot())
		writeJSON(w, http.StatusOK, map[string]any{"restored": true, "inodes": b.st.Inodes(), "checksum": fmt.Sprintf("%08x", sum)})
		return
	}
	path := q.Get("path")
	if err := b.RestoreSubtree(r.Context(), path, snap); err != nil {
		snapshotError(w, err)
		return
	}
	resp := map[string]any{"restored": true, "path": path, "inodes": b.st.Inodes()}
	if now, err := b.st.SnapshotSubtree(path); err == nil {
		sum, _ := store.Checksum(now)
		resp["checksum"] = fmt.Sprintf("%08x", sum)
	}
	writeJSON(w, http.StatusOK, resp)
}

// SnapshotSubtree is store.SnapshotSubtree of path, taken like an op (not
// while the mount or the executor is being swapped).
func (b *Bridge) SnapshotSubtree(path string) ([]byte, error) {
	b.opsMu.RLock()
	defer b.opsMu.RUnlock()
	return b.st.SnapshotSubtree(path)
}

// kernelCaches reports whether the mount lets the kernel cache names,
// attributes or file data: then a change behind its back could be served
// stale.
func (b *Bridge) kernelCaches() bool {
	m := b.cfg.Mount
	return b.active != Degraded && (m.EntryTimeout > 0 || m.AttrTimeout > 0 || m.NegativeTimeout > 0 || m.KeepCache)
}

// RestoreSubtree replaces the directory at path with the subtree snapshot
// snap (store.RestoreSubtree). The caller guarantees that no op inside the
// subtree is in flight and reopens its own handles there; ops elsewhere go
// on, and the mount stays up: with the default kernel timeouts of 0 the
// kernel caches nothing and looks every name up again. A bridge whose
// mount caches (entry, attribute or negative timeout, or keep-cache) takes
// the whole-store path instead: drain every op, close every handle,
// unmount, restore, remount.
func (b *Bridge) RestoreSubtree(ctx context.Context, path string, snap []byte) error {
	if b.kernelCaches() {
		return b.restoreRemounting(ctx, func() error { return b.st.RestoreSubtree(path, snap) }, b.metrics.SubtreeRestores)
	}
	b.rlockExec()
	defer b.opsMu.RUnlock()
	if err := b.st.RestoreSubtree(path, snap); err != nil {
		return err
	}
	b.metrics.SubtreeRestores.Inc()
	return nil
}

// Restore replaces the store with snap atomically. Running ops finish
// first; open handles are closed; the mount is remounted so that neither
// the kernel nor the library keeps anything of the old tree.
func (b *Bridge) Restore(ctx context.Context, snap []byte) error {
	return b.restoreRemounting(ctx, func() error { return b.st.Restore(snap) }, b.metrics.Restores)
}

// restoreRemounting runs restore with every op drained, every handle
// closed and the mount down, then remounts whatever happened (a refused
// snapshot leaves the old tree) and counts a success on done.
func (b *Bridge) restoreRemounting(ctx context.Context, restore func() error, done interface{ Inc() }) error {
	b.opsMu.Lock()
	defer b.opsMu.Unlock()
	if b.exec != nil {
		// Until the attach below, the executor holds the ops of the frames
		// connections it serves; resume lets them fail instead if the
		// restore ends before (an attach that worked makes it a no-op).
		defer b.exec.control(ctx, ctlResume, "")
		if err := b.exec.control(ctx, ctlCloseAll, ""); err != nil {
			return fmt.Errorf("close handles before restore: %w", err)
		}
	}
	if b.direct != nil {
		b.direct.Close()
	}
	b.hmu.Lock()
	clear(b.handles)
	b.metrics.Handles.Set(0)
	b.hmu.Unlock()
	if b.unmount != nil {
		if err := b.unmount(); err != nil {
			return fmt.Errorf("unmount before restore: %w", err)
		}
		<-b.done
		b.unmount = nil
	}
	restoreErr := restore()
	if b.active != Degraded {
		if err := b.mount(b.active); err != nil {
			return errors.Join(restoreErr, fmt.Errorf("remount %s after restore: %w", b.active, err))
		}
		if err := b.exec.control(ctx, ctlAttach, b.cfg.MountDir); err != nil {
			return errors.Join(restoreErr, fmt.Errorf("attach executor after restore: %w", err))
		}
	} else {
		b.direct = storeexec.New(b.st)
	}
	if restoreErr == nil {
		done.Inc()
	}
	return restoreErr
}
