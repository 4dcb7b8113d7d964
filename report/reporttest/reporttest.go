// Package reporttest checks a run's HTML page (report.RunSections,
// `lighthouse up --html`) in headless Chromium, for the report's own
// tests and the harness's end-to-end ones.
package reporttest

import (
	"regexp"
	"strings"
	"testing"

	"github.com/lighthouse-fs/lighthouse/internal/chromium"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// Charts are the ids of a run page's charts, in order.
var Charts = []string{"ops-chart", "coverage-chart", "divergence-chart", "class-chart", "latency-chart", "weight-chart"}

// banner is the verdict banner's background colour (report/html.go).
var banner = map[verdict.Outcome]uint32{verdict.Pass: 0xe6f4ea, verdict.Fail: 0xfdecea, verdict.Inconclusive: 0xfff4e0}

// CheckRunPage renders the page at file in headless Chromium and checks
// it: the DOM has the verdict (starting with outcome), the counts, the
// divergences part and every chart with a drawn series; the screenshot,
// written to png, holds the verdict banner's colour and the first
// series' blue, and is not mostly background (a blank or error page). It
// returns the DOM for further checks.
func CheckRunPage(t *testing.T, file, png string, outcome verdict.Outcome) string {
	t.Helper()
	chromium.Require(t)
	dom := chromium.DOM(t, file)
	if !regexp.MustCompile(`id="verdict">\s*` + string(outcome) + `: `).MatchString(dom) {
		t.Errorf("the DOM has no %s verdict:\n%.2000s", outcome, dom)
	}
	for _, want := range []string{`id="counts"`, "ops the proxy served", "coverage", `id="divergences"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the DOM lacks %q", want)
		}
	}
	for _, id := range Charts {
		m := regexp.MustCompile(`(?s)<svg id="` + id + `".*?</svg>`).FindString(dom)
		if m == "" || !strings.Contains(m, `class="series"`) {
			t.Errorf("the DOM has no %s with a drawn series", id)
		}
	}
	img := chromium.Screenshot(t, file, png, 1280, 4200)
	background, ban, blue := chromium.Share(img, 0xf7f7f7), chromium.Share(img, banner[outcome]), chromium.Share(img, 0x3274d9)
	t.Logf("screenshot %s: background %.1f%%, verdict banner %.2f%%, series blue %.3f%%", png, 100*background, 100*ban, 100*blue)
	if background > 0.9 || ban < 0.002 || blue < 0.0005 {
		t.Errorf("the screenshot %s looks blank or wrong: background %.1f%%, verdict banner %.2f%%, series blue %.3f%%", png, 100*background, 100*ban, 100*blue)
	}
	return dom
}
