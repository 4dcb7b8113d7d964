package conformance_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lighthouse-fs/lighthouse/conformance"
	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/mounttest"
	"github.com/lighthouse-fs/lighthouse/primary"
	"github.com/lighthouse-fs/lighthouse/shadow"
)

var update = flag.Bool("update", false, "rewrite docs/compatibility.md from this run")

const (
	expectedFile = "expected-differences.yaml"
	compatDoc    = "../docs/compatibility.md"
)

func TestMain(m *testing.M) {
	mounttest.Main(m, map[string]fusemount.MountFunc{"bazil": primary.Mount, "gofuse": shadow.Mount})
}

// targets mounts both libraries (served by child processes) and returns
// the four targets, the reference first, and their mount points.
func targets(t *testing.T) ([]conformance.Target, []string) {
	ref := t.TempDir()
	bazil := mounttest.StartConfig(t, mounttest.Config{Backend: "bazil", NameMax: conformance.MountNameMax})
	gofuse := mounttest.StartConfig(t, mounttest.Config{Backend: "gofuse", NameMax: conformance.MountNameMax})
	bt, gt := conformance.DirTarget("bazil", bazil.Dir), conformance.DirTarget("gofuse", gofuse.Dir)
	bt.Hold, gt.Hold = conformance.HoldProcess(bazil.Pid()), conformance.HoldProcess(gofuse.Pid())
	return []conformance.Target{conformance.DirTarget(conformance.Reference, ref), bt, gt, conformance.StoreTarget("store")},
		[]string{bazil.Dir, gofuse.Dir}
}

// guard runs fn, aborting every mount if it hangs.
func guard(t *testing.T, mounts []string, d time.Duration, fn func()) {
	timer := time.AfterFunc(d, func() {
		t.Errorf("conformance run hung for %v: aborting the FUSE connections", d)
		for _, m := range mounts {
			fusemount.Abort(m)
		}
	})
	defer timer.Stop()
	fn()
}

func TestConformance(t *testing.T) {
	cases := conformance.Cases()
	if len(cases) < 80 {
		t.Fatalf("only %d cases; the suite promises at least 80", len(cases))
	}
	ex, err := conformance.DefaultExpected()
	if err != nil {
		t.Fatal(err)
	}
	ts, mounts := targets(t)
	// The fifth target: the front mount, held to bazil (the primary's
	// library), not to the reference.
	front := startFront(t, t.TempDir())
	ts, mounts = append(ts, front.target()), append(mounts, front.mounts...)
	var rep *conformance.Report
	start := time.Now()
	guard(t, mounts, 5*time.Minute, func() {
		rep, err = conformance.Run(cases, ts, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s\n%s (run in %v)", rep.Table(ex), rep.Summary(), time.Since(start).Round(time.Millisecond))
	checkProxy(t, front)
	rep.Settings = probeSettings(t)

	doc := rep.Markdown("bazil", "gofuse", ex)
	if *update {
		if err := os.WriteFile(compatDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if old, err := os.ReadFile(compatDoc); err != nil || string(old) != doc {
		// The diff goes in the log: CI's conformance job fails on it, and
		// an unexplained change is read there (- committed, + this run).
		t.Errorf("%s is stale or missing: run `make compat` (go test ./conformance -run TestConformance -update) and commit it; - committed, + this run:\n%s",
			filepath.Base(compatDoc), cmp.Diff(strings.Split(string(old), "\n"), strings.Split(doc, "\n")))
	}

	for _, u := range rep.Unexpected(ex) {
		name := strings.SplitN(u, " on ", 2)
		for _, o := range rep.Outcomes {
			if o.Case.Name != name[0] {
				continue
			}
			var b strings.Builder
			base := rep.Baseline(name[1])
			for _, m := range o.Compare(base, name[1]) {
				fmt.Fprintf(&b, "  step %d %s: %s\n", m.Index, m.Call, m.Diff)
			}
			t.Errorf("%s differs from %s (not in %s):\n%s", u, base, expectedFile, b.String())
		}
	}
	for _, s := range rep.Stale(ex) {
		t.Errorf("%s: listed in %s but no longer differs; delete the entry", s, expectedFile)
	}
}

// probeSettings mounts each library with its debug log on, runs the
// settings probe and renders what the logs show.
func probeSettings(t *testing.T) string {
	got := map[string]conformance.Settings{}
	for _, b := range []string{"bazil", "gofuse"} {
		var log bytes.Buffer
		m := mounttest.StartConfig(t, mounttest.Config{Backend: b, Options: fusemount.Options{Debug: true}, Log: &log, NameMax: conformance.MountNameMax})
		var err error
		m.Guard(t, time.Minute, func() { err = conformance.Probe(m.Dir) })
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
		if got[b], err = conformance.ParseSettings(log.String()); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	return conformance.SettingsMarkdown("bazil", "gofuse", got["bazil"], got["gofuse"])
}
