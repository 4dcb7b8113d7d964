package rollout

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestAlertmanagerWebhook: the token is required; a bad body and a resolved
// alert change nothing; a firing fleet_rollback alert rolls back once
// (a repeat adds no decision) and the rollback survives a restart.
func TestAlertmanagerWebhook(t *testing.T) {
	state := filepath.Join(t.TempDir(), "rollout.json")
	c, err := New(Config{Initial: 0.10, StateFile: state, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Register(mux, "s3cret", nil, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(token, body string) (int, WebhookResult) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/admin/alertmanager", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var res WebhookResult
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, &res); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
		}
		return resp.StatusCode, res
	}
	const firing = `{"version":"4","status":"firing","receiver":"lighthouse","groupLabels":{"cluster":"c"},
	  "alerts":[{"status":"firing","labels":{"alertname":"LighthouseNodeDivergence","action":"fleet_rollback","cluster":"c","node":"n1","severity":"page"},
	  "annotations":{"summary":"go-fuse diverges on 5% of compared ops on node n1"},"startsAt":"2026-12-04T21:00:00Z","fingerprint":"x"}]}`
	resolved := strings.ReplaceAll(firing, `"firing"`, `"resolved"`)
	other := strings.ReplaceAll(firing, `fleet_rollback`, `ticket`)
	for _, tc := range []struct {
		name, token, body string
		want              int
	}{
		{"no token", "", firing, 401},
		{"wrong token", "guess", firing, 401},
		{"not JSON", "s3cret", "{", 400},
		{"version 3", "s3cret", strings.Replace(firing, `"4"`, `"3"`, 1), 400},
		{"resolved", "s3cret", resolved, 200},
		{"no action label", "s3cret", other, 200},
	} {
		if code, res := post(tc.token, tc.body); code != tc.want || res.RolledBack {
			t.Errorf("%s: %d rolled back %v, want %d and no rollback", tc.name, code, res.RolledBack, tc.want)
		}
	}
	if c.Weight() != 0.10 {
		t.Fatalf("weight %v after notifications that must change nothing", c.Weight())
	}
	code, res := post("s3cret", firing)
	if code != 200 || !res.RolledBack || res.State.Weight != 0 || !res.State.RolledBack || res.State.Decision.Trigger != TriggerFleet ||
		!strings.Contains(res.Reason, "LighthouseNodeDivergence{cluster=c,node=n1}: go-fuse diverges") {
		t.Fatalf("firing: %d %+v", code, res)
	}
	if code, res := post("s3cret", firing); code != 200 || res.RolledBack || !res.Already {
		t.Fatalf("repeat: %d %+v", code, res)
	}
	if n := testutil.ToFloat64(c.mRollbacks.WithLabelValues(TriggerFleet)); n != 1 {
		t.Fatalf("rollbacks_total{trigger=fleet} = %v after a notification and its repeat", n)
	}
	again, err := New(Config{Initial: 0.5, StateFile: state, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if st := again.Status().State; again.Weight() != 0 || !st.RolledBack || st.Decision.Trigger != TriggerFleet {
		t.Fatalf("restart did not keep the fleet rollback: %+v", st)
	}
}
