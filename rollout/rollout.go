// Package rollout moves serving traffic from the primary FUSE library to
// the candidate in phases, and back at once when the candidate misbehaves.
//
// # Phases
//
// shadow (weight 0: the primary serves every op, the candidate is only
// mirrored), canary (10% of ops served by the candidate), progressive (50%,
// 75%, 90%), full (100%: the primary is now the mirror, so a rollback is
// one weight change away). Which ops the candidate serves is decided by a
// hash of the op's path, so one file's ops are served by one bridge.
//
// # Triggers
//
// Three signals, each a Bernoulli stream observed on every op the
// candidate runs (served or mirrored): divergence (a compared op whose
// results differ, allowlisted classes excluded), candidate error (a
// transport failure or timeout, or an errno the other bridge did not
// return), and candidate slowness (an op slower than 1 s, the P99 > 1 s
// trigger: P99 > 1 s exactly when more than 1% of ops are slower than 1 s).
// Each feeds a one-sided CUSUM tuned by simulation (rollout_test.go,
// docs/rollout.md): divergence p0 = 0.05%, p1 = 0.3%, h = 11; error and
// slowness p0 = 0.5%, p1 = 2%, h = 14. A trigger may fire only after
// MinSample observations; "no data" is neither healthy nor a rollback.
//
// A fourth judges latency against the primary rather than a fixed second:
// per op kind, the latencies of the ops the candidate served against those
// the primary served over the same recent ops of that kind (latency.go),
// by a Mann-Whitney rank test and the ratio of the medians; both past
// their thresholds (z >= 5, 2x) with LatencyMinSample ops on each side
// roll back. Mirrored ops do not count: a bridge that only mirrors runs at
// nice 19.
//
// # Decisions
//
// A rollback sets the weight to 0 at once (in-flight ops finish), logs the
// numbers, counts lighthouse_rollout_rollbacks_total{trigger}, and persists the
// state, so a restart keeps it. Nothing re-advances automatically after a
// rollback: an operator promotes again.
package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lighthouse-fs/lighthouse/internal/ratelog"

	"github.com/lighthouse-fs/lighthouse/metrics"
)

// Phase names.
const (
	PhaseShadow      = "shadow"
	PhaseCanary      = "canary"
	PhaseProgressive = "progressive"
	PhaseFull        = "full"
)

// Trigger names (the trigger label of lighthouse_rollout_rollbacks_total).
const (
	TriggerDivergence = "divergence"
	TriggerErrors     = "error_rate"
	TriggerLatency    = "p99_latency"
	// TriggerLatencyRatio: the candidate serves an op kind markedly slower
	// than the primary serves it.
	TriggerLatencyRatio = "latency_ratio"
	TriggerManual       = "manual"
)

// PhaseWeight is the default candidate weight of each phase.
var PhaseWeight = map[string]float64{PhaseShadow: 0, PhaseCanary: 0.10, PhaseProgressive: 0.50, PhaseFull: 1}

// Steps is the automatic advance path.
var Steps = []float64{0, 0.10, 0.50, 0.75, 0.90, 1}

// PhaseOf names the phase of a weight.
func PhaseOf(w float64) string {
	switch {
	case w <= 0:
		return PhaseShadow
	case w < 0.5:
		return PhaseCanary
	case w < 1:
		return PhaseProgressive
	}
	return PhaseFull
}

