package rollout

import (
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// File is the rollout config file (deploy/rollout.yaml), reloaded on
// SIGHUP. Every field is optional; absent fields keep their defaults.
type File struct {
	// Phase or Weight set the serving share when they change from the
	// previous load (so a reload for a threshold never undoes a rollback).
	Phase  string   `yaml:"phase"`
	Weight *float64 `yaml:"weight"`
	// AdvanceAfter: advance one step after this many quiet candidate ops (0: never).
	AdvanceAfter int `yaml:"advance_after"`
	Thresholds   struct {
		Divergence  *float64 `yaml:"divergence"`
		ErrorRate   *float64 `yaml:"error_rate"`
		P99         string   `yaml:"p99"`
		MinSample   *int     `yaml:"min_sample"`
		Window      *int     `yaml:"window"`
		MinCoverage *float64 `yaml:"min_coverage"`
		// The latency comparison against the primary (docs/rollout.md).
		LatencyRatio     *float64 `yaml:"latency_ratio"`
		LatencyZ         *float64 `yaml:"latency_z"`
		LatencyMinSample *int     `yaml:"latency_min_sample"`
		LatencyWindow    *int     `yaml:"latency_window"`
		LatencyMinDelta  string   `yaml:"latency_min_delta"` // a Go duration: "250us"
	} `yaml:"thresholds"`
}

// LoadFile reads and checks a config file. An error names the problem;
// the caller keeps its old config.
func LoadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if f.Phase != "" {
		if _, ok := PhaseWeight[f.Phase]; !ok {
			return nil, fmt.Errorf("%s: unknown phase %q (shadow, canary, progressive, full)", path, f.Phase)
		}
	}
	if f.Weight != nil && (*f.Weight < 0 || *f.Weight > 1) {
		return nil, fmt.Errorf("%s: weight %v outside [0, 1]", path, *f.Weight)
	}
	if _, err := f.Apply(DefaultThresholds()); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// Apply returns base with the file's thresholds applied.
func (f *File) Apply(base Thresholds) (Thresholds, error) {
	t := f.Thresholds
	if t.Divergence != nil {
		base.Divergence = *t.Divergence
	}
	if t.ErrorRate != nil {
		base.ErrorRate = *t.ErrorRate
	}
	if t.P99 != "" {
		d, err := time.ParseDuration(t.P99)
		if err != nil {
			return base, fmt.Errorf("p99: %w", err)
		}
		base.P99 = d
	}
	if t.MinSample != nil {
		base.MinSample = *t.MinSample
	}
	if t.MinCoverage != nil {
		base.MinCoverage = *t.MinCoverage
	}
	if t.Window != nil {
		base.Window = *t.Window
	}
	setIf(&base.LatencyRatio, t.LatencyRatio)
	setIf(&base.LatencyZ, t.LatencyZ)
	setIf(&base.LatencyMinSample, t.LatencyMinSample)
	setIf(&base.LatencyWindow, t.LatencyWindow)
	if t.LatencyMinDelta != "" {
		d, err := time.ParseDuration(t.LatencyMinDelta)
		if err != nil {
			return base, fmt.Errorf("latency_min_delta: %w", err)
		}
		base.LatencyMinDelta = d
	}
	c := Controller{}
	if err := c.setThresholds(base); err != nil {
		return base, err
	}
	return base, nil
}

// TargetWeight is the weight the file asks for, if it asks.
func (f *File) TargetWeight() (float64, bool) {
	switch {
	case f.Weight != nil:
		return *f.Weight, true
	case f.Phase != "":
		return PhaseWeight[f.Phase], true
	}
	return 0, false
}

// setIf sets *dst to *v when the file has v.
func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
