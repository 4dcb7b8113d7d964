package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

// apiClient speaks the JSON API (POST /v1/ops) over keep-alive HTTP/1.1
// connections, like any client of the proxy.
type apiClient struct {
	base string
	hc   *http.Client
}

func newAPIClient(base string, conns int) *apiClient {
	return &apiClient{base: base, hc: &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			MaxIdleConns: 2 * conns, MaxIdleConnsPerHost: 2 * conns, IdleConnTimeout: time.Minute,
			DisableCompression: true,
		},
	}}
}

func (c *apiClient) close() { c.hc.CloseIdleConnections() }

// post sends ops (one op, or a batch) and decodes the results; any answer
// but 200 is an error.
func (c *apiClient) post(ctx context.Context, ops []fsop.Op, batch bool) ([]fsop.Result, error) {
	var body bytes.Buffer
	if err := fsop.EncodeRequest(&body, ops, batch); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/ops", &body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if !batch {
		var r fsop.Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("decode result: %v", err)
		}
		return []fsop.Result{r}, nil
	}
	var br struct {
		Results []fsop.Result `json:"results"`
	}
	if err := json.Unmarshal(b, &br); err != nil {
		return nil, fmt.Errorf("decode results: %v", err)
	}
	if len(br.Results) != len(ops) {
		return nil, fmt.Errorf("%d results for %d ops", len(br.Results), len(ops))
	}
	return br.Results, nil
}

// exec runs one op.
func (c *apiClient) exec(ctx context.Context, op fsop.Op) (fsop.Result, error) {
	res, err := c.post(ctx, []fsop.Op{op}, false)
	if err != nil {
		return fsop.Result{}, fmt.Errorf("%s %q: %w", op.Kind, op.Path, err)
	}
	return res[0], nil
}

// execBatch runs ops as one batch request (run in order by the proxy).
func (c *apiClient) execBatch(ctx context.Context, ops []fsop.Op) ([]fsop.Result, error) {
	res, err := c.post(ctx, ops, true)
	if err != nil {
		return nil, fmt.Errorf("batch of %d ops: %w", len(ops), err)
	}
	return res, nil
}

// setup runs the workload's setup ops (directories it never removes).
func setup(t *testing.T, c *apiClient, clients int) int64 {
	t.Helper()
	ops := setupOps(clients)
	for _, op := range ops {
		if res := c.must(t, op); res.Errno != "" {
			t.Fatalf("setup %s %s: %s", op.Kind, op.Path, res.Errno)
		}
	}
	return int64(len(ops))
}

// must runs op and fails the test on an HTTP error.
func (c *apiClient) must(t *testing.T, op fsop.Op) fsop.Result {
	t.Helper()
	res, err := c.exec(context.Background(), op)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// getJSON decodes url's JSON answer into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// proxyStatus is the proxy's counters and mirror state: GET /v1/info on
// its API port (the same as the "proxy" part of the admin port's
// /admin/status).
func proxyStatus(t *testing.T, p *proxyProc) proxy.Status {
	t.Helper()
	var st proxy.Status
	getJSON(t, p.url()+"/v1/info", &st)
	return st
}

// waitProxyIdle waits until the proxy has compared (or skipped) all of the
// ops it was sent and no mirrored op or read-back is in flight, and
// returns its status then.
func waitProxyIdle(t *testing.T, p *proxyProc, sent int64) proxy.Status {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var st proxy.Status
	stableSince := time.Time{}
	var last int64 = -1
	for time.Now().Before(deadline) {
		st = proxyStatus(t, p)
		busy := st.Ops < sent
		for _, b := range st.Bridges {
			busy = busy || b.QueueDepth > 0
		}
		// Read-backs finish after their op: wait until nothing changes
		// for a while.
		sig := st.Ops + st.Compared + st.Resyncs
		for _, n := range st.ByClass {
			sig += n
		}
		switch {
		case busy:
			stableSince = time.Time{}
		case sig != last || stableSince.IsZero():
			stableSince = time.Now()
		case time.Since(stableSince) > 500*time.Millisecond:
			return st
		}
		last = sig
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("proxy not idle after 2 minutes: %+v (sent %d ops)", st, sent)
	return st
}