// Thresholds are the rollback triggers and their tuning.
type Thresholds struct {
	Divergence float64       `json:"divergence" yaml:"divergence"` // 0.001
	ErrorRate  float64       `json:"error_rate" yaml:"error_rate"` // 0.01
	P99        time.Duration `json:"p99" yaml:"p99"`               // 1s
	MinSample  int           `json:"min_sample" yaml:"min_sample"` // 500
	Window     int           `json:"window" yaml:"window"`         // 5000: the rates shown and exported
	// MinCoverage is the least share of the window's ops that must have
	// been compared for an automatic advance (0.95): a quiet window that
	// compared little says little.
	MinCoverage float64 `json:"min_coverage" yaml:"min_coverage"`
	HDivergent  float64 `json:"h_divergence" yaml:"h_divergence"` // 12
	HErrors     float64 `json:"h_errors" yaml:"h_errors"`         // 14
	// The latency comparison (latency.go): the candidate's median over the
	// primary's, and the rank test's z, at which it fires; the served ops
	// each side needs of a kind; the ops of a kind the comparison spans.
	LatencyRatio     float64 `json:"latency_ratio" yaml:"latency_ratio"`           // 2
	LatencyZ         float64 `json:"latency_z" yaml:"latency_z"`                   // 5
	LatencyMinSample int     `json:"latency_min_sample" yaml:"latency_min_sample"` // 50
	LatencyWindow    int     `json:"latency_window" yaml:"latency_window"`         // 2000
	// LatencyMinDelta is the least difference of the medians that fires
	// (250 µs): below about two loopback HTTP hops the harness's own
	// scheduling, not the library, sets the ratio.
	LatencyMinDelta time.Duration `json:"latency_min_delta" yaml:"latency_min_delta"`
}

// DefaultThresholds are the seed's triggers with the simulated tuning.
func DefaultThresholds() Thresholds {
	return Thresholds{Divergence: 0.001, ErrorRate: 0.01, P99: time.Second, MinSample: 500, Window: 5000, HDivergent: 11, HErrors: 14, MinCoverage: 0.95,
		LatencyRatio: 2, LatencyZ: 5, LatencyMinSample: 50, LatencyWindow: 2000, LatencyMinDelta: 250 * time.Microsecond}
}

// State is what the controller persists.
type State struct {
	Weight     float64    `json:"weight"`
	Phase      string     `json:"phase"`
	RolledBack bool       `json:"rolled_back"`
	Decision   *Decision  `json:"last_decision,omitempty"`
	History    []Decision `json:"history,omitempty"` // the last decisions, oldest first
	Updated    time.Time  `json:"updated"`
}

// historyLen bounds State.History.
const historyLen = 20

// Decision records why the weight last changed.
type Decision struct {
	Time       time.Time  `json:"time"`
	Action     string     `json:"action"` // rollback, promote, advance
	Trigger    string     `json:"trigger,omitempty"`
	From       float64    `json:"from_weight"`
	To         float64    `json:"to_weight"`
	Reason     string     `json:"reason"`
	Rates      Rates      `json:"rates"`
	Statistics [3]float64 `json:"cusum"` // divergence, errors, latency
}

// Rates are the window rates and sample sizes at a decision.
type Rates struct {
	Divergence float64 `json:"divergence"`
	Compared   int     `json:"compared"`
	// Coverage is the share of the window's ops that were compared, of
	// Observed ops.
	Coverage    float64 `json:"coverage"`
	Observed    int     `json:"observed"`
	ErrorRate   float64 `json:"error_rate"`
	SlowRate    float64 `json:"slow_rate"`
	CandidateOp int     `json:"candidate_ops"`
	// Latency is the op kind the candidate serves slowest against the
	// primary, if any kind has a verdict.
	Latency *LatencyVerdict `json:"latency,omitempty"`
}

// Observation is one op, as the proxy saw it.
type Observation struct {
	Compared        bool          // both results were compared
	SampledOut      bool          // outside the proxy's mirror share: not compared, by design
	Divergent       bool          // ... and differed (allowlisted classes excluded)
	CandidateRan    bool          // the candidate executed it (served or mirrored)
	CandidateFailed bool          // transport failure, timeout, or an errno the other did not return
	CandidateTime   time.Duration // how long the candidate took
	// The serving side, for the latency comparison. Op is the op's kind,
	// "" when the op is no latency sample (a read-back; the serving
	// bridge failed; it ran at nice 19, as a bridge that only mirrors does).
	Op              string
	CandidateServed bool          // the candidate served it (its result went to the client)
	ServingTime     time.Duration // how long the serving bridge took
}

