// Package harness runs the whole harness on one machine (`lighthouse
// up`): a bazil primary and a go-fuse shadow bridge as child processes,
// the front proxy with its front mount in this process, and, with a
// workload, the built-in workload through the proxy's API, the wait for
// the mirror to catch up, the report and its verdict. It also runs the
// workload against a proxy running elsewhere (`lighthouse workload`,
// Remote).
//
// # Order
//
// Nothing is started or removed while one of the ports is taken (another
// harness may be running). A stale mount on one of its own mount points is
// a crashed run's and is cleaned. Whatever happens after the first child
// starts, everything is stopped in order (the proxy's servers, the front
// mount, the proxy, then both bridges) and no mount is left.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/portowner"
	"github.com/lighthouse-fs/lighthouse/internal/supervise"
	"github.com/lighthouse-fs/lighthouse/noise"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/proxyserver"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// Options configure one run: `lighthouse up`'s flags.
type Options struct {
	Dir          string // working directory: stores, mounts, logs
	Workload     bool   // run the workload and stop; otherwise serve until ctx ends
	Ops, Clients int
	Seed         uint64
	Front, Keep  bool // serve the front mount; keep the previous run's stores and logs
	// FrontCache is the proxy's --front-cache: how long the kernel keeps
	// the front's names and attributes (0: nothing kept).
	FrontCache                  time.Duration
	ProxyListen, Admin          string
	PrimaryListen, ShadowListen string
	Inject                      float64 // the shadow bridge's --inject-divergence (tests, the rollback demo)
	InjectAfter                 time.Duration
	Phase                       string
	AdvanceAfter                int
	OpTimeout                   time.Duration // the proxy's --op-timeout (0: its default)
	MirrorShare                 string        // the proxy's --mirror-share ("": its default, auto)
	MinCoverage                 float64       // the verdict's coverage threshold
	AA                          string        // A/A: the library both bridges run ("": bazil primary, go-fuse shadow)
	JSON                        bool          // with Workload: print the verdict as JSON (verdict.RunJSON), notes on Err
	// HTML, if set, is the file the run's HTML page is written to when
	// it ends, finished or interrupted (series recorded during the run).
	HTML string
	// Exe is the lighthouse binary that serves the bridges.
	Exe string
	// Out gets the report or the list of addresses; Err the progress and
	// notes (os.Stdout and os.Stderr when nil).
	Out, Err io.Writer
}

// layout is where everything of one run lives.
type layout struct {
	dir                           string
	front                         string
	record, divergences, proxyLog string
	stateFile                     string
}

func newLayout(dir string) layout {
	return layout{dir: dir, front: filepath.Join(dir, "front"),
		record: filepath.Join(dir, "record.jsonl"), divergences: filepath.Join(dir, "divergences.jsonl"),
		proxyLog: filepath.Join(dir, "proxy.log"), stateFile: filepath.Join(dir, "rollout-state.json")}
}

// run is one harness being run.
type run struct {
	o       *Options
	lay     layout
	bridges []*bridgeProc
	mounts  []string // every mount point of ours: none may be left
	rp      *proxyserver.Server
	reg     *prometheus.Registry // the proxy's metrics, read back for the report
	stop    func() error         // stops the proxy's servers
	page    *pageRun             // what the --html page needs (nil without --html)
}

// notes is where the run's closing lines go: stderr when stdout carries
// the --json verdict.
func (o *Options) notes() io.Writer {
	if o.JSON {
		return o.Err
	}
	return o.Out
}

// Check refuses the combinations of options `lighthouse up` does not run,
// with a usage error.
func (o *Options) Check() error {
	if o.JSON && (!o.Workload || o.AA != "") {
		return verdict.Usage(errors.New("--json needs --workload and does not combine with --aa"))
	}
	if o.AA != "" && o.AA != "bazil" && o.AA != "gofuse" {
		return verdict.Usage(fmt.Errorf("--aa %q: want bazil or gofuse", o.AA))
	}
	if _, _, err := proxy.ParseShare(o.MirrorShare); err != nil {
		return verdict.Usage(err)
	}
	return nil
}

// Run is `lighthouse up`: it checks o and runs Up; an A/A workload run
// that got to a verdict then prints the noise floor (NoiseFloor), read
// once the proxy has stopped.
func Run(ctx context.Context, o Options) error {
	if err := o.Check(); err != nil {
		return err
	}
	err := Up(ctx, o)
	if st := verdict.Status(err); o.AA != "" && o.Workload && (st == verdict.ExitPass || st == verdict.ExitFail || st == verdict.ExitInconclusive) {
		err = errors.Join(err, NoiseFloor(o))
	}
	return err
}

