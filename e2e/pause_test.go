package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFrontTarCandidatePaused runs tar xf of about a thousand files in the
// front mount while the candidate (the go-fuse bridge) is paused, SIGSTOP
// then SIGCONT, in the shadow phase (it only mirrors) and in canary (it
// also serves a share of the paths). tar must see no error, every entry
// must be there afterwards through the front and on the store of record,
// and the candidate must be back in step, every op accounted for.
func TestFrontTarCandidatePaused(t *testing.T) {
	requireE2E(t)
	root := testRoot(t)
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	tarball := filepath.Join(root, "src.tar")
	if err := command(filepath.Join(strings.TrimSpace(string(goroot)), "src"), "tar", "cf", tarball, "net", "go"); err != nil {
		t.Fatal(err)
	}
	for _, phase := range []string{"shadow", "canary"} {
		t.Run(phase, func(t *testing.T) {
			s := startFrontStack(t, root, phase, lighthouseBin, "none",
				"--phase", phase, "--serve-fallback", "1s", "--mirror-max-lag", "2s")
			dir := filepath.Join(s.front, "x")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			tarPaused(t, s, dir, tarball)
			// Every entry, with its content, through the front and on the
			// store of record's own mount.
			for _, d := range []string{dir, filepath.Join(s.primary.mnt, "x")} {
				if err := command(d, "tar", "--compare", "-f", tarball); err != nil {
					t.Errorf("entries missing or different in %s: %v", d, err)
				}
			}
			waitFor(t, "the candidate back in step", 2*time.Minute, func() bool {
				st := proxyStatus(t, s.proxy)
				return len(st.Bridges[1].OutOfStep) == 0 && st.Bridges[1].QueueDepth == 0
			})
			st := waitProxyIdle(t, s.proxy, 0)
			var skipped int64
			for _, n := range st.Skipped {
				skipped += n
			}
			t.Logf("%s: %d ops, %d compared (coverage %.4f of those decided), skipped %v, %d fallbacks to the record, %d resyncs, divergences %v",
				phase, st.Ops, st.Compared, st.Coverage, st.Skipped, st.Fallbacks, st.Resyncs, st.ByClass)
			if st.Compared+skipped+st.Pending != st.Ops {
				t.Errorf("ops %d != compared %d + skipped %d + pending %d", st.Ops, st.Compared, skipped, st.Pending)
			}
			if st.Divergent != 0 {
				t.Errorf("%d divergences counted: %v", st.Divergent, st.ByClass)
			}
			if phase == "canary" && st.Fallbacks == 0 {
				t.Error("no op the candidate served was answered by the record while it was paused")
			}
		})
	}
}

// tarPaused runs tar xf of tarball in dir and pauses the candidate bridge
// while it runs: once the proxy has served some ops, until the candidate
// is out of step and a few hundred more ops were served without it.
func tarPaused(t *testing.T, s *frontStack, dir, tarball string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command("tar", "xf", tarball)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = s.shadow.Signal(syscall.SIGCONT) })
	running := func() bool {
		select {
		case err := <-done:
			done <- err
			return false
		default:
			return true
		}
	}
	start := proxyStatus(t, s.proxy).Ops
	waitFor(t, "tar under way", time.Minute, func() bool { return !running() || proxyStatus(t, s.proxy).Ops > start+300 })
	if err := s.shadow.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the paused candidate out of step", time.Minute, func() bool {
		return !running() || proxyStatus(t, s.proxy).Bridges[1].Stale
	})
	paused := proxyStatus(t, s.proxy).Ops
	waitFor(t, "ops served without the candidate", time.Minute, func() bool { return !running() || proxyStatus(t, s.proxy).Ops > paused+300 })
	if !running() {
		t.Fatal("tar ended before the candidate was paused for long: use a larger tarball")
	}
	if err := s.shadow.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || out.Len() > 0 {
		t.Fatalf("tar xf with the candidate paused: %v\n%s", err, out.String())
	}
}
