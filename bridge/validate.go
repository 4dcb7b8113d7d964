package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Validate checks a FUSE backend end to end (`lighthouse validate`, the
// container health check): it serves a fresh memory store through cfg
// (on a temporary mount point when cfg.MountDir is empty), writes, reads
// back and removes a probe file through the mount, unmounts, and says so
// on w. Degraded mode fails unless allowDegraded.
func Validate(ctx context.Context, cfg Config, allowDegraded bool, w io.Writer) error {
	if cfg.MountDir == "" {
		dir, err := os.MkdirTemp("", "lighthouse-validate-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		// MkdirTemp makes it 0700. A non-root user mounts through the
		// setuid fusermount3, which in a container (all capabilities
		// dropped but SYS_ADMIN) is a root without CAP_DAC_OVERRIDE: it
		// may only mount on a directory that others can search, as the
		// bridge's own mount point is.
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
		cfg.MountDir = dir
	}
	cfg.DataDir = ""
	b, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	probeErr := b.Probe(ctx)
	closeErr := b.Close(ctx)
	probe := "ok"
	if probeErr != nil {
		probe = probeErr.Error()
	}
	fmt.Fprintf(w, "backend %s: active %s, probe: %s\n", cfg.Backend, b.Active(), probe)
	switch {
	case probeErr != nil:
		return probeErr
	case closeErr != nil:
		return fmt.Errorf("unmount: %w", closeErr)
	case b.Active() == Degraded && !allowDegraded:
		return fmt.Errorf("no FUSE backend could mount (degraded)")
	}
	return nil
}

// ValidateURL asks a running bridge at url for its /v1/info and /readyz,
// says what it found on w, and fails unless it is ready.
func ValidateURL(ctx context.Context, url string, w io.Writer) error {
	get := func(path string, v any) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+path, nil)
		if err != nil {
			return 0, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
	}
	var info Info
	if _, err := get("/v1/info", &info); err != nil {
		return fmt.Errorf("bridge at %s: %w", url, err)
	}
	var ready map[string]string
	status, err := get("/readyz", &ready)
	if err != nil {
		return fmt.Errorf("bridge at %s: %w", url, err)
	}
	fmt.Fprintf(w, "bridge %s: role %s, active backend %s, readyz %d %s\n", url, info.Role, info.ActiveBackend, status, ready["error"])
	if status != http.StatusOK {
		return fmt.Errorf("not ready: %s", ready["error"])
	}
	return nil
}
