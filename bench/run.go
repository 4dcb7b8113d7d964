package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/internal/progress"
)

// runner is one run: its targets and what it measured.
type runner struct {
	cfg      Config
	env      *env
	children map[string]*child // by name: bazil-mount, gofuse-bridge, ...
	targets  []*target
	tmpdir   string // the tmpdir target's directory

	mu      sync.Mutex
	samples map[sampleKey]*sample

	done  atomic.Int64 // measured and warm-up ops, for the progress bar
	phase atomic.Value // string: what runs now
}

type sampleKey struct {
	target, op string
	conc       int
}

// sample is what one target measured for one op type at one concurrency.
type sample struct {
	durs  []time.Duration
	wall  time.Duration // the slices' wall time, summed
	drain time.Duration // proxy-mirror: waiting for the mirror after the slices
	bytes int64         // per op
}

func (r *runner) sample(t *target, s *opSpec, conc int) *sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.samples == nil {
		r.samples = map[sampleKey]*sample{}
	}
	k := sampleKey{t.name, s.name, conc}
	if r.samples[k] == nil {
		r.samples[k] = &sample{bytes: s.bytes}
		if s.seq {
			r.samples[k].bytes = r.cfg.SeqBlock
		}
	}
	return r.samples[k]
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	rep := &Report{Version: reportVersion, Started: time.Now().UTC(), Machine: thisMachine(), Settings: settingsOf(cfg)}
	stopProfile, err := r.startProfile()
	if err != nil {
		return nil, err
	}
	stopProgress := r.startProgress()
	for _, conc := range cfg.Concurrency {
		if err = r.runLevel(ctx, conc); err != nil {
			break
		}
	}
	stopProgress()
	if perr := stopProfile(); err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}
	rep.Settings.Tmpdir = r.tmpdir
	rep.Results = r.results()
	rep.Ratios = Ratios(rep.Results)
	for _, t := range r.targets {
		if t.proxy != nil {
			v := t.proxy.Stats()
			rep.Proxies = append(rep.Proxies, ProxyStats{Target: t.name, Ops: v.Ops, Compared: v.Compared,
				Divergent: t.divergences.Load(), Readbacks: v.Readbacks, Resyncs: v.Resyncs, Skipped: v.Skipped})
		}
	}
	if cfg.Lag > 0 {
		if rep.Lag, err = r.runLag(ctx); err != nil {
			return nil, fmt.Errorf("lagging-shadow scenario: %w", err)
		}
	}
	return rep, nil
}

// runLevel measures every op on every target with conc clients.
func (r *runner) runLevel(ctx context.Context, conc int) error {
	cfg := r.cfg
	specs := selectedSpecs(cfg.Ops)
	for _, t := range r.targets {
		lv := newLevel(t.name, t.idx, conc, cfg.SeqBlock)
		t.levels[conc] = lv
		r.phase.Store(fmt.Sprintf("c=%d setup %s", conc, t.name))
		if err := r.setup(ctx, t, lv, specs); err != nil {
			return fmt.Errorf("%s, %d clients: set up: %w", t.name, conc, err)
		}
	}
	rounds := cfg.rounds(conc)
	for _, s := range specs {
		if s.seq {
			for _, t := range r.targets {
				if err := r.runSeq(ctx, t, t.levels[conc], s); err != nil {
					return err
				}
			}
			continue
		}
		for _, t := range r.targets {
			if err := r.prepare(ctx, t, t.levels[conc], s); err != nil {
				return err
			}
		}
		for round := 0; round < rounds; round++ {
			from := cfg.Warmup + round*cfg.Iterations/rounds
			to := cfg.Warmup + (round+1)*cfg.Iterations/rounds
			// A rotating order: no target always follows the same one.
			for j := range r.targets {
				t := r.targets[(j+round)%len(r.targets)]
				lv := t.levels[conc]
				r.phase.Store(fmt.Sprintf("c=%d %s %s", conc, s.name, t.name))
				if round == 0 && cfg.Warmup > 0 {
					if _, _, err := r.slice(ctx, t, lv, s, 0, cfg.Warmup, true); err != nil {
						return err
					}
				}
				runtime.GC() // the last target's garbage is not this one's cost
				durs, wall, err := r.slice(ctx, t, lv, s, from, to, true)
				if err != nil {
					return err
				}
				drain, err := t.drain(ctx)
				if err != nil {
					return err
				}
				sm := r.sample(t, s, conc)
				sm.durs = append(sm.durs, durs...)
				sm.wall += wall
				sm.drain += drain
			}
		}
		for _, t := range r.targets {
			lv := t.levels[conc]
			if s.takes != "" {
				lv.exist[s.takes] = false
			}
			if s.makes != "" {
				lv.exist[s.makes] = true
			}
		}
	}
	for _, t := range r.targets {
		r.phase.Store(fmt.Sprintf("c=%d clean up %s", conc, t.name))
		if err := r.cleanup(ctx, t, t.levels[conc]); err != nil {
			return fmt.Errorf("%s, %d clients: clean up: %w", t.name, conc, err)
		}
	}
	return nil
}

