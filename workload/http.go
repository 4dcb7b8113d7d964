package workload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// HTTPError is a request the server answered with a status other than 200
// (400: refused; 503: the bridge could not run it, it may or may not have
// run).
type HTTPError struct {
	Status  int
	Message string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
}

// maxIdlePerHost keeps a connection per client for far more clients than
// the workload runs (Config.Clients is at most 1024; the default is 8).
const maxIdlePerHost = 256

// maxResponse bounds a response body: a 64 MiB read in base64, and room.
const maxResponse = 96 << 20

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// HTTPExec is a client of the JSON API (docs/protocol.md) at baseURL, e.g.
// "http://127.0.0.1:8764": each op is one POST /v1/ops over keep-alive
// connections of one http.Client, as a real client does. Any status but 200
// is an *HTTPError; a result's errno is a result, not an error.
func HTTPExec(baseURL string) Exec {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          maxIdlePerHost,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		DisableCompression:    true,
	}
	client := &http.Client{Transport: tr}
	url := strings.TrimRight(baseURL, "/") + "/v1/ops"
	return func(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
		buf := bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		defer bufPool.Put(buf)
		if err := fsop.EncodeRequest(buf, []fsop.Op{*op}, false); err != nil {
			return fsop.Result{}, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(buf.Bytes()))
		if err != nil {
			return fsop.Result{}, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return fsop.Result{}, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		resp.Body.Close() // read to the end: the connection is reused
		if err != nil {
			return fsop.Result{}, fmt.Errorf("read response: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			var e struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(body, &e) != nil || e.Error == "" {
				e.Error = strings.TrimSpace(string(body))
			}
			return fsop.Result{}, &HTTPError{Status: resp.StatusCode, Message: e.Error}
		}
		var res fsop.Result
		if err := json.Unmarshal(body, &res); err != nil {
			return fsop.Result{}, fmt.Errorf("decode result: %w", err)
		}
		return res, nil
	}
}
