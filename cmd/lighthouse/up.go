package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/contract"
	"github.com/lighthouse-fs/lighthouse/internal/supervise"
	"github.com/lighthouse-fs/lighthouse/metrics"
	"github.com/lighthouse-fs/lighthouse/noise"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/report"
	"github.com/lighthouse-fs/lighthouse/verdict"
	"github.com/lighthouse-fs/lighthouse/workload"
)

// upFlags configure `lighthouse up`. The addresses are the contract ports;
// they are flags (hidden) only so that a test can run beside a real one.
type upFlags struct {
	dir                         string
	workload                    bool
	ops, clients                int
	seed                        uint64
	front, keep                 bool
	proxyListen, admin          string
	primaryListen, shadowListen string
	inject                      float64 // the shadow bridge's --inject-divergence (tests, the rollback demo)
	injectAfter                 time.Duration
	phase                       string
	advanceAfter                int
	minCoverage                 float64
	aa                          string // A/A: the library both bridges run
}

func upCmd() *cobra.Command {
	var f upFlags
	cmd := &cobra.Command{
		Use:   "up [--dir .lighthouse] [--workload [--ops N] [--clients N] [--seed N]] [--front] [--keep]",
		Short: "Run the whole harness on this machine: both bridges, the proxy, the front mount; optionally the built-in workload and its report",
		Long: `Start a primary bridge (bazil.org/fuse, :8765) and a shadow bridge (go-fuse,
:8766) as child processes, and the front proxy in this process (API :8764,
metrics and admin :9765, front FUSE mount DIR/front). Every op sent to the
proxy is served by the primary, mirrored to the shadow in the same conflict
order, and compared.

Without --workload, print where everything is and serve until Ctrl-C.

With --workload, run the built-in workload (people editing a source tree:
clients of the proxy's JSON API over keep-alive HTTP), wait until the mirror
has caught up, print the report and stop. The verdict: PASS (exit 0) when no
divergence beyond the allowlist was found, every op was answered and at
least --min-coverage of the ops were compared; FAIL (exit 1) on divergences
or ops without an answer; INCONCLUSIVE (exit 3) when too few ops were
compared; exit 4 when the harness failed (a bridge did not start or runs
without its FUSE library, a port is taken, the mirror never caught up).

Each run starts from fresh stores and logs unless --keep. Stale mounts left
under DIR by a crashed run are cleaned first; at the end no mount is left.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.aa != "" && f.aa != "bazil" && f.aa != "gofuse" {
				return verdict.Usage(fmt.Errorf("--aa %q: want bazil or gofuse", f.aa))
			}
			err := runUp(cmd.Context(), &f)
			if st := verdict.Status(err); f.aa != "" && f.workload && (st == verdict.ExitPass || st == verdict.ExitFail || st == verdict.ExitInconclusive) {
				err = errors.Join(err, reportNoiseFloor(f))
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "dir", contract.Dir, "working directory: stores, mount points, logs, record and divergence log")
	fl.BoolVar(&f.workload, "workload", false, "run the built-in workload, print the report and exit (0: PASS, 1: FAIL, 3: INCONCLUSIVE)")
	fl.Float64Var(&f.minCoverage, "min-coverage", verdict.DefaultMinCoverage, "workload: the share of ops that must be compared for a PASS; below it the verdict is INCONCLUSIVE")
	fl.IntVar(&f.ops, "ops", contract.Ops, "workload: ops in all, the setup of the tree included")
	fl.IntVar(&f.clients, "clients", contract.Clients, "workload: concurrent clients")
	fl.Uint64Var(&f.seed, "seed", contract.Seed, "workload: seed of the op sequence (the same seed sends the same ops)")
	fl.BoolVar(&f.front, "front", true, "serve the front FUSE mount on DIR/front")
	fl.BoolVar(&f.keep, "keep", false, "keep the stores and logs of the previous run instead of starting fresh")
	fl.StringVar(&f.proxyListen, "proxy-listen", contract.ProxyAddr, "proxy API address")
	fl.StringVar(&f.admin, "admin", contract.AdminAddr, "proxy metrics and admin address")
	fl.StringVar(&f.primaryListen, "primary-listen", contract.PrimaryAddr, "primary bridge address")
	fl.StringVar(&f.shadowListen, "shadow-listen", contract.ShadowAddr, "shadow bridge address")
	fl.Float64Var(&f.inject, "inject-divergence", 0, "make the shadow bridge corrupt this fraction of read results (tests of the FAIL verdict)")
	fl.DurationVar(&f.injectAfter, "inject-after", 0, "start the injection this long after the shadow bridge starts")
	fl.StringVar(&f.aa, "aa", "", "A/A run: both bridges run this library (bazil or gofuse), no allowlist applies, and the report ends with the noise floor and the rules it does not justify")
	fl.StringVar(&f.phase, "phase", "shadow", "rollout phase to start in: shadow, canary, progressive, full")
	fl.IntVar(&f.advanceAfter, "advance-after", 0, "advance one rollout step after this many quiet candidate ops (0: never)")
	for _, name := range []string{"proxy-listen", "admin", "primary-listen", "shadow-listen", "inject-divergence", "inject-after"} {
		_ = fl.MarkHidden(name)
	}
	return cmd
}

// upLayout is where everything of one `up` lives.
type upLayout struct {
	dir                           string
	front                         string
	record, divergences, proxyLog string
}

func newUpLayout(dir string) upLayout {
	return upLayout{dir: dir, front: filepath.Join(dir, "front"),
		record: filepath.Join(dir, "record.jsonl"), divergences: filepath.Join(dir, "divergences.jsonl"),
		proxyLog: filepath.Join(dir, "proxy.log")}
}

func runUp(ctx context.Context, f *upFlags) (err error) {
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return err
	}
	lay := newUpLayout(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ports := []struct{ what, addr string }{
		{"proxy API", f.proxyListen}, {"proxy admin", f.admin},
		{"primary bridge", f.primaryListen}, {"shadow bridge", f.shadowListen}}
	for _, p := range ports {
		if err := portFree(p.addr); err != nil {
			return fmt.Errorf("%s port %s is in use: another `lighthouse up` (or a bridge or proxy) may be running; stop it first (%w)", p.what, p.addr, err)
		}
	}
	primaryLib, shadowLib := "bazil", "gofuse"
	if f.aa != "" {
		primaryLib, shadowLib = f.aa, f.aa
	}
	primary := &bridgeProc{role: "primary", backend: primaryLib, listen: f.primaryListen, dir: dir}
	shadow := &bridgeProc{role: "shadow", backend: shadowLib, listen: f.shadowListen, dir: dir, inject: f.inject, injectAfter: f.injectAfter}
	bridges := []*bridgeProc{primary, shadow}
	mountPoints := []string{lay.front, primary.mnt(), shadow.mnt()}
	// Nothing of ours is running (the ports are free): a mount left on our
	// mount points is a crashed run's. (Only ours: `lighthouse compat`
	// may have live mounts elsewhere under DIR.)
	for _, m := range supervise.Mounted(mountPoints...) {
		fmt.Fprintf(os.Stderr, "cleaning a stale mount left by a previous run: %s\n", m)
		if err := fusemount.CleanStale(m); err != nil {
			return err
		}
	}
	if !f.keep {
		var stale []string
		for _, b := range bridges {
			stale = append(stale, b.data(), b.logPath())
		}
		stale = append(stale, lay.record, lay.divergences, lay.proxyLog)
		for _, p := range stale {
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("start fresh: %w", err)
			}
		}
	}

	// The proxy runs here: its log goes to a file, not over the report.
	logFile, err := os.OpenFile(lay.proxyLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	var handler slog.Handler = slog.NewTextHandler(logFile, nil)
	if !f.workload {
		handler = slog.NewMultiHandler(handler, slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	prevLogger := slog.Default()
	slog.SetDefault(slog.New(handler))
	defer slog.SetDefault(prevLogger)

	// Whatever happens from here on, everything is stopped in order and
	// no mount is left under dir.
	var rp *runningProxy
	var stopServe func() error
	defer func() {
		if serr := shutdown(rp, stopServe, bridges, mountPoints); serr != nil {
			err = errors.Join(err, serr)
		} else if primary.proc != nil {
			what := "proxy, front mount"
			if !f.front {
				what = "proxy"
			}
			fmt.Printf("stopped: %s, both bridges; no FUSE mount left on %s/{front,primary/mnt,shadow/mnt}\n", what, rel(dir))
		}
	}()

	for _, b := range bridges {
		if err := b.start(); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	readyErr := make([]error, len(bridges))
	for i, b := range bridges {
		wg.Go(func() { readyErr[i] = b.waitReady(ctx, 60*time.Second) })
	}
	wg.Wait()
	if err := errors.Join(readyErr...); err != nil {
		return err
	}

	var pf proxyFlags
	pf.register(&cobra.Command{}) // the proxy's own defaults
	pf.listen, pf.admin = f.proxyListen, f.admin
	pf.primaryURL, pf.shadowURL = primary.url(), shadow.url()
	pf.record, pf.divergenceLog = lay.record, lay.divergences
	pf.phase, pf.advanceAfter = f.phase, f.advanceAfter
	pf.aa = f.aa != ""
	pf.stateFile = filepath.Join(lay.dir, "rollout-state.json")
	if !f.keep {
		os.Remove(pf.stateFile)
	}
	if f.front {
		pf.mount = lay.front // front.Mount cleans a stale mount there too
	}
	reg := newRegistry()
	if rp, err = startProxy(ctx, &pf, reg); err != nil {
		return err
	}
	serveCtx, cancelServe := context.WithCancel(ctx)
	serveErr := make(chan error, 1)
	go func() { serveErr <- serveProxy(serveCtx, rp, reg, f.proxyListen, f.admin) }()
	stopServe = func() error {
		cancelServe()
		return <-serveErr
	}
	if err := waitHTTP(ctx, "http://"+f.proxyListen+"/healthz", serveErr, 10*time.Second); err != nil {
		return fmt.Errorf("proxy on %s: %w", f.proxyListen, err)
	}

	if !f.workload {
		printWhere(f, lay, bridges)
		select {
		case <-ctx.Done():
			fmt.Println("\nstopping...")
			return nil
		case err := <-serveErr:
			serveErr <- err
			return fmt.Errorf("proxy stopped: %w", err)
		case b := <-exitedBridge(bridges):
			return fmt.Errorf("%s bridge exited: %w", b.role, b.exitError())
		}
	}
	return runWorkload(ctx, f, lay, rp, reg, bridges)
}

// reportNoiseFloor reads the record log of an A/A run, once the proxy has
// stopped and flushed it, and prints the noise floor with the comparator
// and allowlist rules it does not justify.
func reportNoiseFloor(f upFlags) error {
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return err
	}
	fh, err := os.Open(newUpLayout(dir).record)
	if err != nil {
		return fmt.Errorf("A/A noise floor: %w", err)
	}
	defer fh.Close()
	floor, err := noise.Analyze(fh, compare.DefaultAllowlist())
	if err != nil {
		return fmt.Errorf("A/A noise floor: %w", err)
	}
	floor.WriteText(os.Stdout, f.aa)
	return nil
}

// drainLimit is how long `up` waits for the mirror to catch up after the
// workload's last op.
const drainLimit = 2 * time.Minute

// runWorkload runs the built-in workload through the proxy's API, waits
// until the mirror has caught up, prints the report and returns its
// verdict; the caller then stops everything.
func runWorkload(ctx context.Context, f *upFlags, lay upLayout, rp *runningProxy, reg prometheus.Gatherer, bridges []*bridgeProc) error {
	res, werr := sendWorkload(ctx, "http://"+f.proxyListen, workload.Config{Clients: f.clients, Ops: f.ops, Seed: f.seed})
	if res.Ops == 0 {
		return werr
	}
	drained := waitDrained(ctx, func(context.Context) (proxy.Status, error) { return rp.p.Status(), nil }, drainLimit)

	rep := &report.Harness{Dir: rel(lay.dir), Seed: f.seed, Clients: f.clients, ClientAPI: f.proxyListen,
		Workload: res, Drained: drained, Stats: rp.p.Stats(), Rollout: rp.rollout.Status(),
		Record: rel(lay.record), Divergences: rel(lay.divergences), ProxyLog: rel(lay.proxyLog)}
	run := verdict.Counted(rp.p.Status())
	run.SetClients(res, werr)
	run.Drained, run.DrainLimit = drained, drainLimit
	for _, b := range bridges {
		rep.Bridges = append(rep.Bridges, report.Bridge{Role: b.role, Backend: b.backend, Active: b.active,
			URL: b.url(), Mount: rel(b.mnt()), Log: rel(b.logPath())})
		if b.active != b.backend {
			run.Degraded = append(run.Degraded, fmt.Sprintf("the %s bridge runs %q, not %s", b.role, b.active, b.backend))
		}
	}
	rep.Verdict = verdict.Judge(run, verdict.Rules{MinCoverage: f.minCoverage, DivergenceHint: "see " + rel(lay.divergences),
		ErrorHint: "see " + rel(lay.proxyLog), DrainHint: "see " + rel(lay.proxyLog)})
	readLatency(ctx, rep, reg, bridges)
	rep.WriteText(os.Stdout)
	return rep.Verdict.Err()
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
func sendWorkload(ctx context.Context, target string, cfg workload.Config) (workload.Result, error) {
	fmt.Fprintf(os.Stderr, "workload: %d ops from %d clients (seed %d) through %s\n", cfg.Ops, cfg.Clients, cfg.Seed, target)
	bar := newProgress(cfg.Ops)
	res, err := workload.Run(ctx, workload.HTTPExec(target), cfg, bar.set)
	bar.finish()
	if ctx.Err() != nil {
		return workload.Result{}, errors.New("interrupted")
	}
	if err != nil && res.Ops == 0 {
		return workload.Result{}, err
	}
	fmt.Fprintln(os.Stderr, "waiting for the mirror to catch up...")
	return res, err
}

// ---- Bridges: child processes ----

// bridgeProc is a `lighthouse bridge` child process. It runs in its own
// process group, so a terminal's Ctrl-C reaches only `up`, which stops the
// proxy first and then the bridges; Pdeathsig stops it if `up` dies.
type bridgeProc struct {
	role, backend, listen, dir string
	inject                     float64
	injectAfter                time.Duration
	active                     string // what /readyz reported

	proc *supervise.Proc
}

func (b *bridgeProc) url() string     { return "http://" + b.listen }
func (b *bridgeProc) mnt() string     { return filepath.Join(b.dir, b.role, "mnt") }
func (b *bridgeProc) data() string    { return filepath.Join(b.dir, b.role, "data") }
func (b *bridgeProc) logPath() string { return filepath.Join(b.dir, b.role+".log") }

func (b *bridgeProc) start() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"bridge", "--backend", b.backend, "--role", b.role, "--listen", b.listen, "--mount", b.mnt(), "--data", b.data()}
	if b.inject > 0 {
		args = append(args, "--inject-divergence", strconv.FormatFloat(b.inject, 'g', -1, 64), "--inject-after", b.injectAfter.String())
	}
	b.proc, err = supervise.Start(supervise.Config{Name: fmt.Sprintf("the %s bridge (%s) on %s", b.role, b.backend, b.listen),
		Path: exe, Args: args, Log: b.logPath(), AppendLog: true, Mounts: []string{b.mnt()}, OwnGroup: true})
	return err
}

// waitReady waits for /readyz (a probe file written, read back and removed
// through the bridge's mount) to answer 200.
func (b *bridgeProc) waitReady(ctx context.Context, limit time.Duration) error {
	body, err := b.proc.WaitHTTP(ctx, b.url()+"/readyz", limit)
	if err != nil {
		if !b.proc.Running() {
			return b.exitError()
		}
		return err
	}
	var ready struct {
		Active string `json:"active_backend"`
	}
	json.Unmarshal(body, &ready)
	b.active = ready.Active
	return nil
}

// exitError explains why the bridge exited, from the end of its log.
func (b *bridgeProc) exitError() error {
	if strings.Contains(b.proc.Tail(12), "address already in use") {
		return fmt.Errorf("the %s bridge could not listen on %s: the port is in use; another `lighthouse up` (or a bridge) may be running; see %s", b.role, b.listen, b.logPath())
	}
	return b.proc.ExitError()
}

// bridgeGrace is how long a bridge has after SIGTERM to finish its running
// ops, close its store and unmount.
const bridgeGrace = 45 * time.Second

// exitedBridge reports the first bridge that exits.
func exitedBridge(bridges []*bridgeProc) <-chan *bridgeProc {
	ch := make(chan *bridgeProc, len(bridges))
	for _, b := range bridges {
		go func() { <-b.proc.Exited(); ch <- b }()
	}
	return ch
}

// shutdown stops the proxy's servers, the proxy (its front mount first),
// then both bridges, and checks that none of mountPoints is still mounted.
func shutdown(rp *runningProxy, stopServe func() error, bridges []*bridgeProc, mountPoints []string) error {
	var errs []error
	if stopServe != nil {
		errs = append(errs, stopServe())
	}
	if rp != nil {
		errs = append(errs, rp.close())
	}
	var wg sync.WaitGroup
	stopErr := make([]error, len(bridges))
	for i, b := range bridges {
		if b.proc != nil {
			wg.Go(func() { stopErr[i] = b.proc.Stop(bridgeGrace) })
		}
	}
	wg.Wait()
	errs = append(errs, stopErr...)
	left, err := supervise.Detach(mountPoints...)
	if errs = append(errs, err); len(left) > 0 {
		errs = append(errs, fmt.Errorf("FUSE mounts left after shutdown (now detached): %s", strings.Join(left, ", ")))
	}
	return errors.Join(errs...)
}

func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

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

func printWhere(f *upFlags, lay upLayout, bridges []*bridgeProc) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "Lighthouse is up: the proxy serves every op from the primary bridge and mirrors it to the shadow. Ctrl-C stops everything.\n\n")
	fmt.Fprintf(w, "  proxy API\thttp://%s\tPOST /v1/ops (docs/protocol.md)\n", f.proxyListen)
	fmt.Fprintf(w, "  admin, metrics\thttp://%s\t/metrics  /admin/status\n", f.admin)
	if f.front {
		fmt.Fprintf(w, "  front mount\t%s\tprograms run here generate mirrored traffic too\n", rel(lay.front))
	}
	for _, b := range bridges {
		fmt.Fprintf(w, "  %s bridge\t%s\t%s, mount %s, log %s\n", b.role, b.url(), b.active, rel(b.mnt()), rel(b.logPath()))
	}
	fmt.Fprintf(w, "  proxy log\t%s\t\n", rel(lay.proxyLog))
	fmt.Fprintf(w, "  record\t%s\tevery op and both results\n", rel(lay.record))
	fmt.Fprintf(w, "  divergences\t%s\t\n", rel(lay.divergences))
	w.Flush()
	fmt.Println("\nTry:")
	if f.front {
		fmt.Printf("  ls %s && echo hello > %s/hello.txt && cat %s/hello.txt\n", rel(lay.front), rel(lay.front), rel(lay.front))
	}
	fmt.Printf("  curl -sS -X POST %s/v1/ops -d '{\"op\": \"readdir\", \"path\": \".\"}'\n", f.proxyListen)
	fmt.Printf("  curl -sS -X POST %s/v1/ops -d '{\"op\": \"mkdir\", \"path\": \"notes\"}'\n", f.proxyListen)
	fmt.Printf("  curl -sS %s/admin/status\n", f.admin)
	fmt.Printf("  curl -sS %s/metrics | grep ^lighthouse_\n", f.admin)
}

// ---- Progress ----

// progress is a bar on a terminal, a line every 10% otherwise.
type progress struct {
	bar   *progressbar.ProgressBar
	total int
	tenth int
}

func newProgress(total int) *progress {
	p := &progress{total: total}
	if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetDescription("workload"),
			progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("ops"), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	return p
}

func (p *progress) set(done int) {
	if p.bar != nil {
		p.bar.Set(done)
		return
	}
	if t := done * 10 / max(p.total, 1); t > p.tenth {
		p.tenth = t
		fmt.Fprintf(os.Stderr, "workload: %d/%d ops\n", done, p.total)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
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
