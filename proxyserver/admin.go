package proxyserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/rollout"
)

// AdminClient talks to a proxy's admin port (URL, e.g.
// http://127.0.0.1:9765), with the bearer token from
// LIGHTHOUSE_ADMIN_TOKEN when set.
type AdminClient struct{ URL string }

// AdminStatus is /admin/status as a client reads it.
type AdminStatus struct {
	Rollout rollout.Status `json:"rollout"`
	Proxy   *proxy.Status  `json:"proxy"`
	Auth    string         `json:"admin_auth"` // "token", or "none": the admin API is open
}

// Do sends body (JSON, if not nil) to path and decodes the answer into out.
func (a AdminClient) Do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	if rd == nil && method == http.MethodPost {
		rd = strings.NewReader("{}") // a POST is JSON, even an empty one
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.URL, "/")+path, rd)
	if err != nil {
		return err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := os.Getenv(rollout.EnvAdminToken); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w (is the proxy running? `lighthouse up` or `lighthouse proxy`)", a.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("admin API refused the request (401): set %s to the proxy's token", rollout.EnvAdminToken)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("admin API: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, out)
}

// Status reads the proxy's mirror counters from /admin/status.
func (a AdminClient) Status(ctx context.Context) (proxy.Status, error) {
	var st AdminStatus
	if err := a.Do(ctx, http.MethodGet, "/admin/status", nil, &st); err != nil {
		return proxy.Status{}, err
	}
	if st.Proxy == nil {
		return proxy.Status{}, fmt.Errorf("%s/admin/status has no mirror state: is it a lighthouse proxy?", a.URL)
	}
	return *st.Proxy, nil
}