// Up runs the harness; with o.Workload its error is the verdict's.
func Up(ctx context.Context, o Options) (err error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Err == nil {
		o.Err = os.Stderr
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := checkHTML(o.HTML); err != nil {
		return err
	}
	r := &run{o: &o, lay: newLayout(dir)}
	started := time.Now()
	// Runs last: a run that failed before the proxy started recorded
	// nothing, and its page says only that.
	defer func() { err = r.startFailurePage(started, err) }()
	r.bridges = newBridges(&o, dir)
	r.mounts = []string{r.lay.front, r.bridges[0].mnt(), r.bridges[1].mnt()}
	if err := r.prepare(); err != nil {
		return err
	}
	restoreLog, err := r.logTo()
	if err != nil {
		return err
	}
	defer restoreLog()
	// Whatever happens from here on, everything is stopped in order and
	// no mount is left under dir.
	defer func() { err = r.stopAll(err) }()
	if err := r.startBridges(ctx); err != nil {
		return err
	}
	serveErr, err := r.startProxy(ctx)
	if err != nil {
		return err
	}
	r.startRecording()
	if o.Workload {
		return r.runWorkload(ctx)
	}
	r.printWhere()
	return r.serve(ctx, serveErr)
}

// newBridges describes the two bridges of a run under dir: bazil primary
// and go-fuse shadow, or o.AA on both sides.
func newBridges(o *Options, dir string) []*bridgeProc {
	primaryLib, shadowLib := "bazil", "gofuse"
	if o.AA != "" {
		primaryLib, shadowLib = o.AA, o.AA
	}
	return []*bridgeProc{
		{role: "primary", backend: primaryLib, listen: o.PrimaryListen, dir: dir},
		{role: "shadow", backend: shadowLib, listen: o.ShadowListen, dir: dir, inject: o.Inject, injectAfter: o.InjectAfter}}
}

// startFailurePage writes the --html page of a run that failed (err)
// before the proxy started, and returns err with the page's own error.
func (r *run) startFailurePage(started time.Time, err error) error {
	o := r.o
	if err == nil || o.HTML == "" || r.page != nil {
		return err
	}
	if herr := writeStartFailure(o.HTML, started, err); herr != nil {
		return errors.Join(err, herr)
	}
	fmt.Fprintf(o.notes(), "html report: %s\n", o.HTML)
	return err
}

// stopAll stops everything in order, checks that no mount is left, writes
// the --html page, and returns err with what failed on the way.
func (r *run) stopAll(err error) error {
	o := r.o
	note := o.notes()
	r.stopRecording()
	if serr := shutdown(r.rp, r.stop, r.bridges, r.mounts); serr != nil {
		err = errors.Join(err, serr)
	} else if r.bridges[0].proc != nil {
		what := "proxy, front mount"
		if !o.Front {
			what = "proxy"
		}
		fmt.Fprintf(note, "stopped: %s, both bridges; no FUSE mount left on %s/{front,primary/mnt,shadow/mnt}\n", what, rel(r.lay.dir))
	}
	if r.page != nil {
		if herr := r.writeHTML(err); herr != nil {
			err = errors.Join(err, herr)
		} else {
			fmt.Fprintf(note, "html report: %s\n", o.HTML)
		}
	}
	return err
}

// serve serves until ctx ends (nil), the proxy stops or a bridge exits.
func (r *run) serve(ctx context.Context, serveErr chan error) error {
	select {
	case <-ctx.Done():
		fmt.Fprintln(r.o.Out, "\nstopping...")
		return nil
	case err := <-serveErr:
		serveErr <- err
		return fmt.Errorf("proxy stopped: %w", err)
	case b := <-exitedBridge(r.bridges):
		return fmt.Errorf("%s bridge exited: %w", b.role, b.exitError())
	}
}

// NoiseFloor reads the record log of an A/A run, once the proxy has
// stopped and flushed it, and prints the noise floor with the comparator
// and allowlist rules it does not justify.
func NoiseFloor(o Options) error {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	fh, err := os.Open(newLayout(dir).record)
	if err != nil {
		return fmt.Errorf("A/A noise floor: %w", err)
	}
	defer fh.Close()
	floor, err := noise.Analyze(fh, compare.DefaultAllowlist())
	if err != nil {
		return fmt.Errorf("A/A noise floor: %w", err)
	}
	floor.WriteText(o.Out, o.AA)
	return nil
}

// prepare checks the ports, cleans the stale mounts of a crashed run and,
// unless Keep, the previous run's stores and logs.
func (r *run) prepare() error {
	o := r.o
	ports := []struct{ what, addr string }{
		{"proxy API", o.ProxyListen}, {"proxy admin", o.Admin},
		{"primary bridge", o.PrimaryListen}, {"shadow bridge", o.ShadowListen}}
	for _, p := range ports {
		if err := portFree(p.addr); err != nil {
			by := ""
			if owner, ok := portowner.Of(p.addr); ok {
				by = " by " + owner.String()
			}
			return verdict.WithStatus(verdict.ExitInfra, fmt.Errorf("%s port %s is in use%s: another `lighthouse up` (or a bridge or proxy) may be running; stop it first, or give `up` other ports (--listen, --admin, --primary-listen, --shadow-listen) (%w)",
				p.what, p.addr, by, err))
		}
	}
	// Nothing of ours is running (the ports are free): a mount left on our
	// mount points is a crashed run's. (Only ours: `lighthouse compat`
	// may have live mounts elsewhere under DIR.)
	for _, m := range supervise.Mounted(r.mounts...) {
		fmt.Fprintf(o.Err, "cleaning a stale mount left by a previous run: %s\n", m)
		if err := fusemount.CleanStale(m); err != nil {
			return err
		}
	}
	if o.Keep {
		return nil
	}
	var stale []string
	for _, b := range r.bridges {
		stale = append(stale, b.data(), b.logPath())
	}
	stale = append(stale, r.lay.record, r.lay.divergences, r.lay.proxyLog, r.lay.stateFile)
	for _, p := range stale {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("start fresh: %w", err)
		}
	}
	return nil
}

