package harness

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/lighthouse-fs/lighthouse/metrics"
	"github.com/lighthouse-fs/lighthouse/report"
	"github.com/lighthouse-fs/lighthouse/timeline"
	"github.com/lighthouse-fs/lighthouse/verdict"
	"github.com/lighthouse-fs/lighthouse/workload"
)

// The HTML page of `up --html FILE`: the series are recorded in this
// process while the run goes on (the proxy's registry, the bridges'
// /metrics), so the page needs no Prometheus; it is written when the run
// ends, finished or interrupted, once the proxy has stopped and flushed
// its divergence log.

// entriesPerClass is how many divergences of each class the page lists
// with their line in the log.
const entriesPerClass = 5

// pageRun is what a run leaves for its page.
type pageRun struct {
	rec     *timeline.Recorder
	stop    func() // stops the recorder after a last sample
	started time.Time
	// What runWorkload found, when it got to a verdict.
	judged   *verdict.Verdict
	workload *workload.Result
	rules    verdict.Rules
}

// checkHTML makes sure the page can be written before the run starts,
// not only when it ends.
func checkHTML(path string) error {
	if path == "" {
		return nil
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return verdict.Usage(fmt.Errorf("--html %s cannot be written (%w): give a file in a writable directory", path, err))
	}
	return fh.Close()
}

// startRecording samples the proxy's registry and both bridges' pages
// every second until stopRecording.
func (r *run) startRecording() {
	if r.o.HTML == "" {
		return
	}
	rec := timeline.New(time.Second, timeline.DefaultMax, r.reg,
		metrics.Remote(r.bridges[0].url()+"/metrics"), metrics.Remote(r.bridges[1].url()+"/metrics"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(ctx) }()
	r.page = &pageRun{rec: rec, started: time.Now(), stop: func() { cancel(); <-done }}
}

// stopRecording takes the last sample; the bridges must still be up.
func (r *run) stopRecording() {
	if r.page != nil {
		r.page.stop()
	}
}

// writeHTML writes the page, with runErr (the run's end) among its notes
// when it is not the verdict's own. The proxy has stopped: every op's
// outcome is known and the divergence log is complete.
func (r *run) writeHTML(runErr error) error {
	p, o := r.page, r.o
	if p == nil {
		return nil
	}
	stats := r.rp.Proxy.Stats()
	rules := p.rules
	if rules.MinCoverage == 0 && rules.DivergenceHint == "" {
		rules = verdict.Rules{MinCoverage: o.MinCoverage, DivergenceHint: "see " + rel(r.lay.divergences)}
	}
	sum := &report.RunSummary{DivergenceLog: r.lay.divergences, Counts: report.RunCounts(stats, p.workload, o.MinCoverage)}
	switch {
	case p.judged != nil:
		sum.Verdict = *p.judged
	default:
		// No workload verdict (an interactive run, or a workload cut
		// short): judge what the proxy counted. It has stopped, so every
		// op it served is compared or skipped with a reason.
		run := verdict.Counted(r.rp.Proxy.Status())
		run.Drained = true
		sum.Verdict = verdict.Judge(run, rules)
		sum.VerdictNote = "Judged on the ops the proxy counted (no workload verdict: an interactive run, or a workload that did not finish); clients' errors and the workload's read checks are not in it."
	}
	classes, err := report.DivergenceClasses(r.lay.divergences, r.lay.divergences, p.started, stats.ByClass, entriesPerClass)
	sum.Classes = classes
	series := p.rec.Series(0)
	page := report.Report{Title: "Lighthouse run: bazil vs go-fuse", From: series.From, To: series.To, Generated: time.Now().UTC(),
		Source: fmt.Sprintf("recorded by lighthouse up in this process (%d samples, one every %s at the end)", len(p.rec.Samples()), p.rec.Interval()),
		Status: report.RolloutRows(r.rp.Rollout.Status()), Run: sum, Sections: report.RunSections(series, o.MinCoverage)}
	if err != nil {
		page.Notes = append(page.Notes, "divergence log: "+err.Error())
	}
	if runErr != nil && (p.judged == nil || runErr.Error() != p.judged.Line) {
		page.Notes = append(page.Notes, "the run ended with: "+runErr.Error())
	}
	if n := p.rec.Errors(); n > 0 {
		page.Notes = append(page.Notes, fmt.Sprintf("%d samples lack a source that did not answer (a bridge stopping, or busy): their series have gaps", n))
	}
	return writePage(o.HTML, page)
}

// writeStartFailure writes the page of a run that failed before the proxy
// started. Nothing was served, mirrored or compared: the page has no
// verdict, counts, divergences or charts (a "None" under divergences would
// claim a look that never happened), only what failed and its exit status.
func writeStartFailure(path string, started time.Time, runErr error) error {
	now := time.Now().UTC()
	page := report.Report{Title: "Lighthouse run: bazil vs go-fuse (did not start)", From: started, To: now, Generated: now,
		Source: "nothing: the run failed before the proxy started",
		Notes: []string{
			"The run failed before the proxy started: no op was served, mirrored or compared, so this page has no verdict, no counts, no divergences and no charts.",
			fmt.Sprintf("The run ended with (exit status %d): %v", verdict.Status(runErr), runErr)}}
	return writePage(path, page)
}

// writePage renders page and writes it to path.
func writePage(path string, page report.Report) error {
	b, err := report.HTML(page)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	return nil
}
