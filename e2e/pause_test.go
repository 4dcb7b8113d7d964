package e2e

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/metrics"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

// TestFrontProgramsPaused runs real programs in the front mount, one after
// the other on the tree the first leaves, with a bridge paused mid-run of
// each (SIGSTOP, then SIGCONT), in the shadow phase (the candidate only
// mirrors) and in canary (it also serves a tenth of the paths; the
// rollback triggers are out of reach, so it keeps serving). With the
// candidate (the go-fuse bridge) paused: tar xf of GOROOT/src net and go
// (1,050 entries), cp -r of its go (611 entries) to a second
// directory, find over the mount, git init, add, commit, status and fsck
// in the copy's types. In shadow, with the primary (bazil, the store of record,
// serving every op) paused: cp -r of its net/http (129 entries); the
// program waits, it must not fail. No program may see an error, every
// entry must be there afterwards through the front and on the primary's
// own mount, the candidate must be back in step, and every op accounted
// for.
func TestFrontProgramsPaused(t *testing.T) {
	requireE2E(t)
	timed(t)
	root := testRoot(t)
	src := goSrc(t)
	tarball := filepath.Join(root, "src.tar")
	if _, err := run(src, "tar", "cf", tarball, "net", "go"); err != nil {
		t.Fatal(err)
	}
	for _, phase := range []string{"shadow", "canary"} {
		t.Run(phase, func(t *testing.T) {
			// The rollback triggers out of reach: a paused candidate is slow,
			// and a rollback would set its weight to 0, making the canary a
			// shadow after the first pause.
			cfg := filepath.Join(root, phase+"-rollout.yaml")
			if err := os.WriteFile(cfg, []byte("phase: "+phase+"\nthresholds:\n  p99: 1h\n  latency_ratio: 1000000\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			divergences := filepath.Join(root, phase+"-divergences.jsonl")
			// Every op mirrored: each step pauses the candidate until it is
			// out of step as a whole and checks the fallback and the resync.
			// With the default --mirror-share auto the share falls first
			// and climbs back over a minute, so a later step could find
			// nothing of its subtree mirrored, nothing to fall behind on.
			s := startFrontStack(t, root, phase, lighthouseBin, "none", "--mirror-share", "1",
				"--rollout-config", cfg, "--serve-fallback", "1s", "--mirror-max-lag", "2s", "--divergence-log", divergences)
			s.divergences = divergences
			for _, st := range pausedSteps(src, tarball) {
				if st.primary && phase != "shadow" {
					continue
				}
				if !t.Run(st.name, func(t *testing.T) { runStep(t, s, phase, st) }) {
					return
				}
			}
			// A step's candidate may go out of step by its lag before it is
			// asked to serve anything: over the phase some op must have been
			// answered by the record in its place.
			if phase == "canary" && proxyStatus(t, s.proxy).Fallbacks == 0 {
				t.Error("no op the candidate served was answered by the record while it was paused")
			}
		})
	}
}

// pausedStep is one program run in the front mount with a bridge paused
// mid-run, and what must be there afterwards.
type pausedStep struct {
	name    string
	primary bool   // pause the primary (the store of record), not the candidate
	dir     string // the directory the program makes or changes, in the mount
	// want lists dir's entries (listing); nil: whatever the primary's own
	// mount holds there.
	want func(t *testing.T) []string
	// run runs the program; mnt is the front mount.
	run func(mnt string) error
	// check checks more afterwards, on mnt: the front mount, then the
	// primary's own.
	check func(t *testing.T, mnt string)
}

// pausedSteps are the programs TestFrontProgramsPaused runs, in order:
// each but the first works on the tree the ones before it left.
func pausedSteps(src, tarball string) []pausedStep {
	// srcTree lists GOROOT/src/DIR, or, for more than one, each under its
	// name (as the tarball has them).
	srcTree := func(dirs ...string) func(t *testing.T) []string {
		return func(t *testing.T) []string {
			if len(dirs) == 1 {
				return listing(t, filepath.Join(src, dirs[0]))
			}
			var all []string
			for _, d := range dirs {
				all = append(all, "d "+d)
				for _, e := range listing(t, filepath.Join(src, d)) {
					all = append(all, underDir(e, d))
				}
			}
			slices.Sort(all)
			return all
		}
	}
	var found string // find's output through the front
	git := func(dir string, args ...string) (string, error) {
		return run(dir, "git", append([]string{"-c", "user.name=lighthouse", "-c", "user.email=e2e@lighthouse"}, args...)...)
	}
	return []pausedStep{
		{name: "tar", dir: "tar", want: srcTree("net", "go"),
			run: func(mnt string) error { return mkdirRun(filepath.Join(mnt, "tar"), "tar", "xf", tarball) },
			check: func(t *testing.T, mnt string) {
				if _, err := run(filepath.Join(mnt, "tar"), "tar", "--compare", "-f", tarball); err != nil {
					t.Errorf("entries missing or different: %v", err)
				}
			}},
		// All of go, not one package: cp must outlast the candidate's 2 s to
		// fall out of step on a fast machine (go/types alone took 2.2 s).
		{name: "cp", dir: "cp", want: srcTree("go"),
			run: func(mnt string) error { _, err := run(mnt, "cp", "-r", "tar/go", "cp"); return err },
			check: func(t *testing.T, mnt string) {
				if _, err := run(mnt, "diff", "-r", filepath.Join(src, "go"), "cp"); err != nil {
					t.Errorf("the copy differs from its source: %v", err)
				}
			}},
		{name: "find", dir: "cp", want: srcTree("go"),
			run: func(mnt string) (err error) { found, err = findEntries(mnt); return err },
			check: func(t *testing.T, mnt string) {
				got, err := findEntries(mnt)
				if err != nil || got != found {
					t.Errorf("find through the front and in %s differ (%v):\n%s", mnt, err, lineDiff(found, got))
				}
			}},
		// In go/types only (114 entries): all of go takes four times as long.
		{name: "git", dir: "cp/types",
			run: func(mnt string) error {
				dir := filepath.Join(mnt, "cp/types")
				for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-qm", "go/types"}, {"status", "--porcelain"}, {"fsck"}} {
					if out, err := git(dir, args...); err != nil || out != "" {
						return fmt.Errorf("git %s: %v\n%s", args[0], err, out)
					}
				}
				return nil
			},
			check: func(t *testing.T, mnt string) {
				// No index refresh on the primary's own mount: a write there
				// would be one the proxy never saw.
				for _, args := range [][]string{{"--no-optional-locks", "status", "--porcelain"}, {"fsck"}} {
					if out, err := git(filepath.Join(mnt, "cp/types"), args...); err != nil || out != "" {
						t.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
					}
				}
			}},
		{name: "cp-primary-paused", primary: true, dir: "cp-http", want: srcTree("net/http"),
			run: func(mnt string) error { _, err := run(mnt, "cp", "-r", "tar/net/http", "cp-http"); return err },
			check: func(t *testing.T, mnt string) {
				if _, err := run(mnt, "diff", "-r", filepath.Join(src, "net/http"), "cp-http"); err != nil {
					t.Errorf("the copy differs from its source: %v", err)
				}
			}},
	}
}

// runStep runs st with its bridge paused mid-run, checks that every entry
// is there through the front and on the primary's own mount, waits for the
// candidate back in step and the proxy idle, and logs the step's figures.
func runStep(t *testing.T, s *frontStack, phase string, st pausedStep) {
	at := stepStart(t, s, phase, st.primary)
	b := s.shadow
	if st.primary {
		b = s.primary
	}
	if err := runPaused(t, s, b, st.name, func() error { return st.run(s.front) }, pauseUntil(st.primary)); err != nil {
		t.Fatalf("%s with the %s paused: %v", st.name, b.role, err)
	}
	missing := 0
	want := listing(t, filepath.Join(s.primary.mnt, st.dir))
	if st.want != nil {
		want = st.want(t)
	}
	for _, mnt := range []string{s.front, s.primary.mnt} {
		got := listing(t, filepath.Join(mnt, st.dir))
		if n := countMissing(want, got); n > 0 || !slices.Equal(want, got) {
			missing += n
			t.Errorf("%s in %s: %d entries missing, listing differs:\n%s", st.dir, mnt, n,
				lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
		}
		st.check(t, mnt)
	}
	at.settle(t, missing)
}

// step is where a step started: the proxy's counters then.
type step struct {
	s           *frontStack
	phase, who  string // who: the paused bridge
	start       time.Time
	before      proxy.Status
	servedFails [2]float64
}

func stepStart(t *testing.T, s *frontStack, phase string, primary bool) *step {
	who := "candidate"
	if primary {
		who = "primary"
	}
	return &step{s: s, phase: phase, who: who, start: time.Now(), before: proxyStatus(t, s.proxy), servedFails: servedFailed(t, s)}
}

// settle waits for the candidate back in step and the proxy idle, logs the
// step's figures (missing: entries missing afterwards, -1 if not checked)
// and checks its accounting.
func (at *step) settle(t *testing.T, missing int) {
	s := at.s
	waitFor(t, "the candidate back in step", 2*time.Minute, func() bool {
		st := proxyStatus(t, s.proxy)
		return len(st.Bridges[1].OutOfStep) == 0 && st.Bridges[1].QueueDepth == 0
	})
	after, m1 := waitProxyIdle(t, s.proxy, 0), servedFailed(t, s)
	m0, d := at.servedFails, statusDelta(at.before, after)
	t.Logf("%s, %s paused: %d ops (%.0f served by the candidate), %d compared (coverage %.4f), skipped %v, %d fallbacks to the record, %d resyncs, divergences %v, %.0f ops failed or refused, %d entries missing, %v",
		at.phase, at.who, d.Ops, m1[0]-m0[0], d.Compared, d.Coverage, d.Skipped, d.Fallbacks, d.Resyncs, d.ByClass, m1[1]-m0[1], missing, time.Since(at.start).Round(100*time.Millisecond))
	if m1[1] > m0[1] {
		t.Errorf("%.0f ops failed or were refused at the proxy", m1[1]-m0[1])
	}
	if at.phase == "canary" && m1[0] == m0[0] {
		t.Error("the candidate served no op of the step: rolled back?")
	}
	var skipped int64
	for _, n := range after.Skipped {
		skipped += n
	}
	if after.Compared+skipped+after.Pending != after.Ops {
		t.Errorf("ops %d != compared %d + skipped %d + pending %d", after.Ops, after.Compared, skipped, after.Pending)
	}
	if after.Divergent != 0 {
		b, _ := os.ReadFile(s.divergences)
		t.Errorf("%d divergences counted: %v; the divergence log:\n%s", after.Divergent, after.ByClass, b[:min(len(b), 16<<10)])
	}
}

// servedFailed is how many ops the candidate served, and how many failed
// or were refused (an error for the client, not an errno), so far.
func servedFailed(t *testing.T, s *frontStack) [2]float64 {
	m := scrape(t, s.proxy.adminURL()+"/metrics")
	const ops = "lighthouse_proxy_operations_total"
	return [2]float64{m.Sum(ops, map[string]string{"served_by": s.shadow.backend}),
		m.Sum(ops, map[string]string{"result": metrics.ResultFailed}) + m.Sum(ops, map[string]string{"result": metrics.ResultRefused})}
}

// pauseUntil is when runPaused resumes the paused bridge. The candidate:
// once it is out of step and 100 more ops were served without it. The
// primary (it serves every op in shadow): once no op was served for 3 s,
// the client waiting.
func pauseUntil(primary bool) func(proxy.Status) bool {
	if primary {
		last, since := int64(-1), time.Time{}
		return func(st proxy.Status) bool {
			if st.Ops != last {
				last, since = st.Ops, time.Now()
			}
			return time.Since(since) >= 3*time.Second
		}
	}
	stale := int64(-1)
	return func(st proxy.Status) bool {
		if stale < 0 && st.Bridges[1].Stale {
			stale = st.Ops
		}
		return stale >= 0 && st.Ops > stale+100
	}
}

// runPaused runs prog (named name) and pauses bridge b while it runs: once
// the proxy has served 100 ops since it started, until resume holds. It
// returns prog's error; prog must still be running when b resumes.
func runPaused(t *testing.T, s *frontStack, b *bridgeProc, name string, prog func() error, resume func(proxy.Status) bool) error {
	t.Helper()
	start := proxyStatus(t, s.proxy).Ops
	done := make(chan error, 1)
	go func() { done <- prog() }()
	t.Cleanup(func() { _ = b.Signal(syscall.SIGCONT) })
	running := func() bool {
		select {
		case err := <-done:
			done <- err
			return false
		default:
			return true
		}
	}
	waitFor(t, name+" under way", time.Minute, func() bool { return !running() || proxyStatus(t, s.proxy).Ops > start+100 })
	if err := b.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the "+b.role+" paused for long enough", time.Minute, func() bool { return !running() || resume(proxyStatus(t, s.proxy)) })
	stillRunning := running()
	if err := b.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		return err
	}
	if !stillRunning {
		t.Fatalf("%s ended before the %s was paused for long: give it more to do", name, b.role)
	}
	return nil
}

// statusDelta is what the proxy counted between two of its statuses;
// Coverage is compared / (compared + skipped).
func statusDelta(a, b proxy.Status) proxy.Status {
	d := proxy.Status{Ops: b.Ops - a.Ops, Compared: b.Compared - a.Compared, Fallbacks: b.Fallbacks - a.Fallbacks,
		Resyncs: b.Resyncs - a.Resyncs, Skipped: map[string]int64{}, ByClass: map[string]int64{}}
	var skipped int64
	for k, n := range b.Skipped {
		if n -= a.Skipped[k]; n != 0 {
			d.Skipped[k], skipped = n, skipped+n
		}
	}
	for k, n := range b.ByClass {
		if n -= a.ByClass[k]; n != 0 {
			d.ByClass[k] = n
		}
	}
	if d.Compared+skipped > 0 {
		d.Coverage = float64(d.Compared) / float64(d.Compared+skipped)
	}
	return d
}

// goSrc is GOROOT/src.
func goSrc(t *testing.T) string {
	t.Helper()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(goroot)), "src")
}