// Config configures a Controller.
type Config struct {
	Thresholds Thresholds
	// StateFile persists decisions across restarts ("" keeps them in memory).
	StateFile string
	// Initial is the weight to start with when there is no state file.
	Initial float64
	// AdvanceAfter, if > 0, advances one step (Steps) after that many
	// candidate ops with every trigger quiet since the last change.
	AdvanceAfter int
	// OpKinds are the op kinds whose latency gauges exist from the first
	// scrape, at NaN ("no verdict"), so the dashboard's latency panels
	// are not "no data" before the first served op of a kind.
	OpKinds    []string
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Controller decides the candidate's weight. Safe for concurrent use;
// Weight is lock-free for the proxy's hot path.
type Controller struct {
	cfg    Config
	log    *slog.Logger
	weight atomic.Uint64 // math.Float64bits

	mu        sync.Mutex
	th        Thresholds
	state     State
	div, errs cusum
	slow      cusum
	wDiv      window
	wErr      window
	wSlow     window
	wSkip     window                // ops not compared, of every op observed
	sinceMove int                   // candidate ops since the last weight change
	heldAt    time.Time             // when an advance was last held back for coverage
	unhealthy *ratelog.Limiter      // the shadow phase's "do not promote" warning, once a minute per trigger
	lat       map[string]*opLatency // by op kind

	mRollbacks *prometheus.CounterVec
	mWeight    prometheus.Gauge
	mPhase     *prometheus.GaugeVec
	mObs       *prometheus.CounterVec
	mStat      *prometheus.GaugeVec
	mRate      *prometheus.GaugeVec
	mLatRatio  *prometheus.GaugeVec
	mLatZ      *prometheus.GaugeVec
	// children of the vectors above, resolved once: Observe is on the hot path
	obs   map[string][2]prometheus.Counter // signal -> good, bad
	stats [3]prometheus.Gauge
	rates [3]prometheus.Gauge
}

var signals = [3]string{"divergence", "error", "slow"}

// New starts a controller, restoring its state file if there is one.
func New(cfg Config) (*Controller, error) {
	if cfg.Thresholds == (Thresholds{}) {
		cfg.Thresholds = DefaultThresholds()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := metrics.NewRollout(cfg.Registerer)
	c := &Controller{cfg: cfg, log: cfg.Logger, unhealthy: ratelog.New(time.Minute),
		mRollbacks: m.Rollbacks, mWeight: m.Weight, mPhase: m.Phase,
		mObs: m.Observations, mStat: m.CUSUM, mRate: m.WindowRate, mLatRatio: m.LatencyRatio, mLatZ: m.LatencyZ,
	}
	// Every trigger's series exists from the start at 0, so the first
	// rollback is an increase a rate or an alert can see.
	for _, tr := range []string{TriggerDivergence, TriggerErrors, TriggerLatency, TriggerLatencyRatio, TriggerManual} {
		c.mRollbacks.WithLabelValues(tr)
	}
	c.obs = map[string][2]prometheus.Counter{}
	for i, sig := range signals {
		c.obs[sig] = [2]prometheus.Counter{c.mObs.WithLabelValues(sig, "good"), c.mObs.WithLabelValues(sig, "bad")}
		c.stats[i], c.rates[i] = c.mStat.WithLabelValues(sig), c.mRate.WithLabelValues(sig)
	}
	for _, k := range cfg.OpKinds {
		c.mLatRatio.WithLabelValues(k).Set(math.NaN())
		c.mLatZ.WithLabelValues(k).Set(math.NaN())
	}
	if err := c.setThresholds(cfg.Thresholds); err != nil {
		return nil, err
	}
	c.state = State{Weight: cfg.Initial, Phase: PhaseOf(cfg.Initial), Updated: time.Now()}
	if cfg.StateFile != "" {
		b, err := os.ReadFile(cfg.StateFile)
		switch {
		case err == nil:
			var st State
			if err := json.Unmarshal(b, &st); err != nil {
				return nil, fmt.Errorf("rollout state %s: %w (fix or delete it)", cfg.StateFile, err)
			}
			c.state = st
			c.log.Info("rollout state restored", "weight", st.Weight, "phase", st.Phase, "rolled_back", st.RolledBack)
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("rollout state: %w", err)
		}
	}
	c.publish()
	return c, nil
}

// setThresholds validates and installs th, resetting the statistics.
func (c *Controller) setThresholds(th Thresholds) error {
	if th.Divergence <= 0 || th.Divergence >= 0.5 || th.ErrorRate <= 0 || th.ErrorRate >= 0.5 || th.P99 <= 0 ||
		th.MinSample < 0 || th.Window <= 0 || th.HDivergent <= 0 || th.HErrors <= 0 || th.MinCoverage < 0 || th.MinCoverage > 1 {
		return fmt.Errorf("invalid thresholds %+v: rates in (0, 0.5), positive p99, window and h, min_coverage in [0, 1]", th)
	}
	if th.LatencyRatio <= 1 || th.LatencyZ <= 0 || th.LatencyMinSample < 10 || th.LatencyWindow < 2*th.LatencyMinSample || th.LatencyWindow > maxLatencyWindow || th.LatencyMinDelta < 0 {
		return fmt.Errorf("invalid latency thresholds: ratio %v (over 1), z %v (positive), min sample %d (at least 10), window %d (at least twice the min sample, at most %d), min delta %v (not negative)",
			th.LatencyRatio, th.LatencyZ, th.LatencyMinSample, th.LatencyWindow, maxLatencyWindow, th.LatencyMinDelta)
	}
	c.th = th
	// p0 = half the threshold, p1 = three (divergence) or two (errors)
	// times it: the CUSUM's neutral rate sits near the threshold.
	c.div = newCUSUM(th.Divergence/2, th.Divergence*3, th.HDivergent)
	c.errs = newCUSUM(th.ErrorRate/2, th.ErrorRate*2, th.HErrors)
	c.slow = newCUSUM(th.ErrorRate/2, th.ErrorRate*2, th.HErrors)
	c.wDiv, c.wErr, c.wSlow, c.wSkip = newWindow(th.Window), newWindow(th.Window), newWindow(th.Window), newWindow(th.Window)
	for _, l := range c.lat {
		l.reset() // its gauges say "no verdict"; the windows are rebuilt at the kind's next op
	}
	c.lat = map[string]*opLatency{}
	return nil
}

// Weight is the candidate's serving share now.
func (c *Controller) Weight() float64 { return math.Float64frombits(c.weight.Load()) }

// ServesCandidate reports whether the op on key (a path) is served by the
// candidate at the current weight: a stable hash, so a path stays put.
func (c *Controller) ServesCandidate(key string) bool {
	w := c.Weight()
	switch {
	case w <= 0:
		return false
	case w >= 1:
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	return float64(h.Sum64()%10000) < w*10000
}

// Observe feeds one op to the triggers.
func (c *Controller) Observe(o Observation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var fired, reason string
	if !o.SampledOut { // coverage is judged within the mirror share
		c.wSkip.add(!o.Compared)
	}
	if o.Compared {
		c.wDiv.add(o.Divergent)
		c.count("divergence", o.Divergent)
		if c.div.add(o.Divergent) && c.wDiv.size() >= c.th.MinSample {
			fired, reason = TriggerDivergence, fmt.Sprintf("divergence rate %.3f%% over %d compared ops (threshold %.3f%%)", 100*c.wDiv.rate(), c.wDiv.size(), 100*c.th.Divergence)
		}
	}
	if o.CandidateRan {
		slow := o.CandidateTime > c.th.P99
		c.wErr.add(o.CandidateFailed)
		c.wSlow.add(slow)
		c.count("error", o.CandidateFailed)
		c.count("slow", slow)
		if c.errs.add(o.CandidateFailed) && c.wErr.size() >= c.th.MinSample && fired == "" {
			fired, reason = TriggerErrors, fmt.Sprintf("candidate error rate %.2f%% over %d ops (threshold %.2f%%)", 100*c.wErr.rate(), c.wErr.size(), 100*c.th.ErrorRate)
		}
		if c.slow.add(slow) && c.wSlow.size() >= c.th.MinSample && fired == "" {
			fired, reason = TriggerLatency, fmt.Sprintf("%.2f%% of candidate ops slower than %v over %d ops: P99 above it", 100*c.wSlow.rate(), c.th.P99, c.wSlow.size())
		}
		c.sinceMove++
	}
	if why := c.judgeLatency(o); why != "" && fired == "" {
		fired, reason = TriggerLatencyRatio, why
	}
	c.gauges()
	switch {
	case fired != "" && c.state.Weight > 0:
		c.decide("rollback", fired, 0, reason)
	case fired != "":
		// Shadow phase: nothing to roll back; start counting afresh so the
		// verdict reflects the current behaviour.
		if ok, repeats := c.unhealthy.Allow(fired); ok {
			c.log.Warn("candidate unhealthy in the shadow phase: do not promote", "trigger", fired, "reason", reason,
				"repeats_since_last_warning", repeats)
		}
		c.resetStats()
	case c.cfg.AdvanceAfter > 0 && !c.state.RolledBack && c.sinceMove >= c.cfg.AdvanceAfter && c.state.Weight > 0 && c.state.Weight < 1 &&
		c.wDiv.size() >= c.th.MinSample && c.wErr.size() >= c.th.MinSample:
		if cov := 1 - c.wSkip.rate(); cov < c.th.MinCoverage {
			if time.Since(c.heldAt) > time.Minute {
				c.heldAt = time.Now()
				c.log.Warn("not advancing: too few ops compared to judge the candidate", "coverage", cov, "min_coverage", c.th.MinCoverage,
					"window", c.wSkip.size(), "quiet_candidate_ops", c.sinceMove)
			}
			break
		}
		next := 1.0
		for _, s := range Steps {
			if s > c.state.Weight+1e-9 {
				next = s
				break
			}
		}
		c.decide("advance", "", next, fmt.Sprintf("%d candidate ops with every trigger quiet, %.1f%% of the window's ops compared", c.sinceMove, 100*(1-c.wSkip.rate())))
	}
}

func (c *Controller) count(signal string, bad bool) {
	i := 0
	if bad {
		i = 1
	}
	c.obs[signal][i].Inc()
}

// gauges export the statistics and window rates. c.mu is held.
func (c *Controller) gauges() {
	for i, v := range [3]float64{c.div.s, c.errs.s, c.slow.s} {
		c.stats[i].Set(v)
	}
	for i, v := range [3]float64{c.wDiv.rate(), c.wErr.rate(), c.wSlow.rate()} {
		c.rates[i].Set(v)
	}
}

func (c *Controller) resetStats() {
	c.div.reset()
	c.errs.reset()
	c.slow.reset()
	c.wDiv.reset()
	c.wErr.reset()
	c.wSlow.reset()
	c.wSkip.reset()
	for _, l := range c.lat {
		l.reset()
	}
	c.sinceMove = 0
}

// decide changes the weight, records why, and persists. c.mu is held.
func (c *Controller) decide(action, trigger string, to float64, reason string) {
	d := &Decision{Time: time.Now(), Action: action, Trigger: trigger, From: c.state.Weight, To: to, Reason: reason,
		Rates:      c.windowRates(),
		Statistics: [3]float64{c.div.s, c.errs.s, c.slow.s}}
	c.state.Weight, c.state.Phase, c.state.Decision, c.state.Updated = to, PhaseOf(to), d, d.Time
	c.state.History = append(c.state.History, *d)
	if len(c.state.History) > historyLen {
		c.state.History = c.state.History[len(c.state.History)-historyLen:]
	}
	if action == "rollback" {
		c.state.RolledBack = true
		c.mRollbacks.WithLabelValues(trigger).Inc()
		c.log.Error("ROLLBACK: candidate weight set to 0", "trigger", trigger, "reason", reason, "from_weight", d.From,
			"divergence_rate", d.Rates.Divergence, "compared", d.Rates.Compared, "error_rate", d.Rates.ErrorRate,
			"slow_rate", d.Rates.SlowRate, "candidate_ops", d.Rates.CandidateOp, "latency", d.Rates.Latency)
	} else {
		if action == "promote" {
			c.state.RolledBack = false
		}
		c.log.Info("rollout weight changed", "action", action, "from", d.From, "to", to, "phase", c.state.Phase, "reason", reason)
	}
	c.resetStats()
	c.publish()
	if err := c.persist(); err != nil {
		c.log.Error("cannot persist the rollout state: a restart would forget this decision", "file", c.cfg.StateFile, "err", err)
	}
}

// publish makes the state visible: the atomic weight and the gauges.
func (c *Controller) publish() {
	c.weight.Store(math.Float64bits(c.state.Weight))
	c.mWeight.Set(c.state.Weight)
	for _, p := range []string{PhaseShadow, PhaseCanary, PhaseProgressive, PhaseFull} {
		v := 0.0
		if p == c.state.Phase {
			v = 1
		}
		c.mPhase.WithLabelValues(p).Set(v)
	}
	c.gauges()
}

// persist writes the state file durably: a temporary file, fsynced, renamed
// over the old one, and the directory fsynced, so that after a crash the
// file holds the old state or the new one, and a decision acknowledged
// (a rollback) is never lost.
func (c *Controller) persist() error {
	if c.cfg.StateFile == "" {
		return nil
	}
	b, err := json.MarshalIndent(c.state, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.cfg.StateFile), 0o755); err != nil {
		return err
	}
	return writeDurably(c.cfg.StateFile, b)
}

// fsync is (*os.File).Sync; a test counts the calls.
var fsync = (*os.File).Sync

// writeDurably replaces path with data through path.tmp: the data is
// fsynced before the rename and the directory after it.
func writeDurably(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := fsync(dir); err != nil {
		return fmt.Errorf("fsync %s: %w", filepath.Dir(path), err)
	}
	return nil
}

// Promote sets the weight (an operator's decision; clears a rollback).
func (c *Controller) Promote(weight float64, reason string) error {
	if weight < 0 || weight > 1 || math.IsNaN(weight) {
		return fmt.Errorf("weight %v outside [0, 1]", weight)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.decide("promote", "", weight, reason)
	return nil
}

// Rollback sets the weight to 0 now (an operator's decision).
func (c *Controller) Rollback(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.decide("rollback", TriggerManual, 0, reason)
}

// Reconfigure installs new thresholds (SIGHUP); on error nothing changes.
func (c *Controller) Reconfigure(th Thresholds) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if th == c.th {
		return nil // keep the statistics
	}
	return c.setThresholds(th) // validates before changing anything
}

// Status is the controller's state and current rates.
type Status struct {
	State      State      `json:"state"`
	Thresholds Thresholds `json:"thresholds"`
	Rates      Rates      `json:"rates"`
	CUSUM      [3]float64 `json:"cusum"`
	// Latency is every op kind's latency verdict, slowest first (kinds
	// without enough served ops on both sides are left out).
	Latency []LatencyVerdict `json:"latency,omitempty"`
}

// Status reports the state.
func (c *Controller) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{State: c.state, Thresholds: c.th,
		Rates: c.windowRates(), Latency: c.latencyVerdicts(),
		CUSUM: [3]float64{c.div.s, c.errs.s, c.slow.s}}
}

// windowRates are the window rates now. c.mu is held.
func (c *Controller) windowRates() Rates {
	r := Rates{Divergence: c.wDiv.rate(), Compared: c.wDiv.size(), Coverage: 1 - c.wSkip.rate(), Observed: c.wSkip.size(), ErrorRate: c.wErr.rate(), SlowRate: c.wSlow.rate(), CandidateOp: c.wErr.size()}
	if v := c.latencyVerdicts(); len(v) > 0 {
		r.Latency = &v[0]
	}
	return r
}
