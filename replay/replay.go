// Package replay replays what a proxy wrote, --record lines (one op each)
// and --divergence-log lines (one divergence each), through fresh
// in-process proxies with the same comparison, read-back and allowlist as
// `lighthouse proxy`, over two bridges: fresh ones it starts as child
// processes, or bridges given by URL. It reports what diverges, and for
// each divergence line whether it reproduces (`lighthouse replay`).
//
// # Order
//
// Record lines are replayed in admission order (their seq), one op at a
// time, as one stream. Each divergence line is replayed on its own, from
// the state the bridges had when the replay started: its recent ops, then
// its op.
package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lighthouse-fs/lighthouse/bridgeclient"
	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// Config is what to replay on, and how.
type Config struct {
	// PrimaryURL and ShadowURL are bridges to replay on, both or neither:
	// without them two fresh bridges are started (bazil primary, gofuse
	// shadow) on free ports. Given bridges are reset to the primary's
	// state first: use scratch bridges.
	PrimaryURL, ShadowURL string
	// Pace is "fast" (ops back to back) or "recorded" (the recorded gaps
	// between record lines kept).
	Pace string
	// Dir holds the fresh bridges' mounts, stores and logs (default: a
	// temporary directory, removed afterwards).
	Dir string
	// Exe is the lighthouse binary that serves the fresh bridges.
	Exe string
	// Allowlist is a YAML file of known differences (default: the
	// built-in one); DivergenceLog, if set, gets every divergence found.
	Allowlist, DivergenceLog string
	// Out gets the report.
	Out io.Writer
	// Minimize shrinks each divergence line instead of replaying it once
	// (delta debugging over its recent ops) and prints the smallest
	// sequence that still diverges the same way, as a conformance case.
	Minimize bool
	// JSON prints the summary as one JSON object on Out (ReplayJSON) and
	// the progress notes on standard error.
	JSON bool
}

var (
	// ErrNotAllowed is the error of a replay that found divergences
	// outside the allowlist.
	ErrNotAllowed = errors.New("divergences not in the allowlist")
	// ErrInput is the error of a file that cannot be replayed.
	ErrInput = errors.New("bad replay input")
)

// replayStats are the counters of one replay, over all its proxies.
type replayStats struct {
	ops, refused, failed int64
	outOfOrder           int64 // record lines replayed after a later seq
	sameAsRecorded       int64 // results equal to the recorded ones of the same library
	recordedCompared     int64 // records with a serving result to compare with
	compared, resyncs    int64
	byClass, skipped     map[string]int64
	notAllowed           []proxy.Divergence // every divergence not in the allowlist
}

func (s *replayStats) add(v proxy.StatsView, initialResyncs int64) {
	s.compared += v.Compared
	s.resyncs += v.Resyncs - initialResyncs
	for k, n := range v.ByClass {
		s.byClass[k] += n
	}
	for k, n := range v.Skipped {
		s.skipped[k] += n
	}
}

// replayer replays lines through fresh in-process proxies over two bridges.
type replayer struct {
	cfg      *Config
	clients  [2]*bridgeclient.Client
	names    [2]string
	allow    compare.Allowlist
	baseline []byte // the primary's store when the replay started
	divLog   io.Writer
	logger   *slog.Logger
	stats    replayStats
	out      io.Writer
}

