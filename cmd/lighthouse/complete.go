package main

import (
	"slices"
	"sort"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lighthouse-fs/lighthouse/bench"
	"github.com/lighthouse-fs/lighthouse/rollout"
	"github.com/lighthouse-fs/lighthouse/store"
)

// enumerated are the values of every flag that takes one of a fixed set,
// by flag name: `lighthouse completion bash|zsh|fish` completes them.
func enumerated() map[string][]string {
	backs := make([]string, 0, len(backends))
	for n := range backends {
		backs = append(backs, n)
	}
	sort.Strings(backs)
	return map[string][]string{
		"backend": backs,
		"sync":    {string(store.SyncAlways), string(store.SyncBatch), string(store.SyncNone)},
		"phase":   {rollout.PhaseShadow, rollout.PhaseCanary, rollout.PhaseProgressive, rollout.PhaseFull},
		"pace":    {"fast", "recorded"},
		"aa":      {"bazil", "gofuse"},
		"role":    {"primary", "shadow"},
		"targets": slices.Clone(bench.AllTargets),
	}
}

// registerCompletions gives every enumerated string flag of every command
// its values as completions.
func registerCompletions(root *cobra.Command) {
	values := enumerated()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			vals, ok := values[f.Name]
			if !ok || (f.Value.Type() != "string" && f.Value.Type() != "stringSlice") {
				return
			}
			_ = c.RegisterFlagCompletionFunc(f.Name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
				return vals, cobra.ShellCompDirectiveNoFileComp
			})
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
