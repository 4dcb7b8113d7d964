package e2e

// Real programs in the front mount against a plain directory and the
// primary bridge's own (bazil) mount, in one run
// (docs/performance.md, "Real programs through the front mount"):
//
//	LIGHTHOUSE_BENCH=1 go test -count=1 -timeout 3h -run TestFrontPrograms -v ./e2e
//
// LIGHTHOUSE_BENCH_SYNC=always,none sets the bridges' fsync policies (one
// stack each; default always); LIGHTHOUSE_BENCH_BASE=PATH adds a stack of
// another lighthouse binary (an earlier commit's), measured in the same
// run, program by program; LIGHTHOUSE_BENCH_PROGRAMS=tar,cp,git,dd,diff,rm,gobuild
// picks the programs (default tar,cp,git,dd); LIGHTHOUSE_BENCH_OUT=FILE
// writes the table there too; LIGHTHOUSE_BENCH_FRONT_CACHE=0,1s adds a
// stack per value of the proxy's --front-cache (default 0 only). With
// bindfs installed, each program also runs on a bindfs mount (libfuse's C
// passthrough of a plain directory, with the front's kernel caches): what a
// FUSE mount costs the program before any store, proxy or mirror.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fusemount"
)

// frontStack is two bridges and a proxy serving a front mount.
type frontStack struct {
	name            string // binary label and sync policy
	front           string // the mount point
	primary, shadow *bridgeProc
	proxy           *proxyProc
	divergences     string // the proxy's --divergence-log, if the test set one
	passthrough     string // a bindfs mount beside it, if TestFrontPrograms made one
}

// startFrontStack starts a bazil primary, a go-fuse shadow and a proxy
// serving a front mount under root, built from bin; proxyArgs are more
// of the proxy's flags.
func startFrontStack(t *testing.T, root, label, bin, sync string, proxyArgs ...string) *frontStack {
	t.Helper()
	dir := filepath.Join(root, label+"-"+sync)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	primary := startBridgeOf(t, bin, dir, "bazil", "primary", "127.0.0.1:0", sync)
	shadow := startBridgeOf(t, bin, dir, "gofuse", "shadow", "127.0.0.1:0", sync)
	front := filepath.Join(dir, "front")
	if err := os.MkdirAll(front, 0o755); err != nil {
		t.Fatal(err)
	}
	px := startProxyOf(t, bin, dir, []string{front}, primary, shadow, append([]string{"--mount", front}, proxyArgs...)...)
	waitMounted(t, front, nil, nil)
	return &frontStack{name: label + ", sync " + sync, front: front, primary: primary, shadow: shadow, proxy: px}
}

// startPassthrough mounts bindfs, libfuse's C passthrough, over a fresh
// directory under dir, with the kernel caches the front has with
// --front-cache cache ("0": none): the floor of what a FUSE mount costs a
// program, with no store, fsync, proxy or mirror behind it. "" when bindfs
// is not installed (Debian: apt-get install bindfs).
func startPassthrough(t *testing.T, dir, cache string) string {
	t.Helper()
	bin, err := exec.LookPath("bindfs")
	if err != nil {
		t.Logf("no bindfs on PATH: the passthrough FUSE column is left out")
		return ""
	}
	d := time.Duration(0)
	if cache != "0" {
		if d, err = time.ParseDuration(cache); err != nil {
			t.Fatalf("LIGHTHOUSE_BENCH_FRONT_CACHE %q: %v", cache, err)
		}
	}
	src, mnt := filepath.Join(dir, "passthrough-src"), filepath.Join(dir, "passthrough")
	for _, p := range []string{src, mnt} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secs := fmt.Sprintf("%g", d.Seconds())
	cmd := exec.Command(bin, "-f", "--multithreaded",
		"-o", "entry_timeout="+secs+",attr_timeout="+secs+",negative_timeout="+secs, src, mnt)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{}) // closed once bindfs has exited
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		if err := fusemount.Unmount(mnt); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	waitMounted(t, mnt, exited, func() error { return waitErr })
	return mnt
}

