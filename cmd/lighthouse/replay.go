package main

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/bridgeclient"
	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

// replayFlags configure `lighthouse replay`.
type replayFlags struct {
	primaryURL, shadowURL string
	pace                  string
	dir                   string
	allowlist             string
	divergenceLog         string
}

func replayCmd() *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay FILE [--primary URL --shadow URL] [--pace fast|recorded] [--dir DIR]",
		Short: "Replay a --record trace or a divergence log through the proxy's comparison and report what diverges",
		Long: `Replay FILE, JSON lines written by 'lighthouse proxy': --record lines (one op
each) and --divergence-log lines (one divergence each), through an in-process
proxy with the same comparison, read-back and allowlist as 'lighthouse proxy'.

Record lines are replayed in admission order (their seq), one op at a time, as
one stream. Each divergence line is replayed on its own, from the state the
bridges had when the replay started: its recent ops, then its op; the report
says whether the same class of divergence reproduces on that op.

Without --primary and --shadow, two fresh bridges are started as child
processes (bazil primary, gofuse shadow) on free ports, with their mounts and
stores under --dir (default: a temporary directory, removed afterwards), and
stopped at the end. With them, the shadow is first made equal to the primary
(a snapshot of the primary is installed on it) and, for divergence lines,
both are reset to that snapshot before each line: use scratch bridges.

--pace recorded keeps the time gaps between record lines (ops still run one
at a time); fast (the default) runs them back to back.

Exit status 1 if any divergence not in the allowlist occurred (a CI
compatibility job), or on an error; 0 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReplay(cmd.Context(), args[0], &f, os.Stdout)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.primaryURL, "primary", "", "primary bridge URL (default: start a fresh bazil bridge)")
	fl.StringVar(&f.shadowURL, "shadow", "", "shadow bridge URL (default: start a fresh gofuse bridge)")
	fl.StringVar(&f.pace, "pace", "fast", "fast: ops back to back; recorded: keep the recorded gaps between record lines")
	fl.StringVar(&f.dir, "dir", "", "working directory of the fresh bridges: mounts, stores, logs (default: a temporary directory)")
	fl.StringVar(&f.allowlist, "allowlist", "", "known differences (YAML); default: the built-in compare/allowlist.yaml")
	fl.StringVar(&f.divergenceLog, "divergence-log", "", "also write every divergence the replay finds (JSON lines) to this file")
	return cmd
}

// errNotAllowed is the error of a replay that found divergences outside
// the allowlist (exit status 1).
var errNotAllowed = errors.New("divergences not in the allowlist")

// replayLine is one input line: a record or a divergence.
type replayLine struct {
	line int
	rec  *proxy.Record
	div  *proxy.Divergence
}

// scanReplayFile calls fn for every line of path, in file order; a bad
// line is an error naming its line number.
func scanReplayFile(path string, fn func(replayLine) error) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	r := bufio.NewReaderSize(fh, 1<<20)
	for n := 1; ; n++ {
		raw, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(raw)) > 0 {
			l, perr := parseReplayLine(raw)
			if perr != nil {
				return fmt.Errorf("%s:%d: %w", path, n, perr)
			}
			l.line = n
			if err := fn(l); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
}

// replayInput is what a first pass over the file found: record lines are
// only counted (they are streamed by the second pass), divergence lines
// kept.
type replayInput struct {
	records  int64
	recorded map[string]int64 // record lines by their class
	divs     []replayLine
}

func readReplayInput(path string) (*replayInput, error) {
	in := &replayInput{recorded: map[string]int64{}}
	err := scanReplayFile(path, func(l replayLine) error {
		if l.rec != nil {
			in.records++
			if l.rec.Class != "" {
				in.recorded[l.rec.Class]++
			}
		} else {
			in.divs = append(in.divs, l)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if in.records == 0 && len(in.divs) == 0 {
		return nil, fmt.Errorf("%s: no lines to replay (want --record or --divergence-log JSON lines)", path)
	}
	return in, nil
}

func parseReplayLine(raw []byte) (replayLine, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return replayLine{}, fmt.Errorf("not a JSON object: %v", err)
	}
	if _, ok := fields["op"]; !ok {
		return replayLine{}, errors.New(`no "op" field: neither a --record line nor a --divergence-log line`)
	}
	_, hasRecent := fields["recent"]
	_, hasDiff := fields["diff"]
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if hasRecent || hasDiff {
		var d proxy.Divergence
		if err := dec.Decode(&d); err != nil {
			return replayLine{}, fmt.Errorf("divergence line: %v", err)
		}
		if err := checkReplayOp(&d.Op); err != nil {
			return replayLine{}, fmt.Errorf("divergence line: op: %w", err)
		}
		if d.Class == "" {
			return replayLine{}, errors.New(`divergence line: no "class"`)
		}
		for i := range d.Recent {
			if err := checkReplayOp(&d.Recent[i]); err != nil {
				return replayLine{}, fmt.Errorf("divergence line: recent op %d: %w", i, err)
			}
		}
		return replayLine{div: &d}, nil
	}
	var rec proxy.Record
	if err := dec.Decode(&rec); err != nil {
		return replayLine{}, fmt.Errorf("record line: %v", err)
	}
	if err := checkReplayOp(&rec.Op); err != nil {
		return replayLine{}, fmt.Errorf("record line: op: %w", err)
	}
	return replayLine{rec: &rec}, nil
}

func checkReplayOp(op *fsop.Op) error {
	if op.Kind == "" {
		return errors.New(`no op name ("op": "stat", ...)`)
	}
	return op.Validate()
}

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
	flags    *replayFlags
	clients  [2]*bridgeclient.Client
	names    [2]string
	allow    compare.Allowlist
	baseline []byte // the primary's store when the replay started
	divLog   io.Writer
	logger   *slog.Logger
	stats    replayStats
	out      io.Writer
}

func runReplay(ctx context.Context, path string, f *replayFlags, out io.Writer) (err error) {
	if f.pace != "fast" && f.pace != "recorded" {
		return fmt.Errorf("--pace %q: want fast or recorded", f.pace)
	}
	if (f.primaryURL == "") != (f.shadowURL == "") {
		return errors.New("give both --primary and --shadow, or neither (to start fresh bridges)")
	}
	in, err := readReplayInput(path)
	if err != nil {
		return err
	}
	rp := &replayer{flags: f, out: out, stats: replayStats{byClass: map[string]int64{}, skipped: map[string]int64{}},
		logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	rp.allow = compare.DefaultAllowlist()
	if f.allowlist != "" {
		if rp.allow, err = compare.LoadAllowlist(f.allowlist); err != nil {
			return err
		}
	}
	if f.divergenceLog != "" {
		fh, err := os.Create(f.divergenceLog)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, fh.Close()) }()
		rp.divLog = fh
	}

	urls := [2]string{f.primaryURL, f.shadowURL}
	where, logs := "bridges "+f.primaryURL+" and "+f.shadowURL, ""
	if f.primaryURL == "" {
		pair, err := startReplayBridges(ctx, f.dir)
		if err != nil {
			return err
		}
		defer func() {
			if serr := pair.stop(); serr != nil {
				err = errors.Join(err, serr)
			} else if err != nil && !errors.Is(err, errNotAllowed) && pair.tmp {
				fmt.Fprintf(os.Stderr, "replay: bridge logs kept in %s\n", pair.dir)
			} else if pair.tmp {
				os.RemoveAll(pair.dir)
			}
		}()
		urls = pair.urls
		where, logs = "fresh bridges in "+pair.dir, pair.dir
	}
	for i, u := range urls {
		c, err := bridgeclient.New(u, bridgeclient.Options{})
		if err != nil {
			return err
		}
		defer c.Close()
		rp.clients[i] = c
		info, err := waitBridge(ctx, c, 30*time.Second)
		if err != nil {
			return fmt.Errorf("bridge %s: %w", u, err)
		}
		rp.names[i] = info.ActiveBackend
	}
	if f.primaryURL == "" && (rp.names[0] != "bazil" || rp.names[1] != "gofuse") {
		return fmt.Errorf("the fresh bridges run %s and %s, not bazil and gofuse: a FUSE library could not mount (see the logs in %s)",
			rp.names[0], rp.names[1], logs)
	}
	if rp.names[0] == rp.names[1] {
		rp.names[1] += "-shadow"
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	rp.baseline, err = rp.clients[0].Snapshot(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("snapshot of the primary: %w", err)
	}

	divs := in.divs
	total := in.records
	for _, d := range divs {
		total += int64(len(d.div.Recent)) + 1
	}
	fmt.Fprintf(out, "replaying %s: %d record lines, %d divergence lines (%d ops) on %s primary, %s shadow (%s)\n",
		path, in.records, len(divs), total, rp.names[0], rp.names[1], where)
	prog := newReplayProgress(total)
	defer prog.finish()

	if in.records > 0 {
		if err := rp.replayRecords(ctx, path, prog); err != nil {
			return err
		}
	}
	var verdicts []string
	for _, l := range divs {
		v, err := rp.replayDivergence(ctx, l, prog)
		if err != nil {
			return err
		}
		verdicts = append(verdicts, v)
	}
	prog.finish()
	rp.report(in, verdicts)
	if n := len(rp.stats.notAllowed); n > 0 {
		return fmt.Errorf("%w: %d (see above; docs/compatibility.md lists the known ones)", errNotAllowed, n)
	}
	return nil
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

// reorderWindow is how many record lines are held to put them back in
// admission order: the proxy writes a line when both bridges answered, so
// lines come out of seq order by at most the ops in flight (bounded by the
// mirror queue, 10,000 by default).
const reorderWindow = 1 << 16

// recordHeap orders record lines by seq.
type recordHeap []*proxy.Record

func (h recordHeap) Len() int           { return len(h) }
func (h recordHeap) Less(i, j int) bool { return h[i].Seq < h[j].Seq }
func (h recordHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *recordHeap) Push(x any)        { *h = append(*h, x.(*proxy.Record)) }
func (h *recordHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// replayRecords replays the file's record lines in admission order (their
// seq), one op at a time, as one stream through one proxy.
func (rp *replayer) replayRecords(ctx context.Context, path string, prog *replayProgress) error {
	var mu sync.Mutex
	var divs []proxy.Divergence
	p, err := rp.newProxy(rp.collect(&mu, &divs), nil, 0)
	if err != nil {
		return err
	}
	initial := p.Stats().Resyncs
	cctx := proxy.WithClient(context.WithoutCancel(ctx), "replay")
	var start, first time.Time
	var lastSeq uint64
	run := func(r *proxy.Record) {
		if r.Seq < lastSeq {
			rp.stats.outOfOrder++
		}
		lastSeq = max(lastSeq, r.Seq)
		if rp.flags.pace == "recorded" && !r.Time.IsZero() {
			if first.IsZero() {
				start, first = time.Now(), r.Time
			} else if wait := time.Until(start.Add(r.Time.Sub(first))); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
			}
		}
		res, err := rp.exec(cctx, p, r.Op)
		// The recorded answer of the library that serves the replay.
		var want *proxy.Outcome
		switch {
		case r.Serving.Backend == rp.names[0]:
			want = &r.Serving
		case r.Mirror != nil && r.Mirror.Backend == rp.names[0]:
			want = r.Mirror
		}
		if want != nil && want.Result != nil && want.Error == "" {
			rp.stats.recordedCompared++
			if err == nil && compare.Classify(want.Result, &res, compare.Rules{}) == "" {
				rp.stats.sameAsRecorded++
			}
		}
		prog.add(1)
	}
	h := &recordHeap{}
	err = scanReplayFile(path, func(l replayLine) error {
		if l.rec == nil {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		heap.Push(h, l.rec)
		if h.Len() > reorderWindow {
			run(heap.Pop(h).(*proxy.Record))
		}
		return nil
	})
	for err == nil && h.Len() > 0 && ctx.Err() == nil {
		run(heap.Pop(h).(*proxy.Record))
	}
	closeReplayProxy(p)
	rp.stats.add(p.Stats(), initial)
	for _, d := range divs {
		if notAllowed(d) {
			rp.stats.notAllowed = append(rp.stats.notAllowed, d)
		}
	}
	if err != nil {
		return err
	}
	return ctx.Err()
}

// replayDivergence replays one divergence line from the baseline state and
// says whether its class reproduces on its op.
func (rp *replayer) replayDivergence(ctx context.Context, l replayLine, prog *replayProgress) (string, error) {
	d := l.div
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := rp.clients[0].Restore(rctx, rp.baseline)
	cancel()
	if err != nil {
		return "", fmt.Errorf("line %d: reset the primary to the starting state: %w", l.line, err)
	}
	var mu sync.Mutex
	var divs []proxy.Divergence
	var recBuf bytes.Buffer
	// No resync for a quarantine during the line: its few ops run on the
	// state they diverged on.
	p, err := rp.newProxy(rp.collect(&mu, &divs), &recBuf, time.Hour)
	if err != nil {
		return "", fmt.Errorf("line %d: %w", l.line, err)
	}
	initial := p.Stats().Resyncs
	cctx := proxy.WithClient(context.WithoutCancel(ctx), "replay")
	ops := append(append([]fsop.Op(nil), d.Recent...), d.Op)
	var lastErr error
	for i, op := range ops {
		if ctx.Err() != nil {
			break
		}
		_, err := rp.exec(cctx, p, op)
		if i == len(ops)-1 {
			lastErr = err
		}
		prog.add(1)
	}
	closeReplayProxy(p)
	rp.stats.add(p.Stats(), initial)
	if err := ctx.Err(); err != nil {
		return "", err
	}
	final := uint64(len(ops)) // seq numbers start at 1, one per Exec
	var onOp, earlier []proxy.Divergence
	for _, x := range divs {
		if notAllowed(x) {
			rp.stats.notAllowed = append(rp.stats.notAllowed, x)
		}
		if x.Seq == final {
			onOp = append(onOp, x)
		} else {
			earlier = append(earlier, x)
		}
	}
	var rec *proxy.Record
	dec := json.NewDecoder(&recBuf)
	for {
		var r proxy.Record
		if dec.Decode(&r) != nil {
			break
		}
		if r.Seq == final {
			rec = &r
		}
	}

	what := fmt.Sprintf("line %d: seq %d %s %q", l.line, d.Seq, d.Op.Kind, d.Op.Path)
	if d.Op.To != "" {
		what += fmt.Sprintf(" -> %q", d.Op.To)
	}
	what += fmt.Sprintf(" after %d recent ops: recorded %s", len(d.Recent), d.Class)
	var verdict string
	switch {
	case lastErr != nil && !errors.Is(lastErr, proxy.ErrRefused):
		verdict = "not reproduced: the op failed on the serving bridge: " + lastErr.Error()
	case len(onOp) > 0:
		classes := make([]string, len(onOp))
		same := false
		for i, x := range onOp {
			classes[i] = x.Class
			same = same || x.Class == d.Class
		}
		if same {
			verdict = "reproduced (" + strings.Join(classes, ", ") + ")"
		} else {
			verdict = "reproduced as another class: " + strings.Join(classes, ", ")
		}
	case rec != nil && rec.Skipped != "":
		verdict = "not reproduced: the op was not compared (" + rec.Skipped + ")"
	case rec != nil && rec.Mirror == nil:
		verdict = "not reproduced: the op was not mirrored (the shadow is out of step)"
	default:
		verdict = "not reproduced: both bridges answered the same"
	}
	if len(earlier) > 0 {
		var e []string
		for _, x := range earlier {
			e = append(e, fmt.Sprintf("%s on %s %q", x.Class, x.Op.Kind, x.Op.Path))
		}
		verdict += "; earlier ops diverged: " + strings.Join(e, ", ")
	}
	return what + ": " + verdict, nil
}

// report prints the summary table and the verdicts.
func (rp *replayer) report(in *replayInput, verdicts []string) {
	s := &rp.stats
	tw := tabwriter.NewWriter(rp.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, n int64, detail string) { fmt.Fprintf(tw, "%s\t%d\t%s\n", name, n, detail) }
	sumMap := func(m map[string]int64) (int64, string) {
		var total int64
		keys := make([]string, 0, len(m))
		for k, n := range m {
			total += n
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
		return total, strings.Join(parts, ", ")
	}
	fmt.Fprintln(rp.out)
	row("ops replayed", s.ops, fmt.Sprintf("  refused %d, failed %d", s.refused, s.failed))
	row("compared", s.compared, "")
	nSkip, skipDetail := sumMap(s.skipped)
	if skipDetail != "" {
		skipDetail = "  " + skipDetail
	}
	row("not compared", nSkip, skipDetail)
	nDiv, _ := sumMap(s.byClass)
	row("divergences", nDiv, "")
	for _, c := range compare.Classes {
		if n, ok := s.byClass[c]; ok {
			row(c, n, "")
		}
	}
	row("not allowed", int64(len(s.notAllowed)), "")
	row("resyncs", s.resyncs, "")
	tw.Flush()
	if in.records > 0 {
		n, detail := sumMap(in.recorded)
		if detail != "" {
			detail = " (" + detail + ")"
		}
		fmt.Fprintf(rp.out, "recorded: %d ops, %d with a different result on the shadow%s; %s results the same as recorded: %d of %d\n",
			in.records, n, detail, rp.names[0], s.sameAsRecorded, s.recordedCompared)
		if s.outOfOrder > 0 {
			fmt.Fprintf(rp.out, "warning: %d record lines came more than %d lines late and ran out of admission order\n", s.outOfOrder, reorderWindow)
		}
	}
	if len(in.divs) > 0 {
		fmt.Fprintln(rp.out)
		for _, v := range verdicts {
			fmt.Fprintln(rp.out, v)
		}
	}
	for i, d := range s.notAllowed {
		if i == 5 {
			fmt.Fprintf(rp.out, "... and %d more\n", len(s.notAllowed)-i)
			break
		}
		b, _ := json.Marshal(d.Op)
		fmt.Fprintf(rp.out, "\nnot allowed: %s on %s (%s serving, %s mirror)\n%s", d.Class, b, d.Serving.Backend, d.Mirror.Backend, d.Diff)
	}
}

// replayProgress is a progress bar on stderr for long replays: drawn when
// stderr is a terminal, otherwise a line every 10 seconds.
type replayProgress struct {
	bar   *progressbar.ProgressBar
	total int64
	done  int64
	last  time.Time
	over  bool
}

func newReplayProgress(total int64) *replayProgress {
	p := &replayProgress{total: total, last: time.Now()}
	if total < 1000 {
		p.over = true // short: no progress report
		return p
	}
	if _, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS); err == nil {
		p.bar = progressbar.NewOptions64(total, progressbar.OptionSetDescription("replay"),
			progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	return p
}

func (p *replayProgress) add(n int64) {
	if p.over {
		return
	}
	p.done += n
	if p.bar != nil {
		p.bar.Add64(n)
		return
	}
	if time.Since(p.last) >= 10*time.Second {
		p.last = time.Now()
		fmt.Fprintf(os.Stderr, "replay: %d/%d ops\n", p.done, p.total)
	}
}

func (p *replayProgress) finish() {
	if p.over {
		return
	}
	p.over = true
	if p.bar != nil {
		p.bar.Finish()
	}
}

// replayPair is two bridges started for a replay.
type replayPair struct {
	dir     string
	tmp     bool // dir was created for this replay
	urls    [2]string
	bridges []*replayBridge
}

type replayBridge struct {
	backend, mnt, log string
	cmd               *exec.Cmd
	exited            chan struct{}
}

// startReplayBridges starts a fresh bazil primary and gofuse shadow on free
// loopback ports, with their mounts and stores under dir.
func startReplayBridges(ctx context.Context, dir string) (*replayPair, error) {
	pair := &replayPair{dir: dir}
	var err error
	if dir == "" {
		if pair.dir, err = os.MkdirTemp("", "lighthouse-replay-"); err != nil {
			return nil, err
		}
		pair.tmp = true
	} else if pair.dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	} else if err := os.MkdirAll(pair.dir, 0o755); err != nil {
		return nil, err
	}
	for i, b := range []struct{ backend, role string }{{"bazil", "primary"}, {"gofuse", "shadow"}} {
		br, url, err := startReplayBridge(ctx, pair.dir, b.backend, b.role)
		if err != nil {
			return nil, errors.Join(err, pair.stop())
		}
		pair.bridges = append(pair.bridges, br)
		pair.urls[i] = url
	}
	return pair, nil
}

func startReplayBridge(ctx context.Context, dir, backend, role string) (*replayBridge, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	br := &replayBridge{backend: backend, mnt: filepath.Join(dir, "mnt-"+backend),
		log: filepath.Join(dir, backend+".log"), exited: make(chan struct{})}
	data := filepath.Join(dir, "data-"+backend)
	if _, mounted := fusemount.Find(br.mnt); mounted {
		return nil, "", fmt.Errorf("%s is still mounted (another replay running in %s?)", br.mnt, dir)
	}
	if err := os.RemoveAll(data); err != nil { // fresh: nothing of an earlier replay
		return nil, "", err
	}
	logFile, err := os.Create(br.log)
	if err != nil {
		return nil, "", err
	}
	defer logFile.Close()
	br.cmd = exec.Command(exe, "bridge", "--backend", backend, "--role", role,
		"--listen", "127.0.0.1:0", "--mount", br.mnt, "--data", data, "--sync", "none")
	br.cmd.Env = append(os.Environ(), "LIGHTHOUSE_FUSE_FALLBACK=") // this backend or nothing
	br.cmd.Stdout = logFile
	br.cmd.Dir = "/"
	br.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stderr, err := br.cmd.StderrPipe()
	if err != nil {
		return nil, "", err
	}
	if err := br.cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start the %s bridge: %w", backend, err)
	}
	addr := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if strings.Contains(line, "bridge listening") {
				for _, f := range strings.Fields(line) {
					if a, ok := strings.CutPrefix(f, "addr="); ok {
						select {
						case addr <- a:
						default:
						}
					}
				}
			}
		}
	}()
	go func() { <-copied; br.cmd.Wait(); close(br.exited) }()
	select {
	case a := <-addr:
		return br, "http://" + a, nil
	case <-br.exited:
		log, _ := os.ReadFile(br.log)
		return nil, "", fmt.Errorf("the %s bridge exited before listening:\n%s", backend, strings.TrimSpace(string(log)))
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	return nil, "", errors.Join(fmt.Errorf("the %s bridge did not listen within 30s; see %s", backend, br.log), br.stop())
}

// stop ends the bridge (SIGTERM: it unmounts) and makes sure no mount is
// left: a hung bridge's connection is aborted and its mount detached.
func (br *replayBridge) stop() error {
	br.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-br.exited:
	case <-time.After(20 * time.Second):
		fusemount.Abort(br.mnt)
		br.cmd.Process.Kill()
		<-br.exited
	}
	if _, ok := fusemount.Find(br.mnt); ok {
		return errors.Join(fmt.Errorf("the %s bridge left a mount on %s (now detached)", br.backend, br.mnt), fusemount.Unmount(br.mnt))
	}
	return nil
}

func (pair *replayPair) stop() error {
	var errs []error
	for _, br := range pair.bridges {
		errs = append(errs, br.stop())
	}
	pair.bridges = nil
	return errors.Join(errs...)
}
