package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/internal/progress"
	"github.com/lighthouse-fs/lighthouse/internal/supervise"
)

// ErrUnexpected: in a Compat run, a target differs from the reference in a
// way the expected differences do not explain.
var ErrUnexpected = errors.New("unexpected differences from the reference")

// CompatOptions configure Compat.
type CompatOptions struct {
	Dir   string // working directory: reference dir, mount points, data, logs
	Exe   string // the lighthouse command, whose `mount` serves each library
	Cases []Case
	// Steps prints every step of every case with every target's result
	// instead of the table (for a few cases picked by name).
	Steps bool
	// JSON prints the report as JSON (schema lighthouse.compat/v1,
	// docs/compatibility-json.md) instead of the table.
	JSON bool
	// Markdown, if set, is where the compatibility report
	// (docs/compatibility.md) is written, with the settings each library
	// mounts with, probed from its debug log.
	Markdown string
	Out      io.Writer // the report and what was written
	Progress io.Writer // a progress bar (nil: none)
}

// Compat runs the cases as `lighthouse compat` does: on a plain directory
// (the reference), on a fresh store mounted through each FUSE library by
// a `lighthouse mount` child, and on the store called directly. It prints
// the report and returns an error wrapping ErrUnexpected if a target
// differs from the reference in a way the expected-differences list does
// not explain. Every mount is gone when it returns.
func Compat(o CompatOptions) error {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
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
	targets := []Target{DirTarget(Reference, ref)}
	for _, b := range []string{"bazil", "gofuse"} {
		srv, mnt, err := startMount(o.Exe, dir, b, false)
		if err != nil {
			return err
		}
		defer srv.Stop(mountGrace)
		t := DirTarget(b, mnt)
		t.Hold = HoldProcess(srv.Pid())
		targets = append(targets, t)
	}
	targets = append(targets, StoreTarget("store"))

	ex, err := DefaultExpected()
	if err != nil {
		return err
	}
	bar := progress.New(o.Progress, int64(len(o.Cases)), "conformance", "cases")
	rep, err := Run(o.Cases, targets, func(done, _ int) { bar.Set(int64(done)) })
	bar.Finish()
	if err != nil {
		return err
	}
	return rep.writeCompat(o, dir, ex)
}

// writeCompat prints rep as o asks, writes its Markdown report, and judges
// it.
func (rep *Report) writeCompat(o CompatOptions, dir string, ex Expectations) error {
	switch {
	case o.JSON:
		b, err := rep.JSON(ex)
		if err != nil {
			return err
		}
		fmt.Fprintln(o.Out, string(b))
	case o.Steps:
		fmt.Fprintln(o.Out, rep.CasesText("bazil", "gofuse", ex))
	default:
		fmt.Fprintln(o.Out, rep.Table(ex))
		fmt.Fprintln(o.Out, rep.Summary())
	}
	if o.Markdown != "" {
		var err error
		if rep.Settings, err = probeSettings(o.Exe, dir); err != nil {
			return err
		}
		if err := os.WriteFile(o.Markdown, []byte(rep.Markdown("bazil", "gofuse", ex)), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(o.Out, "wrote", o.Markdown)
	}
	if u := rep.Unexpected(ex); len(u) > 0 {
		return fmt.Errorf("%d %w:\n  %s\nsee docs/compatibility.md for the known ones", len(u), ErrUnexpected, strings.Join(u, "\n  "))
	}
	if !o.JSON {
		fmt.Fprintln(o.Out, "verdict: every difference from the reference is explained in conformance/expected-differences.yaml")
	}
	return nil
}

// startMount serves a fresh store through backend in a `lighthouse mount`
// child (exe) and waits until the kernel shows the mount (read from /proc,
// never the mount).
// With debug, the library logs every request to DIR/BACKEND-probe.log
// (a memory store on its own mount point, for probeSettings).
func startMount(exe, dir, backend string, debug bool) (*supervise.Proc, string, error) {
	name := backend
	args := []string{"mount", "--backend", backend, "--name-max", strconv.Itoa(MountNameMax)}
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
func probeSettings(exe, dir string) (string, error) {
	got := map[string]Settings{}
	for _, b := range []string{"bazil", "gofuse"} {
		srv, mnt, err := startMount(exe, dir, b, true)
		if err != nil {
			return "", err
		}
		perr := Probe(mnt)
		if err := errors.Join(perr, srv.Stop(mountGrace)); err != nil {
			return "", fmt.Errorf("settings probe on %s: %w", b, err)
		}
		log, err := os.ReadFile(filepath.Join(dir, b+"-probe.log"))
		if err != nil {
			return "", err
		}
		if got[b], err = ParseSettings(string(log)); err != nil {
			return "", fmt.Errorf("settings probe on %s: %w", b, err)
		}
	}
	return SettingsMarkdown("bazil", "gofuse", got["bazil"], got["gofuse"]), nil
}

// mountGrace is how long a mount server has to unmount after SIGTERM.
const mountGrace = 10 * time.Second
