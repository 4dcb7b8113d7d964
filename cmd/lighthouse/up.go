package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/supervise"
	"github.com/lighthouse-fs/lighthouse/metrics"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/rollout"
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
has caught up, print the report and stop. Exit status 0 when no divergence
beyond the allowlist was found, 1 otherwise.

Each run starts from fresh stores and logs unless --keep. Stale mounts left
under DIR by a crashed run are cleaned first; at the end no mount is left.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUp(cmd.Context(), &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "dir", ".lighthouse", "working directory: stores, mount points, logs, record and divergence log")
	fl.BoolVar(&f.workload, "workload", false, "run the built-in workload, print the report and exit (0: pass, 1: divergences)")
	fl.IntVar(&f.ops, "ops", workload.DefaultOps, "workload: ops in all, the setup of the tree included")
	fl.IntVar(&f.clients, "clients", workload.DefaultClients, "workload: concurrent clients")
	fl.Uint64Var(&f.seed, "seed", 1, "workload: seed of the op sequence (the same seed sends the same ops)")
	fl.BoolVar(&f.front, "front", true, "serve the front FUSE mount on DIR/front")
	fl.BoolVar(&f.keep, "keep", false, "keep the stores and logs of the previous run instead of starting fresh")
	fl.StringVar(&f.proxyListen, "proxy-listen", "127.0.0.1:8764", "proxy API address")
	fl.StringVar(&f.admin, "admin", "127.0.0.1:9765", "proxy metrics and admin address")
	fl.StringVar(&f.primaryListen, "primary-listen", "127.0.0.1:8765", "primary bridge address")
	fl.StringVar(&f.shadowListen, "shadow-listen", "127.0.0.1:8766", "shadow bridge address")
	fl.Float64Var(&f.inject, "inject-divergence", 0, "make the shadow bridge corrupt this fraction of read results (tests of the FAIL verdict)")
	fl.DurationVar(&f.injectAfter, "inject-after", 0, "start the injection this long after the shadow bridge starts")
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
	primary := &bridgeProc{role: "primary", backend: "bazil", listen: f.primaryListen, dir: dir}
	shadow := &bridgeProc{role: "shadow", backend: "gofuse", listen: f.shadowListen, dir: dir, inject: f.inject, injectAfter: f.injectAfter}
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
	return runWorkload(ctx, f, lay, rp, bridges)
}

// runWorkload runs the built-in workload through the proxy's API, waits
// until the mirror has caught up and prints the report; the caller then
// stops everything.
func runWorkload(ctx context.Context, f *upFlags, lay upLayout, rp *runningProxy, bridges []*bridgeProc) error {
	res, werr := sendWorkload(ctx, "http://"+f.proxyListen, workload.Config{Clients: f.clients, Ops: f.ops, Seed: f.seed})
	if res.Ops == 0 {
		return werr
	}
	drained := waitDrained(ctx, func(context.Context) (proxy.Status, error) { return rp.p.Status(), nil }, 2*time.Minute)

	rep := &upReport{flags: f, lay: lay, res: res, werr: werr, drained: drained, stats: rp.p.Stats(), status: rp.p.Status(),
		rollout: rp.rollout.Status()}
	rep.bridges = bridges
	if text, err := httpGet(ctx, "http://"+f.admin+"/metrics"); err == nil {
		rep.serving = histogramQuantiles(text, "lighthouse_proxy_request_duration_seconds", "served_by")
	}
	rep.bridgeLat, rep.bridgeNice = map[string]quantiles{}, map[string]int{}
	for _, b := range bridges {
		if text, err := httpGet(ctx, b.url()+"/metrics"); err == nil {
			for k, q := range histogramQuantiles(text, metrics.OperationDuration, "backend") {
				rep.bridgeLat[k] = q
			}
			if n, ok := gaugeValue(text, "lighthouse_bridge_nice"); ok && n > 0 {
				rep.bridgeNice[b.backend] = int(n)
			}
		}
	}
	rep.write(os.Stdout)
	if pass, line := rep.verdict(); !pass {
		return errors.New(strings.TrimPrefix(line, "FAIL: "))
	}
	return nil
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

func httpGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return string(b), err
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

// ---- Latency from Prometheus histograms ----

// quantiles are p50/p95/p99 in seconds and the sample count.
type quantiles struct {
	n             float64
	p50, p95, p99 float64
}

// histogramQuantiles reads the histogram name from Prometheus text
// exposition and estimates its quantiles per value of label (summing the
// other labels), interpolating linearly inside a bucket as PromQL's
// histogram_quantile does.
func histogramQuantiles(text, name, label string) map[string]quantiles {
	buckets := map[string]map[float64]float64{} // label value -> le -> cumulative count
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+"_bucket{")
		if !ok {
			continue
		}
		end := strings.LastIndexByte(rest, '}')
		if end < 0 {
			continue
		}
		labels := parseLabels(rest[:end])
		fields := strings.Fields(rest[end+1:])
		if len(fields) == 0 {
			continue
		}
		v, err1 := strconv.ParseFloat(fields[0], 64)
		le, err2 := strconv.ParseFloat(labels["le"], 64) // "+Inf" parses as +Inf
		if err1 != nil || err2 != nil {
			continue
		}
		key := labels[label]
		if buckets[key] == nil {
			buckets[key] = map[float64]float64{}
		}
		buckets[key][le] += v
	}
	out := map[string]quantiles{}
	for key, m := range buckets {
		les := make([]float64, 0, len(m))
		for le := range m {
			les = append(les, le)
		}
		slices.Sort(les)
		total := m[les[len(les)-1]]
		if total == 0 {
			continue
		}
		q := func(phi float64) float64 {
			rank := phi * total
			prevLe, prevCum := 0.0, 0.0
			for _, le := range les {
				cum := m[le]
				if cum >= rank {
					if math.IsInf(le, 1) {
						return prevLe // beyond the last bound: the bound is all we know
					}
					if cum == prevCum {
						return le
					}
					return prevLe + (le-prevLe)*(rank-prevCum)/(cum-prevCum)
				}
				prevLe, prevCum = le, cum
			}
			return prevLe
		}
		out[key] = quantiles{n: total, p50: q(0.50), p95: q(0.95), p99: q(0.99)}
	}
	return out
}