// Run replays the file at path and writes the report to cfg.Out. Its
// error carries the command's exit status (package verdict): a usage
// error for a bad Config or input, a FAIL for divergences outside the
// allowlist (ErrNotAllowed).
func Run(ctx context.Context, path string, cfg Config) (err error) {
	f, out := &cfg, cfg.Out
	if f.Pace != "fast" && f.Pace != "recorded" {
		return verdict.Usage(fmt.Errorf("--pace %q: want fast or recorded", f.Pace))
	}
	if (f.PrimaryURL == "") != (f.ShadowURL == "") {
		return verdict.Usage(errors.New("give both --primary and --shadow, or neither (to start fresh bridges)"))
	}
	if f.JSON && f.Minimize {
		return verdict.Usage(errors.New("--json does not apply to --minimize (its output is conformance cases)"))
	}
	if f.JSON {
		out = os.Stderr // the notes; the object goes to cfg.Out
	}
	in, err := readReplayInput(path)
	if err != nil {
		return verdict.Usage(err)
	}
	rp := &replayer{cfg: f, out: out, stats: replayStats{byClass: map[string]int64{}, skipped: map[string]int64{}},
		logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	rp.allow = compare.DefaultAllowlist()
	if f.Allowlist != "" {
		if rp.allow, err = compare.LoadAllowlist(f.Allowlist); err != nil {
			return err
		}
	}
	if f.DivergenceLog != "" {
		fh, err := os.Create(f.DivergenceLog)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, fh.Close()) }()
		rp.divLog = fh
	}

	urls := [2]string{f.PrimaryURL, f.ShadowURL}
	where, logs := "bridges "+f.PrimaryURL+" and "+f.ShadowURL, ""
	if f.PrimaryURL == "" {
		pair, err := startBridges(ctx, f.Exe, f.Dir)
		if err != nil {
			return err
		}
		defer func() {
			if serr := pair.stop(); serr != nil {
				err = errors.Join(err, serr)
			} else if err != nil && !errors.Is(err, ErrNotAllowed) && pair.tmp {
				fmt.Fprintf(os.Stderr, "replay: bridge logs kept in %s\n", pair.dir)
			} else if pair.tmp {
				os.RemoveAll(pair.dir)
			}
		}()
		urls = pair.urls
		where, logs = "fresh bridges in "+pair.dir, pair.dir
	}
	defer rp.closeClients()
	if err := rp.connect(ctx, urls, f.PrimaryURL == "", logs); err != nil {
		return err
	}

	if f.Minimize {
		return rp.minimizeAll(ctx, path, in.divs)
	}
	verdicts, err := rp.replay(ctx, path, in, where)
	if err != nil {
		return err
	}
	v := verdict.Judge(verdict.Run{Ops: rp.stats.ops, Compared: rp.stats.compared, Divergent: int64(len(rp.stats.notAllowed)), Drained: true}, verdict.Rules{})
	if f.JSON {
		if err := verdict.WriteJSON(f.Out, rp.json(in, verdicts, v)); err != nil {
			return err
		}
	} else {
		rp.report(in, verdicts)
	}
	if v.Outcome != verdict.Pass {
		return verdict.WithStatus(v.ExitCode, fmt.Errorf("%w: %d (see above; docs/compatibility.md lists the known ones)", ErrNotAllowed, len(rp.stats.notAllowed)))
	}
	return nil
}

// minimizeAll shrinks every divergence line of the file, in order.
func (rp *replayer) minimizeAll(ctx context.Context, path string, divs []replayLine) error {
	if len(divs) == 0 {
		return verdict.Usage(fmt.Errorf("%w: %s has no divergence lines to minimize (--record lines have no history)", ErrInput, path))
	}
	var missed []string
	for _, l := range divs {
		fmt.Fprintf(rp.out, "line %d: shrinking %d ops (%s on %s %q)\n", l.line, len(l.div.Recent)+1, l.div.Class, l.div.Op.Kind, l.div.Op.Path)
		m, err := rp.minimize(ctx, l)
		if errors.Is(err, ErrNotReproduced) {
			fmt.Fprintf(rp.out, "%v\n", err)
			missed = append(missed, fmt.Sprint(l.line))
			continue
		}
		if err != nil {
			return err
		}
		if err := rp.minimizeReport(m); err != nil {
			return err
		}
	}
	if len(missed) > 0 {
		return verdict.Failed(fmt.Errorf("%w: line %s", ErrNotReproduced, strings.Join(missed, ", ")))
	}
	return nil
}

