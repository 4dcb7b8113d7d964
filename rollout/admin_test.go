package rollout

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestAdminRefusesCrossSite: without a token (the default) the admin API
// was open to any page in the user's browser: a text/plain POST with a
// foreign Origin promoted to full, a form-encoded rollback returned 200
// (issue 13, item 9). A POST must be JSON (415) and carry no foreign
// Origin (403); the status says the API has no token.
func TestAdminRefusesCrossSite(t *testing.T) {
	c, _ := New(Config{Logger: quiet()})
	mux := http.NewServeMux()
	c.Register(mux, "", nil, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	own := srv.URL // http://127.0.0.1:PORT
	for _, tc := range []struct {
		name, path, ctype, origin, body string
		want                            int
	}{
		{"text/plain promote, foreign origin", "/admin/promote", "text/plain", "http://evil.example", `{"phase":"full"}`, 403},
		{"text/plain promote, no origin", "/admin/promote", "text/plain", "", `{"phase":"full"}`, 415},
		{"form rollback", "/admin/rollback", "application/x-www-form-urlencoded", "", "reason=x", 415},
		{"no content type rollback", "/admin/rollback", "", "", "", 415},
		{"json promote, foreign origin", "/admin/promote", "application/json", "http://evil.example", `{"phase":"full"}`, 403},
		{"json promote, rebinding origin", "/admin/promote", "application/json", "http://evil.example" + own[len("http://127.0.0.1"):], `{"phase":"full"}`, 403},
		{"json promote, own origin", "/admin/promote", "application/json; charset=utf-8", own, `{"phase":"canary"}`, 200},
		{"json rollback, no origin", "/admin/rollback", "application/json", "", "{}", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("POST %s (%s, Origin %q): %d %s, want %d", tc.path, tc.ctype, tc.origin, resp.StatusCode, b, tc.want)
			}
		})
	}
	if st := c.Status().State; st.Weight != 0 {
		t.Errorf("weight %v after the refused promotions and a rollback, want 0", st.Weight)
	}
	resp, err := http.Get(srv.URL + "/admin/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st AdminStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.Auth != "none" {
		t.Errorf("/admin/status admin_auth %q (%v), want \"none\"", st.Auth, err)
	}
}

// TestStateFileSynced: the state file's data is fsynced before the rename
// and its directory after it (issue 13, item 11: it was renamed without
// fsync, so a crash could lose an acknowledged rollback).
func TestStateFileSynced(t *testing.T) {
	var synced []string
	defer func(orig func(*os.File) error) { fsync = orig }(fsync)
	fsync = func(f *os.File) error {
		synced = append(synced, filepath.Base(f.Name()))
		return f.Sync()
	}
	dir := t.TempDir()
	c, err := New(Config{Logger: quiet(), StateFile: filepath.Join(dir, "state.json")})
	if err != nil {
		t.Fatal(err)
	}
	synced = nil
	c.Rollback("drill")
	want := []string{"state.json.tmp", filepath.Base(dir)}
	if !slices.Equal(synced, want) {
		t.Errorf("fsynced %v, want %v (the data, then the directory)", synced, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json.tmp")); !os.IsNotExist(err) {
		t.Errorf("the temporary file is left: %v", err)
	}
}
