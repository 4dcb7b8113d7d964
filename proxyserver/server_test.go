package proxyserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/internal/contract"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/rollout"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

func TestInitialWeight(t *testing.T) {
	for _, tc := range []struct {
		name   string
		phase  string
		weight float64
		want   float64
		usage  bool
	}{
		{"nothing asked", "", -1, -1, false},
		{"phase", "canary", -1, rollout.PhaseWeight["canary"], false},
		{"weight wins", "canary", 0.75, 0.75, false},
		{"weight out of range", "", 1.5, 0, true},
		{"unknown phase", "half", -1, 0, true},
	} {
		f := DefaultConfig()
		f.Phase, f.Weight = tc.phase, tc.weight
		got, err := f.initialWeight()
		if tc.usage {
			if verdict.Status(err) != verdict.ExitUsage {
				t.Errorf("%s: err %v, want a usage error", tc.name, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// TestNegativeFrontCache: a usage error before any bridge is reached.
func TestNegativeFrontCache(t *testing.T) {
	f := DefaultConfig()
	f.PrimaryURL, f.ShadowURL = "http://127.0.0.1:1", "http://127.0.0.1:1" // nothing listens
	f.Mount, f.FrontCache = t.TempDir(), -time.Second
	if _, err := Start(context.Background(), &f, nil); verdict.Status(err) != verdict.ExitUsage || !strings.Contains(err.Error(), "--front-cache") {
		t.Fatalf("err %v, want a usage error naming --front-cache", err)
	}
}

func TestDefaultConfigIsTheContract(t *testing.T) {
	d := DefaultConfig()
	if d.Listen != contract.ProxyAddr || d.Admin != contract.AdminAddr ||
		d.PrimaryURL != "http://"+contract.PrimaryAddr || d.ShadowURL != "http://"+contract.ShadowAddr || d.Weight != -1 {
		t.Errorf("%+v", d)
	}
}

func TestAdminClient(t *testing.T) {
	var sawToken string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawToken = r.Header.Get("Authorization")
		switch r.URL.Path {
		case "/admin/status":
			json.NewEncoder(w).Encode(AdminStatus{Proxy: &proxy.Status{Ops: 7, Compared: 6}})
		default:
			http.Error(w, "no token", http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	t.Setenv(rollout.EnvAdminToken, "secret")
	st, err := AdminClient{URL: srv.URL + "/"}.Status(context.Background())
	if err != nil || st.Ops != 7 || st.Compared != 6 || sawToken != "Bearer secret" {
		t.Fatalf("Status: %+v, %v, token %q", st, err, sawToken)
	}
	var out AdminStatus
	if err := (AdminClient{URL: srv.URL}).Do(context.Background(), http.MethodPost, "/admin/promote", map[string]any{"phase": "full"}, &out); err == nil ||
		!strings.Contains(err.Error(), rollout.EnvAdminToken) {
		t.Errorf("401: %v", err)
	}
	if err := (AdminClient{URL: "http://127.0.0.1:1"}).Do(context.Background(), http.MethodGet, "/admin/status", nil, &out); err == nil ||
		!strings.Contains(err.Error(), "is the proxy running?") {
		t.Errorf("nothing listening: %v", err)
	}
}
