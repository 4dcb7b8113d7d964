package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// rolloutStatus is the part of GET /admin/status this test reads.
type rolloutStatus struct {
	Rollout struct {
		State struct {
			Weight     float64 `json:"weight"`
			Phase      string  `json:"phase"`
			RolledBack bool    `json:"rolled_back"`
			Decision   *struct {
				Action  string `json:"action"`
				Trigger string `json:"trigger"`
				Reason  string `json:"reason"`
			} `json:"last_decision"`
		} `json:"state"`
	} `json:"rollout"`
}

func adminStatus(t *testing.T, p *proxyProc) rolloutStatus {
	t.Helper()
	resp, err := http.Get(p.adminURL() + "/admin/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st rolloutStatus
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("admin status %s: %v", b, err)
	}
	return st
}

// TestCanaryRollsBackOnDivergence: real bridges, the canary phase (10% of
// paths served by go-fuse, measured from the metrics), a go-fuse bridge
// that corrupts 1% of its read results, an automatic rollback to weight 0
// by the divergence trigger, kept across a proxy restart.
func TestCanaryRollsBackOnDivergence(t *testing.T) {
	requireE2E(t)
	timed(t)
	root := testRoot(t)
	primary := startBridge(t, root, "bazil", "primary", "127.0.0.1:0")
	shadow := startBridgeArgs(t, root, "gofuse", "shadow", "127.0.0.1:0", "--inject-divergence", "0.01")
	state := filepath.Join(root, "rollout-state.json")
	px := startProxy(t, root, primary, shadow, "--phase", "canary", "--state-file", state)
	if st := adminStatus(t, px); st.Rollout.State.Weight != 0.10 {
		t.Fatalf("canary weight %v", st.Rollout.State.Weight)
	}
	c := newAPIClient(px.url(), 4)
	defer c.close()
	const files = 400
	for i := 0; i < files; i++ {
		c.must(t, fsop.Op{Kind: fsop.WriteFile, Path: fmt.Sprintf("f%03d", i), Data: []byte(fmt.Sprintf("content of file %d", i))})
	}
	served := func() (gofuse, all float64) {
		m := scrape(t, px.adminURL()+"/metrics")
		return m.Sum("lighthouse_proxy_operations_total", map[string]string{"served_by": "gofuse"}),
			m.Sum("lighthouse_proxy_operations_total", nil)
	}
	g, a := served()
	share := g / a
	t.Logf("canary: %.0f of %.0f ops (%.1f%%) served by go-fuse", g, a, 100*share)
	if share < 0.05 || share > 0.15 {
		t.Fatalf("canary served %.1f%% of ops by go-fuse, want about 10%%", 100*share)
	}

	reads := 0
	for ; reads < 40000; reads++ {
		c.must(t, fsop.Op{Kind: fsop.ReadFile, Path: fmt.Sprintf("f%03d", reads%files)})
		if reads%250 == 0 && adminStatus(t, px).Rollout.State.Weight == 0 {
			break
		}
	}
	st := adminStatus(t, px)
	if st.Rollout.State.Weight != 0 || !st.Rollout.State.RolledBack || st.Rollout.State.Decision == nil ||
		st.Rollout.State.Decision.Trigger != "divergence" {
		t.Fatalf("no divergence rollback after %d reads: %+v", reads, st.Rollout.State)
	}
	t.Logf("rolled back after %d reads: %s", reads, st.Rollout.State.Decision.Reason)
	m := scrape(t, px.adminURL()+"/metrics")
	if n := m.Sum("lighthouse_rollout_rollbacks_total", map[string]string{"trigger": "divergence"}); n != 1 {
		t.Fatalf("lighthouse_rollout_rollbacks_total{trigger=divergence} = %v", n)
	}
	if w := m.Sum("lighthouse_rollout_candidate_weight", nil); w != 0 {
		t.Fatalf("weight gauge %v after rollback", w)
	}
	g0, _ := served()
	for i := 0; i < 200; i++ {
		c.must(t, fsop.Op{Kind: fsop.Stat, Path: fmt.Sprintf("f%03d", i)})
	}
	if g1, _ := served(); g1 != g0 {
		t.Fatalf("go-fuse served %v ops after the rollback", g1-g0)
	}

	// A restart (asking for canary again) keeps the rollback.
	px.stop()
	px = startProxy(t, root, primary, shadow, "--phase", "canary", "--state-file", state)
	st = adminStatus(t, px)
	if st.Rollout.State.Weight != 0 || !st.Rollout.State.RolledBack {
		t.Fatalf("after a proxy restart: %+v", st.Rollout.State)
	}
}

// startBridgeArgs is startBridge with extra flags for the bridge.
func startBridgeArgs(t *testing.T, root, backend, role, listen string, extra ...string) *bridgeProc {
	t.Helper()
	b := &bridgeProc{backend: backend, role: role, mnt: filepath.Join(root, "mnt-"+role), data: filepath.Join(root, "data-"+role)}
	args := append([]string{"bridge", "--backend", backend, "--role", role, "--listen", listen,
		"--mount", b.mnt, "--data", b.data, "--sync", bridgeSync}, extra...)
	c, f := startChild(t, root, role, "bridge listening", []string{b.mnt}, lighthouseBin, args...)
	b.child, b.addr = c, f["addr"]
	waitOK(t, b.url()+"/readyz", readyTimeout)
	return b
}
