package report

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/metrics"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/verdict"
	"github.com/lighthouse-fs/lighthouse/workload"
)

func TestHarnessText(t *testing.T) {
	res := workload.Result{Ops: 100, SetupOps: 10, Errors: 0, Errnos: map[string]int{"ENOENT": 3},
		ByKind: map[fsop.Kind]int{fsop.Stat: 100}, Latency: map[fsop.Kind]workload.Percentiles{fsop.Stat: {P50: time.Millisecond}},
		Elapsed: time.Second}
	div := proxy.Divergence{Class: compare.ClassData, Op: fsop.Op{Kind: fsop.ReadFile, Path: "a"},
		Serving: proxy.Outcome{Backend: "bazil", Result: &fsop.Result{Data: []byte("abc")}},
		Mirror:  proxy.Outcome{Backend: "gofuse", Result: &fsop.Result{Data: []byte("abd")}}}
	h := &Harness{Dir: "run", Seed: 7, Clients: 2, ClientAPI: "127.0.0.1:1",
		Bridges: []Bridge{{Role: "primary", Backend: "bazil", Active: "bazil", URL: "http://p", Mount: "run/primary/mnt", Log: "run/primary.log"},
			{Role: "shadow", Backend: "gofuse", Active: "gofuse", URL: "http://s", Mount: "run/shadow/mnt", Log: "run/shadow.log"}},
		Workload: res, Drained: false,
		Stats: proxy.StatsView{Ops: 100, Compared: 61, Skipped: map[string]int64{"stale": 30, "quarantined": 9},
			ByClass: map[string]int64{compare.ClassData: 1}, Examples: map[string][]proxy.Divergence{compare.ClassData: {div}}},
		Serving:       map[string]metrics.Quantiles{"bazil": {N: 100, P50: 0.001, P95: 0.002, P99: 0.003}},
		BridgeLatency: map[string]metrics.Quantiles{"gofuse": {N: 100, P50: 0.004}},
		BridgeNice:    map[string]int{"gofuse": 19},
		Record:        "run/record.jsonl", Divergences: "run/divergences.jsonl", ProxyLog: "run/proxy.log",
		Verdict: verdict.Verdict{Line: "FAIL: 1 divergences (see run/divergences.jsonl)"}}
	var out bytes.Buffer
	h.WriteText(&out)
	got := out.String()
	for _, want := range []string{
		`(?m)^Lighthouse harness report \(run\)$`,
		`(?m)^  workload +seed 7, 2 clients, 100 ops \(10 of them building the tree\) in 1s: 100 ops/s$`,
		`(?m)^  compared +61 of 100 \(61\.0%\)$`,
		`(?m)^  skipped, by reason +stale 30, quarantined 9$`,
		`(?m)^  mirror +NOT caught up when the report was taken$`,
		`(?m)^  data +1$`,
		`(?m)^    first +read_file a$`,
		`(?m)^    bazil vs gofuse +data: 3 vs 3 bytes, first difference at byte 2$`,
		`(?m)^  serving path, served by bazil \(proxy histogram lighthouse_proxy_request_duration_seconds\) +1\.00ms +2\.00ms +3\.00ms +100$`,
		`(?m)^    \(it only mirrored, at nice 19: `,
		`(?m)^  stat +100 +1\.00ms`,
		`(?m)^record: run/record.jsonl  divergences: run/divergences.jsonl  logs: run/proxy.log, run/primary.log, run/shadow.log$`,
		`(?m)^VERDICT: FAIL: 1 divergences \(see run/divergences.jsonl\)\n$`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("report does not match %q:\n%s", want, got)
		}
	}
}

func TestRemoteText(t *testing.T) {
	r := &Remote{Workload: workload.Result{Ops: 10, Errors: 1, Elapsed: 2 * time.Second},
		Counted: proxy.Status{Ops: 9, Compared: 9, Readbacks: 1, ByClass: map[string]int64{}, Skipped: map[string]int64{"stale": 2},
			Bridges: []proxy.BridgeStatus{{Role: "shadow", Backend: "gofuse", QueueDepth: 3}}},
		Verdict: verdict.Verdict{Line: "PASS: no divergence beyond the allowlist"}}
	var out bytes.Buffer
	r.WriteText(&out)
	got := out.String()
	for _, want := range []string{`(?m)^ops sent +10 in 2\.0s \(5 ops/s\), 1 without a result$`,
		`(?m)^proxy ops / compared / read back +9 / 9 / 1$`, `(?m)^divergences by class +none$`, `(?m)^skipped +stale 2$`,
		`(?m)^shadow \(gofuse\) +queue 3, stale false$`} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("report does not match %q:\n%s", want, got)
		}
	}
	if !strings.HasSuffix(got, "\nPASS: no divergence beyond the allowlist\n") {
		t.Errorf("the verdict is not the last line:\n%s", got)
	}
}

func TestCounts(t *testing.T) {
	if got := Counts(map[string]int64{"b": 1, "a": 1, "c": 5, "z": 0}); got != "c 5, a 1, b 1" {
		t.Errorf("Counts: %q", got)
	}
	if got := Counts(map[string]int{}); got != "none" {
		t.Errorf("Counts of nothing: %q", got)
	}
}
