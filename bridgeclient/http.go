package bridgeclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Info is what a bridge's GET /v1/info answers (docs/protocol.md).
type Info = fsop.BridgeInfo

// Info asks the bridge what it runs.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var info Info
	resp, err := c.do(ctx, http.MethodGet, "/v1/info", nil, nil)
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return info, unavailable("GET /v1/info: %v", err)
	}
	return info, nil
}

// Snapshot returns the bridge's whole store (GET /v1/snapshot), after
// checking it against its X-Lighthouse-Checksum header and its own
// trailing crc32c: a mismatch is ErrChecksum.
func (c *Client) Snapshot(ctx context.Context) ([]byte, error) {
	return c.getSnapshot(ctx, "/v1/snapshot")
}

// SnapshotSubtree returns the directory at path ("." is the root) and
// everything below it (GET /v1/snapshot?path=P), checked like Snapshot.
// A file inside with a hard link outside is ErrCrossLink (a
// *CrossLinkError naming both): widen the subtree. A path that is missing
// or not a directory is ErrRefused.
func (c *Client) SnapshotSubtree(ctx context.Context, path string) ([]byte, error) {
	return c.getSnapshot(ctx, "/v1/snapshot?path="+url.QueryEscape(path))
}

func (c *Client) getSnapshot(ctx context.Context, target string) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, target, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var snap []byte
	if resp.ContentLength > 0 {
		snap = make([]byte, 0, resp.ContentLength)
	}
	buf := bytes.NewBuffer(snap)
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, unavailable("GET %s: %v", target, err)
	}
	snap = buf.Bytes()
	want := resp.Header.Get(fsop.ChecksumHeader)
	if want == "" {
		return nil, fmt.Errorf("%w: GET %s: no %s header", ErrChecksum, target, fsop.ChecksumHeader)
	}
	sum, err := checkSnapshot(snap)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", target, err)
	}
	if got := fmt.Sprintf("%08x", sum); got != strings.ToLower(want) {
		return nil, fmt.Errorf("%w: GET %s: the snapshot's checksum is %s, its %s header %s", ErrChecksum, target, got, fsop.ChecksumHeader, want)
	}
	return snap, nil
}

// Restore replaces the bridge's whole store with snap (PUT /v1/snapshot),
// sending its checksum so that the bridge refuses a damaged transfer. A
// snap whose own checksum does not match is not sent (ErrChecksum); one the
// bridge refuses is ErrRefused.
func (c *Client) Restore(ctx context.Context, snap []byte) error {
	return c.putSnapshot(ctx, "/v1/snapshot", snap)
}

// RestoreSubtree replaces the directory at path with snap, a subtree
// snapshot (PUT /v1/snapshot?path=P): checked and refused like Restore,
// and ErrCrossLink if a file in the bridge's current subtree has a name
// outside it. The mount stays up; the caller makes sure no op inside the
// subtree is in flight on this bridge and reopens its handles there.
func (c *Client) RestoreSubtree(ctx context.Context, path string, snap []byte) error {
	return c.putSnapshot(ctx, "/v1/snapshot?path="+url.QueryEscape(path), snap)
}

func (c *Client) putSnapshot(ctx context.Context, target string, snap []byte) error {
	sum, err := checkSnapshot(snap)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	h := http.Header{fsop.ChecksumHeader: {fmt.Sprintf("%08x", sum)}, "Content-Type": {"application/octet-stream"}}
	resp, err := c.do(ctx, http.MethodPut, target, snap, h)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkSnapshot checks a snapshot's trailing crc32c (of everything before
// it) and returns it.
func checkSnapshot(snap []byte) (uint32, error) {
	if len(snap) < 4 {
		return 0, fmt.Errorf("%w: snapshot of %d bytes is too short", ErrChecksum, len(snap))
	}
	body, trailer := snap[:len(snap)-4], binary.LittleEndian.Uint32(snap[len(snap)-4:])
	if sum := crc32.Checksum(body, castagnoli); sum != trailer {
		return 0, fmt.Errorf("%w: snapshot content has crc32c %08x, its trailer says %08x", ErrChecksum, sum, trailer)
	}
	return trailer, nil
}

// do makes one HTTP request and returns the response if it is a 200:
// otherwise a 400, 404, 409 or 413 is ErrRefused (a 409 with code
// cross_link also a *CrossLinkError), anything else (and transport errors)
// ErrUnavailable.
func (c *Client) do(ctx context.Context, method, path string, body []byte, h http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return nil, fmt.Errorf("bridgeclient: %s %s: %w", method, path, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, unavailable("%s %s: %v", method, path, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var e struct {
		Error   string `json:"error"`
		Code    string `json:"code"`
		Inside  string `json:"inside"`
		Outside string `json:"outside"`
	}
	text := strings.TrimSpace(string(msg))
	if json.Unmarshal(msg, &e) == nil && e.Error != "" {
		text = e.Error
	}
	err = fmt.Errorf("%s %s: HTTP %s: %s", method, path, resp.Status, text)
	switch resp.StatusCode {
	case http.StatusConflict:
		if e.Code == codeCrossLink {
			return nil, fmt.Errorf("%w: %w", ErrRefused, &CrossLinkError{Inside: e.Inside, Outside: e.Outside, err: err})
		}
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
}
