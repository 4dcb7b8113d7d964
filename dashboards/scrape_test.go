package dashboards

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// firstScrape is the /metrics of url, fetched once.
func firstScrape(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return body
}

// TestFirstScrape: a fresh bridge's and a fresh proxy's first scrapes,
// before any client op, list a series of every counter and gauge the
// dashboard queries, so no panel shows "no data" and rate() sees the
// first event (histograms are exempt: see metrics/init.go);
// and promtool check metrics finds nothing to say about either.
func TestFirstScrape(t *testing.T) {
	if e2eSkip != "" {
		t.Skip(e2eSkip)
	}
	h := startServers(t)
	scrapes := map[string][]byte{
		"primary bridge": firstScrape(t, "http://"+h.primary+"/metrics"),
		"shadow bridge":  firstScrape(t, "http://"+h.shadow+"/metrics"),
		"proxy":          firstScrape(t, "http://"+h.admin+"/metrics"),
	}
	have := map[string]bool{}
	for what, body := range scrapes {
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		for name, mf := range fams {
			if len(mf.GetMetric()) > 0 {
				have[name] = true
			}
		}
	}
	var missing, used []string
	for _, q := range Queries(Lighthouse()) {
		for _, m := range metricRE.FindAllStringSubmatch(Expand(q.Expr, "1m", "30s", "1h"), -1) {
			name := m[1]
			if strings.HasPrefix(name, "lighthouse:") || slices.Contains(used, name) {
				continue // recording rules are Prometheus's
			}
			used = append(used, name)
			base := name
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if b, ok := strings.CutSuffix(name, suffix); ok {
					base = b
				}
			}
			if !have[base] && base != name {
				continue // a histogram: a quantile of no observation is NaN with or without a series (metrics/init.go)
			}
			if !have[base] {
				missing = append(missing, name+" ("+q.Panel+")")
			}
		}
	}
	if len(used) < 10 {
		t.Fatalf("only %d metric names found in the dashboard's queries: the extraction is broken", len(used))
	}
	if len(missing) > 0 {
		t.Errorf("the first scrape of a fresh bridge and proxy has no series of: %s", strings.Join(missing, ", "))
	}
	t.Logf("%d metric names of the dashboard, each with a series in the first scrape", len(used))

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skipf("promtool not installed (Debian package prometheus): the scrapes are not linted")
	}
	for what, body := range scrapes {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics on the %s's first scrape: %v\n%s", what, err, out)
		}
	}
}