// run runs name in dir and returns its standard output; it fails if the
// program fails or writes anything to its standard error.
func run(dir, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
	err := cmd.Run()
	if err == nil && stderr.Len() > 0 {
		err = fmt.Errorf("wrote to stderr")
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// mkdirRun makes dir and runs name there, silent.
func mkdirRun(dir, name string, args ...string) error {
	out, err := run(filepath.Dir(dir), "mkdir", filepath.Base(dir))
	if err == nil {
		out, err = run(dir, name, args...)
	}
	if err == nil && out != "" {
		err = fmt.Errorf("%s wrote %q", name, out)
	}
	return err
}

// findEntries runs find in dir: one line per entry below it, sorted, as
// listing has them.
func findEntries(dir string) (string, error) {
	out, err := run(dir, "find", ".", "-mindepth", "1", "(", "-type", "f", "-printf", "%y %s %P\\n", ")", "-o", "-printf", "%y %P\\n")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n"), err
}

// listing is every entry below dir, sorted: "f SIZE PATH" for a regular
// file, "d PATH" for a directory, "l PATH" for a symlink (find's %y). find
// runs it: the test process makes no syscall on a mount.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	out, err := findEntries(dir)
	if err != nil {
		t.Errorf("list %s: %v", dir, err)
	}
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// underDir is the listing entry e with its path under dir.
func underDir(e, dir string) string {
	kind, rest, _ := strings.Cut(e, " ")
	if kind == "f" {
		size, path, _ := strings.Cut(rest, " ")
		return fmt.Sprintf("f %s %s", size, filepath.Join(dir, path))
	}
	return kind + " " + filepath.Join(dir, rest)
}

// countMissing is how many of want's entries got lacks.
func countMissing(want, got []string) int {
	have := map[string]bool{}
	for _, e := range got {
		have[e] = true
	}
	n := 0
	for _, e := range want {
		if !have[e] {
			n++
		}
	}
	return n
}

// lineDiff lists the lines only in a (-) and only in b (+), at most 20.
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range slices.Sorted(maps.Keys(ma)) {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range slices.Sorted(maps.Keys(mb)) {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	if len(out) > 20 {
		out = append(out[:20], fmt.Sprintf("... %d more", len(out)-20))
	}
	return strings.Join(out, "\n")
}