// waitMounted waits until a FUSE mount is on dir. exited, if not nil, is
// closed when the process that was to mount it has ended, and waitErr then
// says how.
func waitMounted(t *testing.T, dir string, exited <-chan struct{}, waitErr func() error) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		if _, ok := fusemount.Find(dir); ok {
			return
		}
		select {
		case <-exited: // never, when nil
			t.Fatalf("the server of %s exited before mounting it: %v", dir, waitErr())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mount on %s after %v", dir, readyTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// program is one measured command, run in a fresh directory.
type program struct {
	name string
	// setup, if set, prepares dir first, untimed.
	setup func(t *testing.T, dir string) error
	// run runs the program in dir (a fresh directory on the plain disk, on
	// the primary bridge's own mount, or in the front mount).
	run func(t *testing.T, dir string) error
}

func command(dir string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// programInputs makes the tarball (GOROOT/src/cmd, crypto and runtime:
// about 100 MB, 5,600 entries) and the git repository (GOROOT/src/net,
// committed: 4.9 MB, 700 files) the programs use, in dir.
func programInputs(t *testing.T, dir string) (tarball, repo string) {
	t.Helper()
	src := goSrc(t)
	tarball = filepath.Join(dir, "src.tar")
	if err := command(src, "tar", "cf", tarball, "cmd", "crypto", "runtime"); err != nil {
		t.Fatal(err)
	}
	repo = filepath.Join(dir, "repo")
	if err := command(dir, "cp", "-r", filepath.Join(src, "net"), repo); err != nil {
		t.Fatal(err)
	}
	git := []string{"-c", "user.email=bench@lighthouse", "-c", "user.name=bench"}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-qm", "net"}} {
		if err := command(repo, "git", append(git, args...)...); err != nil {
			t.Fatal(err)
		}
	}
	return tarball, repo
}

func frontPrograms(tarball, repo string) []program {
	copyRepo := func(t *testing.T, dir string) error { return command(dir, "cp", "-r", repo, "repo") }
	return []program{
		{name: "tar", run: func(t *testing.T, dir string) error { return command(dir, "tar", "xf", tarball) }},
		{name: "cp", run: copyRepo},
		{name: "git", run: func(t *testing.T, dir string) error {
			// The first status after a copy rehashes every file (the index's
			// times no longer match); the second finds it all clean.
			if err := command(dir, "cp", "-r", repo, "repo"); err != nil {
				return err
			}
			return command(filepath.Join(dir, "repo"), "git", "status", "--porcelain")
		}},
		{name: "dd", run: func(t *testing.T, dir string) error {
			return command(dir, "dd", "if=/dev/zero", "of=zeros", "bs=10k", "count=820", "status=none")
		}},
		{name: "diff", setup: copyRepo, run: func(t *testing.T, dir string) error {
			return command(dir, "diff", "-r", repo, "repo")
		}},
		{name: "rm", setup: copyRepo, run: func(t *testing.T, dir string) error {
			return command(dir, "rm", "-rf", "repo")
		}},
		{name: "gobuild", setup: func(t *testing.T, dir string) error {
			// A small program; the build cache is the user's (warm), so what
			// is timed is reading the sources and writing the binary here.
			if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport \"net/http\"\n\nfunc main() { _ = http.ListenAndServe(\"127.0.0.1:0\", nil) }\n"), 0o644)
		}, run: func(t *testing.T, dir string) error {
			return command(dir, "go", "build", "-o", "hello", ".")
		}},
	}
}