// logTo sends this process's log (the proxy runs here) to the proxy log,
// not over the report; interactive runs also show warnings on Err.
func (r *run) logTo() (restore func(), err error) {
	logFile, err := os.OpenFile(r.lay.proxyLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	var handler slog.Handler = slog.NewTextHandler(logFile, nil)
	if !r.o.Workload {
		handler = slog.NewMultiHandler(handler, slog.NewTextHandler(r.o.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	prev := slog.Default()
	slog.SetDefault(slog.New(handler))
	return func() { slog.SetDefault(prev); logFile.Close() }, nil
}

// startBridges starts both bridges and waits until both are ready.
func (r *run) startBridges(ctx context.Context) error {
	for _, b := range r.bridges {
		if err := b.start(r.o.Exe); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	readyErr := make([]error, len(r.bridges))
	for i, b := range r.bridges {
		wg.Go(func() { readyErr[i] = b.waitReady(ctx, 60*time.Second) })
	}
	wg.Wait()
	return errors.Join(readyErr...)
}

// startProxy starts the proxy over both bridges and serves it; serveErr
// gets the servers' end.
func (r *run) startProxy(ctx context.Context) (serveErr chan error, err error) {
	o := r.o
	pf := proxyserver.DefaultConfig()
	pf.Listen, pf.Admin = o.ProxyListen, o.Admin
	pf.PrimaryURL, pf.ShadowURL = r.bridges[0].url(), r.bridges[1].url()
	pf.Record, pf.DivergenceLog = r.lay.record, r.lay.divergences
	pf.Phase, pf.AdvanceAfter, pf.OpTimeout = o.Phase, o.AdvanceAfter, o.OpTimeout
	if o.MirrorShare != "" {
		pf.MirrorShare = o.MirrorShare
	}
	pf.AA = o.AA != ""
	pf.StateFile = r.lay.stateFile
	if o.Front {
		pf.Mount = r.lay.front // front.Mount cleans a stale mount there too
		pf.FrontCache = o.FrontCache
	}
	reg := proxyserver.NewRegistry()
	if r.rp, err = proxyserver.Start(ctx, &pf, reg); err != nil {
		return nil, err
	}
	r.reg = reg
	serveCtx, cancelServe := context.WithCancel(ctx)
	serveErr = make(chan error, 1)
	go func() { serveErr <- r.rp.Serve(serveCtx, reg, o.ProxyListen, o.Admin) }()
	r.stop = func() error {
		cancelServe()
		return <-serveErr
	}
	if err := waitHTTP(ctx, "http://"+o.ProxyListen+"/healthz", serveErr, 10*time.Second); err != nil {
		return nil, fmt.Errorf("proxy on %s: %w", o.ProxyListen, err)
	}
	return serveErr, nil
}
