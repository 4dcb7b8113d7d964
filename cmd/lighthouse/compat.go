package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/conformance"
	"github.com/lighthouse-fs/lighthouse/internal/progress"
	"github.com/lighthouse-fs/lighthouse/internal/supervise"
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

func runCompat(dir, markdown string, names []string, asJSON bool, extra []conformance.Case) error {
	cases, err := conformance.Select(append(conformance.Cases(), extra...), names)
	if err != nil {
		return verdict.Usage(err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	unix.Umask(0) // modes exactly as the cases ask, on every target
	ref := filepath.Join(dir, "reference")
	for _, p := range []string{ref, filepath.Join(dir, "data")} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("clean %s: %w", p, err)
		}
	}
	if err := os.MkdirAll(ref, 0o755); err != nil {
		return err
	}
	targets := []conformance.Target{conformance.DirTarget(conformance.Reference, ref)}
	for _, b := range []string{"bazil", "gofuse"} {
		srv, mnt, err := startMount(dir, b, false)
		if err != nil {
			return err
		}
		defer srv.Stop(mountGrace)
		targets = append(targets, conformance.DirTarget(b, mnt))
	}
	targets = append(targets, conformance.StoreTarget("store"))

	ex, err := conformance.DefaultExpected()
	if err != nil {
		return err
	}
	bar := progress.New(os.Stderr, int64(len(cases)), "conformance", "cases")
	rep, err := conformance.Run(cases, targets, func(done, _ int) { bar.Set(int64(done)) })
	bar.Finish()
	if err != nil {
		return err
	}
	switch {
	case asJSON:
		b, err := rep.JSON(ex)
		if err != nil {
			return err
		}
		fmt.Println(string(b))
	case len(names) > 0:
		fmt.Println(rep.CasesText("bazil", "gofuse", ex))
	default:
		fmt.Println(rep.Table(ex))
		fmt.Println(rep.Summary())
	}
	if markdown != "" {
		if rep.Settings, err = probeSettings(dir); err != nil {
			return err
		}
		if err := os.WriteFile(markdown, []byte(rep.Markdown("bazil", "gofuse", ex)), 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", markdown)
	}
	if u := rep.Unexpected(ex); len(u) > 0 {
		return verdict.Failed(fmt.Errorf("%d unexpected differences from the reference:\n  %s\nsee docs/compatibility.md for the known ones", len(u), strings.Join(u, "\n  ")))
	}
	if !asJSON {
		fmt.Println("verdict: every difference from the reference is explained in conformance/expected-differences.yaml")
	}
	return nil
}

// startMount serves a fresh store through backend in a `lighthouse mount`
// child and waits until the kernel shows the mount (read from /proc, never
// the mount).
// With debug, the library logs every request to DIR/BACKEND-probe.log
// (a memory store on its own mount point, for probeSettings).
func startMount(dir, backend string, debug bool) (*supervise.Proc, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	name := backend
	args := []string{"mount", "--backend", backend, "--name-max", strconv.Itoa(conformance.MountNameMax)}
	if debug {
		name += "-probe"
		args = append(args, "--fuse-debug")
	} else {
		args = append(args, "--data", filepath.Join(dir, "data", backend), "--sync", "none")
	}
	mnt := filepath.Join(dir, "mnt", name)
	p, err := supervise.Start(supervise.Config{Name: name + " mount", Path: exe, Args: append(args, mnt),
		Log: filepath.Join(dir, name+".log"), Mounts: []string{mnt}})
	if err != nil {
		return nil, "", err
	}
	if err := p.WaitMount(context.Background(), mnt, "lighthouse", 20*time.Second); err != nil {
		return nil, "", errors.Join(err, p.Stop(mountGrace))
	}
	return p, mnt, nil
}

// probeSettings mounts each library with its debug log on, runs the
// settings probe and renders what the logs show (the section of
// docs/compatibility.md that `make compat` writes the same way).
func probeSettings(dir string) (string, error) {
	got := map[string]conformance.Settings{}
	for _, b := range []string{"bazil", "gofuse"} {
		srv, mnt, err := startMount(dir, b, true)
		if err != nil {
			return "", err
		}
		perr := conformance.Probe(mnt)
		if err := errors.Join(perr, srv.Stop(mountGrace)); err != nil {
			return "", fmt.Errorf("settings probe on %s: %w", b, err)
		}
		log, err := os.ReadFile(filepath.Join(dir, b+"-probe.log"))
		if err != nil {
			return "", err
		}
		if got[b], err = conformance.ParseSettings(string(log)); err != nil {
			return "", fmt.Errorf("settings probe on %s: %w", b, err)
		}
	}
	return conformance.SettingsMarkdown("bazil", "gofuse", got["bazil"], got["gofuse"]), nil
}

// mountGrace is how long a mount server has to unmount after SIGTERM.
const mountGrace = 10 * time.Second
