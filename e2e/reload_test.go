package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAdminTokenAndSIGHUP: with LIGHTHOUSE_ADMIN_TOKEN set the admin API
// answers 401 without it; SIGHUP with a broken rollout config keeps the old
// config (and says so in the log), and with a good one applies it.
func TestAdminTokenAndSIGHUP(t *testing.T) {
	requireE2E(t)
	timed(t)
	root := testRoot(t)
	primary := startBridge(t, root, "bazil", "primary", "127.0.0.1:0")
	shadow := startBridge(t, root, "gofuse", "shadow", "127.0.0.1:0")
	cfg := filepath.Join(root, "rollout.yaml")
	if err := os.WriteFile(cfg, []byte("phase: canary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	childExtraEnv = []string{"LIGHTHOUSE_ADMIN_TOKEN=e2e-token"}
	px := startProxy(t, root, primary, shadow, "--rollout-config", cfg)
	childExtraEnv = nil

	resp, err := http.Get(px.adminURL() + "/admin/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("admin status without the token: %d, want 401", resp.StatusCode)
	}
	status := func() rolloutStatus {
		req, _ := http.NewRequest(http.MethodGet, px.adminURL()+"/admin/status", nil)
		req.Header.Set("Authorization", "Bearer e2e-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("admin status with the token: %d", resp.StatusCode)
		}
		var st rolloutStatus
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if w := status().Rollout.State.Weight; w != 0.10 {
		t.Fatalf("weight %v from the config file, want 0.10", w)
	}

	hup := func() {
		if err := px.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(cfg, []byte("phase: everywhere\nthresholds:\n  p99: soon\n"), 0o644)
	hup()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(px.tail(50), "rollout config rejected, keeping the old one") {
		if time.Now().After(deadline) {
			t.Fatalf("no rejection logged after SIGHUP with a broken config:\n%s", px.tail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if w := status().Rollout.State.Weight; w != 0.10 {
		t.Fatalf("weight %v after a rejected reload, want 0.10 kept", w)
	}

	os.WriteFile(cfg, []byte("phase: progressive\n"), 0o644)
	hup()
	for status().Rollout.State.Weight != 0.5 {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("weight %v after reloading phase: progressive", status().Rollout.State.Weight)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
