package bridge

// The executor's watchdog: it tells a slow executor from a hung one by
// progress. An op through the mount may take long under load (a 128 KiB
// write waiting behind fsyncs for 30 s) while the store keeps completing
// requests: that op is slow, and killing the executor would lose its
// handles and fail a write half done. The executor is hung when it does not
// answer the watchdog, or an op has waited OpTimeout while the store made
// no progress at all, or an op has run longer than OpCeiling.

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// progressClock remembers when the store's progress counter last moved,
// sampled by the watchdog.
type progressClock struct {
	mu      sync.Mutex
	last    uint64
	changed time.Time
}

// sample notes the counter's value now and returns how long it has not
// moved (0 if it just did, or busy says work is under way).
func (c *progressClock) sample(v uint64, busy bool, now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.changed.IsZero() || v != c.last || busy {
		c.last, c.changed = v, now
	}
	return now.Sub(c.changed)
}

// opFlights holds the start times of the ops the bridge sent to its
// executor (HTTP API, probe), for the watchdog.
type opFlights struct {
	mu   sync.Mutex
	next uint64
	ops  map[uint64]time.Time
}

func (f *opFlights) begin() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ops == nil {
		f.ops = map[uint64]time.Time{}
	}
	f.next++
	f.ops[f.next] = time.Now()
	return f.next
}

func (f *opFlights) end(key uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ops, key)
}

// oldest is the age of the longest-running op (0 if none).
func (f *opFlights) oldest(now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var d time.Duration
	for _, start := range f.ops {
		d = max(d, now.Sub(start))
	}
	return d
}

// opLimit is how long an op may run now: OpTimeout while neither the
// store nor the executor's pipes have made progress for that long (a
// mutation waiting on the disk counts as progress: killing the executor
// would not help it), OpCeiling otherwise.
func (b *Bridge) opLimit(ex *executorProc, now time.Time) (time.Duration, string) {
	if idle := b.mountProgress.sample(b.st.Progress()+ex.moved.Load(), b.st.Busy(), now); idle >= b.cfg.OpTimeout {
		return b.cfg.OpTimeout, fmt.Sprintf("an op ran longer than %v while the store and the executor's pipes made no progress for %v", b.cfg.OpTimeout, idle.Round(time.Millisecond))
	}
	return b.cfg.OpCeiling, fmt.Sprintf("an op ran longer than the ceiling of %v", b.cfg.OpCeiling)
}

// watchExecutor is the watchdog: every quarter of the op timeout (at least
// 100 ms, at most 2 s) it works out how long an op may run (opLimit), asks
// the executor about the ops of its handed connections (it answers those
// running longer with an error itself, and says so), looks at the ops the
// bridge sent it, and replaces an executor that has such an op, does not
// answer within the op timeout, or has died.
func (b *Bridge) watchExecutor() {
	defer close(b.dogDone)
	every := min(max(b.cfg.OpTimeout/4, 100*time.Millisecond), 2*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stopDog:
			return
		case <-t.C:
		}
		b.opsMu.RLock()
		ex := b.exec
		b.opsMu.RUnlock()
		if ex == nil {
			continue
		}
		now := time.Now()
		limit, why := b.opLimit(ex, now)
		err, answered := b.askInflight(ex, limit, every)
		select {
		case <-b.stopDog: // closing: the executor may be stopping
			return
		default:
		}
		switch {
		case !answered:
			why = fmt.Sprintf("no answer to the watchdog for %v while the store and the executor's pipes made no progress", b.cfg.OpTimeout)
		case err == nil && b.flights.oldest(now) <= limit:
			continue
		case err != nil:
			why = fmt.Sprintf("%s: %v", why, err)
		}
		b.log.Error("executor watchdog", "why", why)
		ex.markHung(why)
		b.replaceExecutor(ex)
	}
}

// askInflight asks the executor about the ops of its handed connections
// (those running longer than limit it answers with an error, and says so).
// It waits for the answer while the store makes progress (a loaded
// executor answers late), and gives up (answered false) once it has waited
// OpTimeout with the store making none, or OpCeiling in all.
func (b *Bridge) askInflight(ex *executorProc, limit, every time.Duration) (err error, answered bool) {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.OpCeiling)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ex.control(ctx, ctlInflight, limit.String()) }()
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			return err, ctx.Err() == nil
		case now := <-t.C:
			idle := b.mountProgress.sample(b.st.Progress()+ex.moved.Load(), b.st.Busy(), now)
			if now.Sub(start) >= b.cfg.OpTimeout && idle >= b.cfg.OpTimeout {
				cancel()
				return <-done, false
			}
		}
	}
}