// setup makes a level's tree, opens its data handles, and makes the
// readdir directory if readdir runs.
func (r *runner) setup(ctx context.Context, t *target, lv *level, specs []*opSpec) error {
	ops := lv.setupOps()
	for _, s := range specs {
		if s.name == OpReaddir {
			ops = append(ops, lv.readdirOps()...)
		}
	}
	if err := r.runOps(ctx, t, ops); err != nil {
		return err
	}
	lv.opened = true
	_, err := t.drain(ctx)
	return err
}

// prepare makes, unmeasured, the per-index names op s needs if no earlier
// op left them.
func (r *runner) prepare(ctx context.Context, t *target, lv *level, s *opSpec) error {
	if s.needs == "" || lv.exist[s.needs] {
		return nil
	}
	mk := &opSpec{name: "prepare-" + s.name, op: func(l *level, _, i int) fsop.Op { return l.makeOp(s.needs, i) }}
	if _, _, err := r.slice(ctx, t, lv, mk, 0, r.cfg.Warmup+r.cfg.Iterations, false); err != nil {
		return err
	}
	lv.exist[s.needs] = true
	_, err := t.drain(ctx)
	return err
}

// runSeq runs a sequential op on t: each client its own file, blocks
// i = client, client+conc, ... of SeqSize/SeqBlock.
func (r *runner) runSeq(ctx context.Context, t *target, lv *level, s *opSpec) error {
	r.phase.Store(fmt.Sprintf("c=%d %s %s", lv.conc, s.name, t.name))
	if lv.seqData == nil {
		lv.seqData = payload(int(lv.block), 7)
	}
	if !lv.seqOpen {
		if err := r.runOps(ctx, t, lv.seqOpenOps()); err != nil {
			return err
		}
		lv.seqOpen = true
	}
	blocks := int(r.cfg.SeqSize / r.cfg.SeqBlock)
	if s.name == OpSeqRead && !lv.seqDone {
		if _, _, err := r.slice(ctx, t, lv, specByName(OpSeqWrite), 0, blocks, false); err != nil {
			return err
		}
	}
	runtime.GC()
	durs, wall, err := r.slice(ctx, t, lv, s, 0, blocks, true)
	if err != nil {
		return err
	}
	lv.seqDone = true
	drain, err := t.drain(ctx)
	if err != nil {
		return err
	}
	sm := r.sample(t, s, lv.conc)
	sm.durs, sm.wall, sm.drain = append(sm.durs, durs...), sm.wall+wall, sm.drain+drain
	return nil
}

// cleanup closes a level's handles and removes its tree.
func (r *runner) cleanup(ctx context.Context, t *target, lv *level) error {
	if err := r.runOps(ctx, t, lv.closeOps()); err != nil {
		return err
	}
	lv.opened, lv.seqOpen = false, false
	if err := removeAll(ctx, t, lv.prefix); err != nil {
		return err
	}
	_, err := t.drain(ctx)
	return err
}

// runOps runs ops one after the other, each expected to succeed.
func (r *runner) runOps(ctx context.Context, t *target, ops []fsop.Op) error {
	for i := range ops {
		if err := expect(ctx, t, &ops[i]); err != nil {
			return err
		}
	}
	return nil
}

// expect runs op on t and fails unless it succeeds.
func expect(ctx context.Context, t *target, op *fsop.Op) error {
	res, err := t.run(ctx, op)
	if err == nil && res.Errno != "" {
		err = errors.New(res.Errno)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", op.Kind, describe(op), err)
	}
	return nil
}

func describe(op *fsop.Op) string {
	switch {
	case op.HandleBased():
		return fmt.Sprintf("handle %d offset %d", op.Handle, op.Offset)
	case op.To != "":
		return op.Path + " -> " + op.To
	}
	return op.Path
}

