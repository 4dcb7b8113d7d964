package harness

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// waitHTTP polls url until it answers 200, failed says the server ended,
// or limit passes.
func waitHTTP(ctx context.Context, url string, failed chan error, limit time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		select {
		case ferr := <-failed:
			failed <- ferr
			return ferr
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

// rel shortens p to a path relative to the working directory when it is
// below it.
func rel(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// printWhere says where everything is, and what to try.
func (r *run) printWhere() {
	f, lay, bridges, out := r.o, r.lay, r.bridges, r.o.Out
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "Lighthouse is up: the proxy serves every op from the primary bridge and mirrors it to the shadow. Ctrl-C stops everything.\n\n")
	fmt.Fprintf(w, "  proxy API\thttp://%s\tPOST /v1/ops (docs/protocol.md)\n", f.ProxyListen)
	fmt.Fprintf(w, "  admin, metrics\thttp://%s\t/metrics  /admin/status\n", f.Admin)
	if f.Front {
		fmt.Fprintf(w, "  front mount\t%s\tprograms run here generate mirrored traffic too\n", rel(lay.front))
	}
	for _, b := range bridges {
		fmt.Fprintf(w, "  %s bridge\t%s\t%s, mount %s, log %s\n", b.role, b.url(), b.active, rel(b.mnt()), rel(b.logPath()))
	}
	fmt.Fprintf(w, "  proxy log\t%s\t\n", rel(lay.proxyLog))
	fmt.Fprintf(w, "  record\t%s\tevery op and both results\n", rel(lay.record))
	fmt.Fprintf(w, "  divergences\t%s\t\n", rel(lay.divergences))
	w.Flush()
	fmt.Fprintln(out, "\nTry:")
	if f.Front {
		fmt.Fprintf(out, "  ls %s && echo hello > %s/hello.txt && cat %s/hello.txt\n", rel(lay.front), rel(lay.front), rel(lay.front))
	}
	fmt.Fprintf(out, "  curl -sS -X POST %s/v1/ops -H 'Content-Type: application/json' -d '{\"op\": \"readdir\", \"path\": \".\"}'\n", f.ProxyListen)
	fmt.Fprintf(out, "  curl -sS -X POST %s/v1/ops -H 'Content-Type: application/json' -d '{\"op\": \"mkdir\", \"path\": \"notes\"}'\n", f.ProxyListen)
	fmt.Fprintf(out, "  curl -sS %s/admin/status\n", f.Admin)
	fmt.Fprintf(out, "  curl -sS %s/metrics | grep ^lighthouse_\n", f.Admin)
}
