package supervise

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/lighthouse-fs/lighthouse/fusemount"
)

// pollEvery is how often a readiness condition is checked.
const pollEvery = 20 * time.Millisecond

// Wait checks probe until it reports done, and fails when probe fails, the
// child exits (with the end of its log), ctx ends or limit passes. probe's
// string says what it saw last, for the timeout's error.
func (p *Proc) Wait(ctx context.Context, limit time.Duration, probe func(context.Context) (done bool, last string, err error)) error {
	deadline := time.Now().Add(limit)
	for {
		done, last, err := probe(ctx)
		switch {
		case err != nil:
			return err
		case done:
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready (%s); see %s:\n%s", p.cfg.Name, p.cmd.ProcessState, p.cfg.Log, p.Tail(12))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
		if time.Now().After(deadline) {
			if last != "" {
				last = " (last: " + last + ")"
			}
			return fmt.Errorf("%s not ready after %s%s; see %s", p.cfg.Name, limit, last, p.cfg.Log)
		}
	}
}

// WaitLine waits until a line the child wrote to its log contains marker
// and returns that line's key=value words (values unquoted), such as the
// address a server announces. Lines an earlier process appended to the
// same log do not count.
func (p *Proc) WaitLine(ctx context.Context, marker string, limit time.Duration) (map[string]string, error) {
	var fields map[string]string
	off := p.logStart
	var partial []byte
	err := p.Wait(ctx, limit, func(context.Context) (bool, string, error) {
		f, err := os.Open(p.cfg.Log)
		if err != nil {
			return false, "", err
		}
		defer f.Close()
		b, err := io.ReadAll(io.NewSectionReader(f, off, 1<<62))
		if err != nil {
			return false, "", err
		}
		off += int64(len(b))
		partial = append(partial, b...)
		for {
			i := bytes.IndexByte(partial, '\n')
			if i < 0 {
				return false, "", nil
			}
			line := string(partial[:i])
			partial = partial[i+1:]
			if strings.Contains(line, marker) {
				fields = Fields(line)
				return true, "", nil
			}
		}
	})
	return fields, err
}

// Fields returns the key=value words of a log line, values unquoted.
func Fields(line string) map[string]string {
	out := map[string]string{}
	for _, w := range strings.Fields(line) {
		if k, v, ok := strings.Cut(w, "="); ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

// WaitHTTP waits until GET url answers 200 and returns the body of that
// answer. Other answers are retried; the last one is in the timeout's
// error.
func (p *Proc) WaitHTTP(ctx context.Context, url string, limit time.Duration) ([]byte, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	var body []byte
	err := p.Wait(ctx, limit, func(ctx context.Context) (bool, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b))), nil
		}
		body = b
		return true, "", nil
	})
	return body, err
}

// WaitMount waits until the kernel lists a FUSE mount on dir whose type
// contains fsType ("" for any), read from /proc, never through the mount.
func (p *Proc) WaitMount(ctx context.Context, dir, fsType string, limit time.Duration) error {
	return p.Wait(ctx, limit, func(context.Context) (bool, string, error) {
		e, ok := fusemount.Find(dir)
		return ok && strings.Contains(e.FSType, fsType), "", nil
	})
}
