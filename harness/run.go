package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lighthouse-fs/lighthouse/internal/progress"
	"github.com/lighthouse-fs/lighthouse/metrics"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/report"
	"github.com/lighthouse-fs/lighthouse/verdict"
	"github.com/lighthouse-fs/lighthouse/workload"
)

// drainLimit is how long `up` waits for the mirror to catch up after the
// workload's last op.
const drainLimit = 2 * time.Minute

// runWorkload runs the built-in workload through the proxy's API, waits
// until the mirror has caught up, prints the report and returns its
// verdict; the caller then stops everything.
func (r *run) runWorkload(ctx context.Context) error {
	o, lay, rp, bridges := r.o, r.lay, r.rp, r.bridges
	res, werr := sendWorkload(ctx, o.Err, "http://"+o.ProxyListen, workload.Config{Clients: o.Clients, Ops: o.Ops, Seed: o.Seed})
	if res.Ops == 0 {
		return werr
	}
	drained := waitDrained(ctx, func(context.Context) (proxy.Status, error) { return rp.Proxy.Status(), nil }, drainLimit)

	rep := &report.Harness{Dir: rel(lay.dir), Seed: o.Seed, Clients: o.Clients, ClientAPI: o.ProxyListen,
		Workload: res, Drained: drained, Stats: rp.Proxy.Stats(), Rollout: rp.Rollout.Status(),
		Record: rel(lay.record), Divergences: rel(lay.divergences), ProxyLog: rel(lay.proxyLog)}
	run := verdict.Counted(rp.Proxy.Status())
	run.SetClients(res, werr)
	run.MismatchSide = verdict.ServingSide(rep.Stats.ServedBy)
	run.Drained, run.DrainLimit = drained, drainLimit
	for _, b := range bridges {
		rep.Bridges = append(rep.Bridges, report.Bridge{Role: b.role, Backend: b.backend, Active: b.active,
			URL: b.url(), Mount: rel(b.mnt()), Log: rel(b.logPath())})
		if b.active != b.backend {
			run.Degraded = append(run.Degraded, fmt.Sprintf("the %s bridge runs %q, not %s", b.role, b.active, b.backend))
		}
	}
	rules := verdict.Rules{MinCoverage: o.MinCoverage, DivergenceHint: "see " + rel(lay.divergences),
		ErrorHint: "see " + rel(lay.proxyLog), DrainHint: "see " + rel(lay.proxyLog)}
	rep.Verdict = verdict.Judge(run, rules)
	if r.page != nil {
		r.page.judged, r.page.workload, r.page.rules = &rep.Verdict, &res, rules
	}
	if o.JSON {
		if err := verdict.WriteJSON(o.Out, runJSON("up --workload", run, rep.Verdict, rules, res, rep.Stats.ByClass)); err != nil {
			return err
		}
		return rep.Verdict.Err()
	}
	readLatency(ctx, rep, r.reg, bridges)
	rep.WriteText(o.Out)
	return rep.Verdict.Err()
}

// runJSON is the --json object of a workload run.
func runJSON(command string, run verdict.Run, v verdict.Verdict, rules verdict.Rules, res workload.Result, byClass map[string]int64) verdict.RunJSON {
	j := run.JSON(command, v, rules)
	maps.Copy(j.DivergencesByClass, byClass)
	maps.Copy(j.Clients.Errnos, res.Errnos)
	j.Oracle.Verified, j.Oracle.Examples = res.Verified, res.MismatchExamples
	j.ElapsedSeconds = res.Elapsed.Seconds()
	return j
}

// readLatency fills in the report's latency: the proxy's serving path
// from its registry in this process, each bridge's from its /metrics.
func readLatency(ctx context.Context, rep *report.Harness, reg prometheus.Gatherer, bridges []*bridgeProc) {
	if fams, err := metrics.Gather(reg); err == nil {
		rep.Serving = fams.HistogramQuantiles(report.ProxyRequestDuration, "served_by")
	}
	rep.BridgeLatency, rep.BridgeNice = map[string]metrics.Quantiles{}, map[string]int{}
	for _, b := range bridges {
		fams, err := metrics.Scrape(ctx, b.url()+"/metrics")
		if err != nil {
			continue
		}
		maps.Copy(rep.BridgeLatency, fams.HistogramQuantiles(metrics.OperationDuration, "backend"))
		if n, ok := fams.Gauge("lighthouse_bridge_nice"); ok && n > 0 {
			rep.BridgeNice[b.backend] = int(n)
		}
	}
}

// sendWorkload runs the built-in workload through the client API at
// target with a progress bar. An error with no op sent, or an
// interruption, comes back with a zero Result.
func sendWorkload(ctx context.Context, log io.Writer, target string, cfg workload.Config) (workload.Result, error) {
	fmt.Fprintf(log, "workload: %d ops from %d clients (seed %d) through %s\n", cfg.Ops, cfg.Clients, cfg.Seed, target)
	bar := progress.New(log, int64(cfg.Ops), "workload", "ops")
	res, err := workload.Run(ctx, workload.HTTPExec(target), cfg, func(done int) { bar.Set(int64(done)) })
	bar.Finish()
	if ctx.Err() != nil {
		return workload.Result{}, errors.New("interrupted")
	}
	if err != nil && res.Ops == 0 {
		return workload.Result{}, err
	}
	fmt.Fprintln(log, "waiting for the mirror to catch up...")
	return res, err
}

// waitDrained waits until every mirrored op has run and been compared,
// read-backs included, and no bridge waits for a resync: the counters stop
// moving with empty queues. False if that did not happen within limit.
// status is the proxy's, in this process or fetched from its admin port.
func waitDrained(ctx context.Context, status func(context.Context) (proxy.Status, error), limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	var prev proxy.Status
	stable := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		st, err := status(ctx)
		busy := err != nil
		for _, b := range st.Bridges {
			busy = busy || b.QueueDepth > 0 || b.Stale || b.Quarantined > 0
		}
		if !busy && st.Ops == prev.Ops && st.Compared == prev.Compared && st.Readbacks == prev.Readbacks && st.Resyncs == prev.Resyncs {
			stable++
		} else {
			stable = 0
		}
		if stable >= 3 {
			return true
		}
		prev = st
		time.Sleep(100 * time.Millisecond)
	}
	return false
}
