package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// user is one of the uids TestFrontProgramsAsUsers runs programs as.
type user struct{ uid, gid uint32 }

// runAs runs name in dir as u, with env added to a minimal environment,
// and returns its standard output and error; err is its failure.
func runAs(u user, dir string, env []string, name string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &errOut
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LANG=C"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{}}}
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// TestFrontProgramsAsUsers: users other than root (uid 1000, and nobody)
// run tar x, git init/add/commit/status/fsck and a go build in the front
// mount, in a directory of their own (issue 19). Every program succeeds
// with nothing on its standard error, what they made is theirs on the
// front and on both bridges' own mounts, and the proxy compared their ops
// with no divergence and no failed op.
func TestFrontProgramsAsUsers(t *testing.T) {
	requireE2E(t)
	if os.Geteuid() != 0 {
		t.Skip("runs programs as other users: needs root")
	}
	root := testRoot(t)
	// The users must reach the mount: the test's directories, and the
	// run's TMPDIR above them, are 0700. Give each directory on the way
	// search permission for others (only that), and take it back after.
	for d := root; d != "/"; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if mode := st.Mode().Perm(); mode&0o001 == 0 {
			if err := os.Chmod(d, mode|0o011); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(d, mode) })
		}
	}
	in := filepath.Join(root, "in")
	if err := os.Mkdir(in, 0o755); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(in, "http.tar")
	if _, err := run(filepath.Join(goSrc(t), "net"), "tar", "cf", tarball, "http"); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tarball, 0o644); err != nil {
		t.Fatal(err)
	}
	s := startFrontStack(t, root, "users", lighthouseBin, "always")
	before := servedFailed(t, s)

	for _, u := range []user{{1000, 1000}, {65534, 65534}} {
		name := fmt.Sprintf("u%d", u.uid)
		home := filepath.Join(s.front, name)
		cache := filepath.Join(root, "gocache-"+name) // the build cache stays on the plain disk
		for _, d := range []string{home, cache} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(d, int(u.uid), int(u.gid)); err != nil {
				t.Fatal(err)
			}
		}
		env := []string{"HOME=" + home, "GOCACHE=" + cache, "GOTOOLCHAIN=local", "GOFLAGS=", "CGO_ENABLED=0",
			"GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=u", "GIT_AUTHOR_EMAIL=u@example.invalid",
			"GIT_COMMITTER_NAME=u", "GIT_COMMITTER_EMAIL=u@example.invalid"}
		steps := []struct {
			dir  string
			args []string
			// wantErr is the exact standard error; the standard output
			// is checked only for git status (nothing to commit).
			wantErr string
		}{
			{".", []string{"tar", "xf", tarball}, ""},
			{".", []string{"git", "init", "-q", "repo"}, ""},
			{".", []string{"cp", "-r", "http", "repo/"}, ""},
			{"repo", []string{"git", "add", "-A"}, ""},
			{"repo", []string{"git", "commit", "-q", "-m", "import"}, ""},
			{"repo", []string{"git", "status", "--porcelain"}, ""},
			{"repo", []string{"git", "fsck", "--no-progress"}, ""},
			{".", []string{"mkdir", "build"}, ""},
			{"build", []string{"sh", "-c", `printf 'module hello\n\ngo 1.21\n' > go.mod && printf 'package main\n\nfunc main() { println("built in the front") }\n' > main.go`}, ""},
			{"build", []string{"go", "build", "-o", "hello", "."}, ""},
			{"build", []string{"./hello"}, "built in the front\n"}, // println writes to stderr
		}
		for _, st := range steps {
			out, errOut, err := runAs(u, filepath.Join(home, st.dir), env, st.args[0], st.args[1:]...)
			if err != nil || errOut != st.wantErr {
				t.Fatalf("%s: %s in %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(st.args, " "), st.dir, err, out, errOut)
			}
			if st.args[0] == "git" && st.args[1] == "status" && out != "" {
				t.Errorf("%s: git status after the commit:\n%s", name, out)
			}
		}
		for _, rel := range []string{"http/server.go", "repo/http/server.go", "repo/.git/HEAD", "repo/.git/objects", "build/hello"} {
			for _, at := range []string{s.front, s.primary.mnt, s.shadow.mnt} {
				var st unix.Stat_t
				p := filepath.Join(at, name, rel)
				if err := unix.Lstat(p, &st); err != nil {
					t.Errorf("%s: %v", p, err)
				} else if st.Uid != u.uid || st.Gid != u.gid {
					t.Errorf("%s owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, u.uid, u.gid)
				}
			}
		}
	}

	st := waitProxyIdle(t, s.proxy, 0)
	after := servedFailed(t, s)
	var skipped int64
	for _, n := range st.Skipped {
		skipped += n
	}
	t.Logf("%d ops, %d compared (coverage %.4f), skipped %v, %d resyncs, divergences %v, %.0f failed or refused",
		st.Ops, st.Compared, st.Coverage, st.Skipped, st.Resyncs, st.ByClass, after[1]-before[1])
	if after[1] > before[1] {
		t.Errorf("%.0f ops failed or were refused at the proxy", after[1]-before[1])
	}
	if st.Divergent != 0 {
		t.Errorf("%d divergences counted: %v", st.Divergent, st.ByClass)
	}
	if st.Compared+skipped+st.Pending != st.Ops {
		t.Errorf("ops %d != compared %d + skipped %d + pending %d", st.Ops, st.Compared, skipped, st.Pending)
	}
	if st.Coverage < 0.95 {
		t.Errorf("coverage %.4f, below the verdict's 0.95", st.Coverage)
	}
}