// gaugeValue reads an unlabelled gauge from Prometheus text exposition.
func gaugeValue(text, name string) (float64, bool) {
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// parseLabels parses `a="x",b="y"` (values with \" \\ \n escapes).
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			break
		}
		name := strings.TrimSpace(strings.TrimPrefix(s[:eq], ","))
		var val strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				if s[i] == 'n' {
					val.WriteByte('\n')
					continue
				}
			}
			val.WriteByte(s[i])
		}
		out[name] = val.String()
		s = s[min(i+1, len(s)):]
		s = strings.TrimPrefix(s, ",")
	}
	return out
}

// ---- The report ----

type upReport struct {
	flags      *upFlags
	lay        upLayout
	res        workload.Result
	werr       error
	drained    bool
	stats      proxy.StatsView
	status     proxy.Status
	bridges    []*bridgeProc
	serving    map[string]quantiles // proxy histogram, by served_by
	bridgeLat  map[string]quantiles // bridge histograms, by backend
	bridgeNice map[string]int       // backends whose bridge yielded the CPU (only mirrored)
	rollout    rollout.Status
}

// verdict is the report's last line: PASS only with no divergence beyond
// the allowlist, every op answered, both libraries really mounted, and the
// mirror caught up and comparing.
func (r *upReport) verdict() (bool, string) {
	v := r.stats
	diverged := v.Divergent + v.ByClass[compare.ClassShadowError]
	var degraded []string
	for _, b := range r.bridges {
		if b.active != b.backend {
			degraded = append(degraded, fmt.Sprintf("the %s bridge runs %q, not %s", b.role, b.active, b.backend))
		}
	}
	switch {
	case diverged > 0:
		return false, fmt.Sprintf("FAIL: %d divergences (see %s)", diverged, rel(r.lay.divergences))
	case r.res.Errors > 0 || r.werr != nil:
		why := r.res.FirstError
		if r.werr != nil {
			why = r.werr.Error()
		}
		return false, fmt.Sprintf("FAIL: %d ops got no result from the proxy (%s; see %s)", r.res.Errors, why, rel(r.lay.proxyLog))
	case len(degraded) > 0:
		return false, fmt.Sprintf("FAIL: %s: no FUSE library in its results (see its log)", strings.Join(degraded, "; "))
	case !r.drained:
		return false, fmt.Sprintf("FAIL: the mirror did not catch up within 2 minutes (see %s)", rel(r.lay.proxyLog))
	case v.Ops > 0 && v.Compared*2 < v.Ops:
		return false, fmt.Sprintf("FAIL: only %d of %d ops were compared (skipped: %s)", v.Compared, v.Ops, counts(v.Skipped))
	}
	return true, "PASS: no divergence beyond the allowlist"
}