// removeAll removes p and everything under it through t.
func removeAll(ctx context.Context, t *target, p string) error {
	res, err := t.run(ctx, &fsop.Op{Kind: fsop.Readdir, Path: p})
	switch {
	case err != nil:
		return fmt.Errorf("readdir %s: %w", p, err)
	case res.Errno == "ENOENT":
		return nil
	case res.Errno != "":
		return fmt.Errorf("readdir %s: %s", p, res.Errno)
	}
	for _, d := range res.Entries {
		if d.Name == "." || d.Name == ".." {
			continue
		}
		child := p + "/" + d.Name
		typ := d.Type
		if typ == "unknown" {
			st, err := t.run(ctx, &fsop.Op{Kind: fsop.Lstat, Path: child})
			if err != nil || st.Stat == nil {
				return fmt.Errorf("lstat %s: %v %s", child, err, st.Errno)
			}
			typ = fsop.DirentType(st.Stat.Mode)
		}
		if typ == "dir" {
			err = removeAll(ctx, t, child)
		} else {
			err = expect(ctx, t, &fsop.Op{Kind: fsop.Unlink, Path: child})
		}
		if err != nil {
			return err
		}
	}
	return expect(ctx, t, &fsop.Op{Kind: fsop.Rmdir, Path: p})
}

// slice runs ops [from, to) of s on t with lv.conc clients and returns
// each op's latency and the wall time. Non-sequential ops are handed out
// in order to whichever client is free; sequential ones are client i mod
// conc's. counted ops move the progress bar.
func (r *runner) slice(ctx context.Context, t *target, lv *level, s *opSpec, from, to int, counted bool) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	next.Store(int64(from))
	durs := make([][]time.Duration, lv.conc)
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	labels := pprof.WithLabels(ctx, pprof.Labels("target", t.name, "op", s.name))
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < lv.conc; w++ {
		durs[w] = make([]time.Duration, 0, (to-from)/lv.conc+1)
		wg.Go(func() {
			pprof.SetGoroutineLabels(labels)
			for k := 0; ; k++ {
				i := from + w + k*lv.conc
				if !s.seq {
					i = int(next.Add(1) - 1)
				}
				if i >= to || ctx.Err() != nil {
					return
				}
				op := s.op(lv, w, i)
				t0 := time.Now()
				res, err := t.run(ctx, &op)
				d := time.Since(t0)
				if err == nil && res.Errno != "" {
					err = errors.New(res.Errno)
				}
				if err == nil && s.check != nil {
					err = s.check(lv, &res)
				}
				if err != nil {
					if ctx.Err() == nil {
						fail(fmt.Errorf("%s, %d clients: %s: %s %s: %w", t.name, lv.conc, s.name, op.Kind, describe(&op), err))
					}
					return
				}
				durs[w] = append(durs[w], d)
				if counted {
					r.done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if firstErr != nil {
		return nil, 0, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, context.Cause(ctx)
	}
	var all []time.Duration
	for _, d := range durs {
		all = append(all, d...)
	}
	return all, wall, nil
}

// startProgress shows the progress bar, if asked for, until the returned
// function is called.
func (r *runner) startProgress() func() {
	if r.cfg.Progress == nil {
		return func() {}
	}
	var total int64
	blocks := r.cfg.SeqSize / r.cfg.SeqBlock
	for _, s := range selectedSpecs(r.cfg.Ops) {
		n := int64(r.cfg.Warmup + r.cfg.Iterations)
		if s.seq {
			n = blocks
		}
		total += n * int64(len(r.targets)) * int64(len(r.cfg.Concurrency))
	}
	bar := progress.New(r.cfg.Progress, total, "bench", "ops")
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if p, ok := r.phase.Load().(string); ok {
				bar.Describe(fmt.Sprintf("%-32s", p))
			}
			bar.Set(r.done.Load())
			select {
			case <-stop:
				bar.Finish()
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(stop); <-stopped }
}

// startProfile starts the CPU profile if a profile directory is set; the
// returned function stops it and writes the heap profile.
func (r *runner) startProfile() (func() error, error) {
	dir := r.cfg.ProfileDir
	if dir == "" {
		return func() error { return nil }, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		errs := []error{cpu.Close()}
		heap, err := os.Create(filepath.Join(dir, "heap.pprof"))
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		errs = append(errs, pprof.Lookup("heap").WriteTo(heap, 0), heap.Close())
		fmt.Fprintf(r.cfg.Log, "profiles: %s, %s (go tool pprof -tagfocus target=proxy-mirror %s)\n",
			cpu.Name(), heap.Name(), cpu.Name())
		return errors.Join(errs...)
	}, nil
}
