package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/conformance"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

func compatCmd() *cobra.Command {
	var dir, markdown string
	var names []string
	var asJSON, emit bool
	var divergence, caseName string
	cmd := &cobra.Command{
		Use:   "compat [--dir DIR] [--case NAME]... [--json]",
		Short: "Mount the store through bazil and go-fuse side by side and run the conformance cases on both",
		Long: `Mount a fresh store through each FUSE library under DIR (each served by its own
'lighthouse mount' process), run every conformance case on a plain directory
(the reference), both mounts and the store called directly, print the
case-by-target table, and exit 1 if a target differs from the reference in a
way the expected-differences list does not explain.

--case NAME reruns just that case (as named in docs/compatibility.md; a
family with a trailing slash, e.g. --case rename/), and prints every step
with every target's result. --json prints the report for scripts instead
(schema: docs/compatibility-json.md).

--divergence FILE[:LINE] turns a line of a proxy's divergences.jsonl (its
recent ops, then its op; the parent directories its paths need first) into
a case and runs it on both libraries; with --emit it only prints the case
as a line for conformance/traffic-cases.jsonl (append it, then make compat).
'lighthouse replay --minimize' shrinks a divergence first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var extra []conformance.Case
			if divergence != "" {
				tc, err := caseFromDivergence(divergence, caseName)
				if err != nil {
					return verdict.Usage(err)
				}
				if emit {
					b, err := json.Marshal(tc)
					fmt.Println(string(b))
					return err
				}
				extra, names = []conformance.Case{{Name: tc.Name, Ops: tc.Ops}}, []string{tc.Name}
			}
			return runCompat(dir, markdown, names, asJSON, extra)
		},
	}
	cmd.Flags().StringVar(&divergence, "divergence", "", "run a divergence log line (FILE or FILE:LINE) as a case")
	cmd.Flags().StringVar(&caseName, "name", "traffic/from-divergence", "the case name --divergence gives")
	cmd.Flags().BoolVar(&emit, "emit", false, "with --divergence: print the case line for conformance/traffic-cases.jsonl and stop")
	cmd.Flags().StringSliceVar(&names, "case", nil, "run only these cases (repeatable or comma-separated; FAMILY/ for a whole family)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (schema lighthouse.compat/v1) instead of the table")
	cmd.Flags().StringVar(&dir, "dir", ".lighthouse/compat", "working directory: reference dir, mount points, data, logs")
	cmd.Flags().StringVar(&markdown, "markdown", "", "also write the compatibility report (docs/compatibility.md format) here")
	return cmd
}

// caseFromDivergence reads a divergence line and makes it a case.
func caseFromDivergence(spec, name string) (conformance.TrafficCase, error) {
	raw, n, err := conformance.DivergenceAt(spec)
	if err != nil {
		return conformance.TrafficCase{}, err
	}
	tc, err := conformance.FromDivergence(raw, name)
	if err != nil {
		return tc, fmt.Errorf("line %d: %w", n, err)
	}
	return tc, nil
}

// runCompat runs the selected cases on both libraries (conformance.Compat).
func runCompat(dir, markdown string, names []string, asJSON bool, extra []conformance.Case) error {
	cases, err := conformance.Select(append(conformance.Cases(), extra...), names)
	if err != nil {
		return verdict.Usage(err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	err = conformance.Compat(conformance.CompatOptions{Dir: dir, Exe: exe, Cases: cases, Steps: len(names) > 0,
		JSON: asJSON, Markdown: markdown, Out: os.Stdout, Progress: os.Stderr})
	if errors.Is(err, conformance.ErrUnexpected) {
		return verdict.Failed(err)
	}
	return err
}