// connect waits for both bridges, names their libraries, and takes the
// primary's state as the baseline every divergence line starts from.
// Fresh bridges must run the library they were started for.
func (rp *replayer) connect(ctx context.Context, urls [2]string, fresh bool, logs string) error {
	for i, u := range urls {
		c, err := bridgeclient.New(u, bridgeclient.Options{})
		if err != nil {
			return err
		}
		rp.clients[i] = c
		info, err := c.WaitInfo(ctx, 30*time.Second)
		if err != nil {
			return fmt.Errorf("bridge %s: %w", u, err)
		}
		rp.names[i] = info.ActiveBackend
	}
	if fresh && (rp.names[0] != "bazil" || rp.names[1] != "gofuse") {
		return fmt.Errorf("the fresh bridges run %s and %s, not bazil and gofuse: a FUSE library could not mount (see the logs in %s)",
			rp.names[0], rp.names[1], logs)
	}
	if rp.names[0] == rp.names[1] {
		rp.names[1] += "-shadow"
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var err error
	if rp.baseline, err = rp.clients[0].Snapshot(sctx); err != nil {
		return fmt.Errorf("snapshot of the primary: %w", err)
	}
	return nil
}

func (rp *replayer) closeClients() {
	for _, c := range rp.clients {
		if c != nil {
			c.Close()
		}
	}
}

// replay replays the record lines as one stream, then each divergence
// line on its own, and returns the divergence lines' verdicts.
func (rp *replayer) replay(ctx context.Context, path string, in *replayInput, where string) ([]string, error) {
	total := in.records
	for _, d := range in.divs {
		total += int64(len(d.div.Recent)) + 1
	}
	fmt.Fprintf(rp.out, "replaying %s: %d record lines, %d divergence lines (%d ops) on %s primary, %s shadow (%s)\n",
		path, in.records, len(in.divs), total, rp.names[0], rp.names[1], where)
	prog := newProgress(total)
	defer prog.Finish()
	if in.records > 0 {
		if err := rp.replayRecords(ctx, path, prog); err != nil {
			return nil, err
		}
	}
	var verdicts []string
	for _, l := range in.divs {
		v, err := rp.replayDivergence(ctx, l, prog)
		if err != nil {
			return nil, err
		}
		verdicts = append(verdicts, v)
	}
	return verdicts, nil
}

// newProxy starts a proxy over both bridges and makes the shadow equal to
// the primary (a resync at a barrier). resyncEvery 0 keeps the proxy's
// default.
func (rp *replayer) newProxy(onDiv func(proxy.Divergence), record io.Writer, resyncEvery time.Duration) (*proxy.Proxy, error) {
	p, err := proxy.New(proxy.Config{
		Primary: rp.clients[0], Shadow: rp.clients[1], PrimaryName: rp.names[0], ShadowName: rp.names[1],
		Allowlist: rp.allow, ResyncInterval: resyncEvery, DivergenceLog: rp.divLog, Record: record,
		OnDivergence: onDiv, Logger: rp.logger,
	})
	if err != nil {
		return nil, err
	}
	if err := p.Resync(proxy.Shadow); err != nil {
		closeReplayProxy(p)
		return nil, fmt.Errorf("make the shadow equal to the primary: %w", err)
	}
	return p, nil
}

// closeReplayProxy closes p (its workers finish the mirrored ops and
// read-backs, its logs are flushed), giving up after a while: a safety net
// should a resync still wait at a barrier, so that a replay never hangs.
func closeReplayProxy(p *proxy.Proxy) {
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		fmt.Fprintln(os.Stderr, "replay: the proxy did not stop within 30s (a resync in flight?); going on")
	}
}

func (rp *replayer) collect(mu *sync.Mutex, into *[]proxy.Divergence) func(proxy.Divergence) {
	return func(d proxy.Divergence) {
		mu.Lock()
		*into = append(*into, d)
		mu.Unlock()
	}
}

func notAllowed(d proxy.Divergence) bool {
	return d.Class != compare.ClassAllowed
}

// exec runs one op through p and counts it.
func (rp *replayer) exec(ctx context.Context, p *proxy.Proxy, op fsop.Op) (fsop.Result, error) {
	res, err := p.Exec(ctx, &op)
	rp.stats.ops++
	switch {
	case errors.Is(err, proxy.ErrRefused):
		rp.stats.refused++
	case err != nil:
		rp.stats.failed++
	}
	return res, err
}