// TestFrontPrograms times real programs in a plain directory on the same
// disk, on the primary bridge's own mount (the bazil mount alone) and in
// the front mount, one after the other, and prints the ratios.
func TestFrontPrograms(t *testing.T) {
	if os.Getenv("LIGHTHOUSE_BENCH") != "1" {
		t.Skip("a benchmark: run with LIGHTHOUSE_BENCH=1")
	}
	requireE2E(t)
	root := testRoot(t)
	in := filepath.Join(root, "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	tarball, repo := programInputs(t, in)
	syncs := strings.Split(envOr("LIGHTHOUSE_BENCH_SYNC", "always"), ",")
	type bin struct{ label, path string }
	bins := []bin{{"now", lighthouseBin}}
	if base := os.Getenv("LIGHTHOUSE_BENCH_BASE"); base != "" {
		bins = append([]bin{{"base", base}}, bins...)
	}
	caches := strings.Split(envOr("LIGHTHOUSE_BENCH_FRONT_CACHE", "0"), ",")
	var stacks []*frontStack
	for _, sync := range syncs {
		for _, cache := range caches {
			for _, b := range bins {
				label, args := b.label, []string(nil)
				if cache != "0" {
					label, args = b.label+"-cache-"+cache, []string{"--front-cache", cache}
				}
				st := startFrontStack(t, root, label, b.path, sync, args...)
				st.passthrough = startPassthrough(t, filepath.Join(root, label+"-"+sync), cache)
				stacks = append(stacks, st)
			}
		}
	}
	want := strings.Split(envOr("LIGHTHOUSE_BENCH_PROGRAMS", "tar,cp,git,dd"), ",")
	var rows []string
	load := func() string {
		b, _ := os.ReadFile("/proc/loadavg")
		return strings.Join(strings.Fields(string(b))[:3], " ")
	}
	for _, p := range frontPrograms(tarball, repo) {
		if !slices.Contains(want, p.name) {
			continue
		}
		for i, s := range stacks {
			// The same program on a plain directory, on a passthrough FUSE
			// mount of one, on the primary bridge's own mount (bazil alone:
			// no proxy, no mirror; a directory the proxy never sees) and in
			// the front mount, one after the other.
			dirs := []string{filepath.Join(root, fmt.Sprintf("plain-%s-%d", p.name, i)), "",
				filepath.Join(s.primary.mnt, "bench-"+p.name), filepath.Join(s.front, p.name)}
			if s.passthrough != "" {
				dirs[1] = filepath.Join(s.passthrough, p.name)
			}
			var took [4]time.Duration
			var ops int64 // what the proxy served while the program ran in the front
			for j, dir := range dirs {
				if dir == "" {
					continue
				}
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if p.setup != nil {
					if err := p.setup(t, dir); err != nil {
						t.Fatalf("%s: set up %s: %v", p.name, dir, err)
					}
				}
				before, start := proxyStatus(t, s.proxy).Ops, time.Now()
				if err := p.run(t, dir); err != nil {
					t.Fatalf("%s in %s: %v", p.name, dir, err)
				}
				took[j] = time.Since(start)
				if j == 3 {
					ops = proxyStatus(t, s.proxy).Ops - before
				}
			}
			sec := func(j int) string {
				if took[j] == 0 {
					return "-"
				}
				return fmt.Sprintf("%.2f s", took[j].Seconds())
			}
			ratio := func(j, k int) string {
				if took[j] == 0 || took[k] == 0 {
					return "-"
				}
				return fmt.Sprintf("%.1fx", took[j].Seconds()/took[k].Seconds())
			}
			row := fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s |", p.name, s.name,
				sec(0), sec(1), sec(2), sec(3), ratio(1, 0), ratio(2, 0), ratio(3, 0), ratio(3, 2), ops, load())
			t.Log(row)
			rows = append(rows, row)
		}
	}
	table := "| program | stack | plain directory | passthrough FUSE | bazil mount | front mount | passthrough/plain | bazil/plain | front/plain | front/bazil | front ops | load average |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n" +
		strings.Join(rows, "\n") + "\n"
	fmt.Print(table)
	if out := os.Getenv("LIGHTHOUSE_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