func (r *upReport) write(out io.Writer) {
	f, res, v := r.flags, &r.res, r.stats
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	section := func(title string) { fmt.Fprintf(w, "\n%s\n", title) }
	rate := float64(res.Ops) / math.Max(res.Elapsed.Seconds(), 1e-9)

	fmt.Fprintf(w, "Lighthouse harness report (%s)\n", rel(r.lay.dir))
	section("RUN")
	fmt.Fprintf(w, "  workload\tseed %d, %d clients, %d ops (%d of them building the tree) in %s: %.0f ops/s\n",
		f.seed, f.clients, res.Ops, res.SetupOps, res.Elapsed.Round(time.Millisecond), rate)
	fmt.Fprintf(w, "  clients\tHTTP+JSON, keep-alive, to the proxy API http://%s\n", f.proxyListen)
	for _, b := range r.bridges {
		fmt.Fprintf(w, "  %s bridge\t%s on %s, mount %s\n", b.role, b.active, b.url(), rel(b.mnt()))
	}

	section("TRAFFIC")
	fmt.Fprintf(w, "  ops sent\t%d\n", res.Ops)
	fmt.Fprintf(w, "  no result (transport, 4xx, 5xx)\t%d\n", res.Errors)
	fmt.Fprintf(w, "  errno results\t%s\t(races between clients and the workload's deliberate misses: normal)\n", countsInt(res.Errnos))
	fmt.Fprintf(w, "  ops the proxy served, by bridge\t%s\t(the workload's, and any from the front mount)\n", counts(v.ServedBy))
	pct := 0.0
	if v.Ops > 0 {
		pct = 100 * float64(v.Compared) / float64(v.Ops)
	}
	fmt.Fprintf(w, "  compared\t%d of %d (%.1f%%)\n", v.Compared, v.Ops, pct)
	fmt.Fprintf(w, "  skipped, by reason\t%s\n", counts(v.Skipped))
	fmt.Fprintf(w, "  state read-backs\t%d\n", v.Readbacks)
	fmt.Fprintf(w, "  readdir order differences\t%d\t(reported, not divergences)\n", v.OrderOnly)
	fmt.Fprintf(w, "  resyncs\t%d\n", v.Resyncs)
	fmt.Fprintf(w, "  max mirror queue\t%d ops, max lag %.2f s\n", v.MaxQueueDepth, v.MaxLagSeconds)
	if !r.drained {
		fmt.Fprintf(w, "  mirror\tNOT caught up when the report was taken\n")
	}
	w.Flush()

	section("ROLLOUT")
	ro := r.rollout.State
	fmt.Fprintf(w, "  phase at the end\t%s, go-fuse serves %.0f%% of paths\t(rolled back: %v)\n", ro.Phase, 100*ro.Weight, ro.RolledBack)
	if len(ro.History) == 0 {
		fmt.Fprintf(w, "  decisions\tnone\n")
	}
	for _, d := range ro.History {
		fmt.Fprintf(w, "  %s\t%s %.0f%% -> %.0f%%\t%s\n", d.Time.Format("15:04:05.000"), d.Action, 100*d.From, 100*d.To, d.Reason)
	}
	section("DIVERGENCES (class: count, first example)")
	classes := make([]string, 0, len(v.ByClass))
	for c := range v.ByClass {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	if len(classes) == 0 {
		fmt.Fprintf(w, "  none\n")
	}
	for _, c := range classes {
		note := ""
		if c == compare.ClassAllowed {
			note = " (allowlisted: not counted)"
		}
		fmt.Fprintf(w, "  %s\t%d%s\n", c, v.ByClass[c], note)
		if ex := v.Examples[c]; len(ex) > 0 {
			d := ex[0]
			fmt.Fprintf(w, "    first\t%s\n", describeOp(&d.Op))
			if d.Readback != nil {
				fmt.Fprintf(w, "    read back\t%s\n", describeOp(d.Readback))
			}
			fmt.Fprintf(w, "    %s vs %s\t%s\n", d.Serving.Backend, d.Mirror.Backend, shortDiff(d))
			if d.Allowed != "" {
				fmt.Fprintf(w, "    allowed\t%s\n", d.Allowed)
			}
		}
	}
	w.Flush()

	section("LATENCY\tp50\tp95\tp99\tn")
	ms := func(s float64) string { return fmt.Sprintf("%.2fms", s*1000) }
	dur := func(d time.Duration) string { return ms(d.Seconds()) }
	fmt.Fprintf(w, "  client round trip, all ops (workload, HTTP+JSON through the proxy)\t%s\t%s\t%s\t%d\n",
		dur(res.All.P50), dur(res.All.P95), dur(res.All.P99), res.All.N)
	for _, name := range sortedKeys(r.serving) {
		q := r.serving[name]
		fmt.Fprintf(w, "  serving path, served by %s (proxy histogram %s)\t%s\t%s\t%s\t%.0f\n",
			name, "lighthouse_proxy_request_duration_seconds", ms(q.p50), ms(q.p95), ms(q.p99), q.n)
	}
	for _, name := range sortedKeys(r.bridgeLat) {
		q := r.bridgeLat[name]
		fmt.Fprintf(w, "  %s bridge, every op on its mount (bridge histogram %s)\t%s\t%s\t%s\t%.0f\n",
			name, metrics.OperationDuration, ms(q.p50), ms(q.p95), ms(q.p99), q.n)
		if n := r.bridgeNice[name]; n > 0 {
			fmt.Fprintf(w, "    (it only mirrored, at nice %d: its times include waiting for the CPU, not only %s's own cost)\n", n, name)
		}
	}
	fmt.Fprintf(w, "  (histogram values are interpolated inside buckets; the client round trip is measured exactly)\n")
	w.Flush()

	section("BY OP (client round trip)\tcount\tp50\tp95\tp99\terrnos")
	for _, k := range res.Kinds() {
		p := res.Latency[k]
		fmt.Fprintf(w, "  %s\t%d\t%s\t%s\t%s\t%s\n", k, res.ByKind[k], dur(p.P50), dur(p.P95), dur(p.P99), countsInt(res.ErrnosByKind[k]))
	}
	w.Flush()

	_, line := r.verdict()
	fmt.Fprintf(out, "\nrecord: %s  divergences: %s  logs: %s, %s, %s\n", rel(r.lay.record), rel(r.lay.divergences),
		rel(r.lay.proxyLog), rel(r.bridges[0].logPath()), rel(r.bridges[1].logPath()))
	fmt.Fprintf(out, "VERDICT: %s\n", line)
}

func describeOp(op *fsop.Op) string {
	s := string(op.Kind)
	if op.Path != "" {
		s += " " + op.Path
	}
	if op.To != "" {
		s += " -> " + op.To
	}
	if op.Handle != 0 {
		s += fmt.Sprintf(" handle %d", op.Handle)
	}
	return s
}

// shortDiff is the divergence's diff on one line: where file data differs,
// otherwise the changed lines of the diff.
func shortDiff(d proxy.Divergence) string {
	if a, b := d.Serving.Result, d.Mirror.Result; a != nil && b != nil && a.Errno == b.Errno && !bytes.Equal(a.Data, b.Data) {
		i := 0
		for i < len(a.Data) && i < len(b.Data) && a.Data[i] == b.Data[i] {
			i++
		}
		return fmt.Sprintf("data: %d vs %d bytes, first difference at byte %d", len(a.Data), len(b.Data), i)
	}
	var parts []string
	for _, l := range strings.Split(d.Diff, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+") {
			parts = append(parts, strings.Join(strings.Fields(l), " "))
		}
	}
	s := strings.Join(parts, " | ")
	if s == "" {
		switch {
		case d.Mirror.Error != "":
			s = "mirror error: " + d.Mirror.Error
		case d.Serving.Error != "":
			s = "serving error: " + d.Serving.Error
		default:
			s = strings.Join(strings.Fields(d.Diff), " ")
		}
	}
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

func counts(m map[string]int64) string {
	mi := make(map[string]int, len(m))
	for k, n := range m {
		mi[k] = int(n)
	}
	return countsInt(mi)
}

// countsInt renders "a 3, b 1", largest first; "none" when empty.
func countsInt(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k, n := range m {
		if n > 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "none"
	}
	slices.SortFunc(keys, func(a, b string) int {
		if d := m[b] - m[a]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
