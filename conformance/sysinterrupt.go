package conformance

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The interrupt family: a request the FUSE server has not answered when
// the calling thread gets a signal. The kernel then sends the server an
// INTERRUPT for it; what the library does with that decides whether the
// call returns EINTR, is restarted, or completes as if nothing happened.
//
// To hold a request deterministically, the step stops the process that
// serves the mount (Target.Hold), makes the call on a thread of its own,
// waits until that thread is blocked in the call, signals it, waits until
// the signal is pending on it, and resumes the server. The kernel marks the
// queued request interrupted, and when the server reads it, queues an
// INTERRUPT right behind it (fs/fuse/dev.c, fuse_dev_do_read), so the
// library gets the request and then the interrupt while it serves it. A
// target without a server of ours (the reference, a plain directory) runs
// the call at once: it has no request to hold, and its answer is the one
// the libraries are compared with.

// familyAbout says, for a family whose cases need it, how they work and
// what was seen beyond their results; the report prints it under the
// family's heading.
var familyAbout = map[string]string{
	"interrupt": "Each case holds a request in the kernel: it stops the process serving the mount (SIGSTOP), makes the call, " +
		"sends the blocked thread SIGUSR1 and continues the server: the kernel marks the request interrupted and queues an " +
		"INTERRUPT for it once the server reads it, which it drops if the answer comes first (the same for every later request " +
		"of the call while the signal is pending). Neither library answers " +
		"EINTR by itself: bazil cancels the request's context and go-fuse closes its cancel channel, and neither adapter gives up " +
		"a store call it has started, so the call completes and the caller never sees EINTR. Seen in the libraries' debug logs " +
		"(`lighthouse mount --fuse-debug`, one run of this family): bazil's shows an INTERRUPT for the held request and for each " +
		"later request of the call; go-fuse's shows none, and its calls complete the same way. " +
		"The front's INTERRUPT cancels nothing either: the proxy runs the op on a context without cancellation (proxy.Exec). " +
		"The reference and the store have no server to stop: their call runs at once.",
	"users": "Steps marked `[uid N]` run as that user: on a thread of their own whose groups, gid and uid are changed " +
		"with the raw system calls (internal/asuser; Linux keeps credentials per thread), relative to the case's directory, " +
		"which root prepared. uid 1000 and 1001 have their own group, 1001 is also in group 2000, 65534 is nobody. The " +
		"mounts are allow_other (the default of `bridge`, `mount` and the front; without it every such step is EACCES, " +
		"fusemount.Options.OwnerOnly) and default_permissions, so the kernel checks modes, groups, search permission and " +
		"sticky directories, and chmod, chown and utimensat rules, before the library is asked. What the filesystem must do " +
		"itself: own a new node by the caller, give a set-group-id directory's group (and, to directories, the bit) to what " +
		"is made in it.",
}

// holdWait bounds each wait of a held step (the thread blocking, the
// signal arriving, the call returning once the server runs again).
const holdWait = 10 * time.Second

// HoldProcess is a Target.Hold for a mount served by process pid: it stops
// the process (SIGSTOP) and waits until the kernel shows it stopped;
// release continues it (SIGCONT).
func HoldProcess(pid int) func() (func() error, error) {
	return func() (func() error, error) {
		if err := unix.Kill(pid, unix.SIGSTOP); err != nil {
			return nil, fmt.Errorf("stop the server (pid %d): %w", pid, err)
		}
		release := func() error { return unix.Kill(pid, unix.SIGCONT) }
		if !waitFor(holdWait, func() bool { return processState(pid) == "T" }) {
			return nil, errors.Join(fmt.Errorf("the server (pid %d) did not stop within %v", pid, holdWait), release())
		}
		return release, nil
	}
}

// processState is the state letter of /proc/PID/stat ("T": stopped), or
// "" if it cannot be read.
func processState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// pid (comm) STATE ...: comm may hold spaces and parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+3 <= len(s) {
		return s[i+2 : i+3]
	}
	return ""
}

// signalPending reports whether signal sig is pending on thread tid of
// this process (SigPnd in its status: the thread-directed set).
func signalPending(tid int, sig unix.Signal) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/status", tid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigPnd:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}

// waitFor polls cond every millisecond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// heldSignalled is a step whose call (syscall nr, made by run) is held in
// the kernel's queue and hit by SIGUSR1 there (see the family's comment).
// It shows what run returns: the same text as an undisturbed call if the
// library completes the request, EINTR if it gives up on it.
func heldSignalled(call string, nr int, run func(e *Env) (string, error)) Step {
	return step(call+" while the server is stopped; SIGUSR1 once blocked; server continued", func(e *Env) (string, error) {
		if e.hold == nil {
			return run(e)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, unix.SIGUSR1)
		defer signal.Stop(sig)
		release, err := e.hold()
		if err != nil {
			return "", err
		}
		released := false
		defer func() {
			if !released {
				_ = release()
			}
		}()
		type outcome struct {
			text string
			err  error
		}
		tid, res := make(chan int, 1), make(chan outcome, 1)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tid <- unix.Gettid()
			text, err := run(e)
			res <- outcome{text, err}
		}()
		t := <-tid
		if !waitInSyscall(t, nr, holdWait) {
			return "", fmt.Errorf("the calling thread never blocked in syscall %d with the server stopped", nr)
		}
		if err := unix.Tgkill(os.Getpid(), t, unix.SIGUSR1); err != nil {
			return "", err
		}
		if !waitFor(holdWait, func() bool { return signalPending(t, unix.SIGUSR1) }) {
			return "", errors.New("SIGUSR1 never showed pending on the blocked thread")
		}
		released = true
		if err := release(); err != nil {
			return "", fmt.Errorf("continue the server: %w", err)
		}
		select {
		case o := <-res:
			<-sig // handled once the call came back
			return o.text, o.err
		case <-time.After(holdWait):
			return "", fmt.Errorf("the call was still blocked %v after the server continued", holdWait)
		}
	})
}

// interruptCases: a namespace change, a write and a read, each held in the
// kernel's queue and interrupted there; the steps after them show whether
// the op took effect.
func interruptCases() []Case {
	data := []byte("0123456789")
	pwrite := heldSignalled(`pwrite(fd1, "abc", 0)`, unix.SYS_PWRITE64, func(e *Env) (string, error) {
		fd, err := e.fd(1)
		if err != nil {
			return "", err
		}
		n, err := unix.Pwrite(fd, []byte("abc"), 0)
		return fmt.Sprintf("%d bytes", n), err
	})
	pread := heldSignalled("pread(fd1, 16, 0)", unix.SYS_PREAD64, func(e *Env) (string, error) {
		fd, err := e.fd(1)
		if err != nil {
			return "", err
		}
		b := make([]byte, 16)
		n, err := unix.Pread(fd, b, 0)
		if n < 0 {
			n = 0
		}
		return describeBytes(b[:n]), err
	})
	mkdir := heldSignalled(`mkdir("d", 0755)`, unix.SYS_MKDIRAT, func(e *Env) (string, error) {
		return "", unix.Mkdir(e.at("d"), 0o755)
	})
	return []Case{
		{Name: "interrupt/mkdir", Sys: []Step{mkdir, lstatStep("d")}},
		{Name: "interrupt/pwrite", Sys: []Step{writeStep("f", data), openStep(1, "f", unix.O_WRONLY, "O_WRONLY"),
			pwrite, closeStep(1), contentStep("f")}},
		{Name: "interrupt/pread", Sys: []Step{writeStep("f", data), openStep(1, "f", unix.O_RDONLY, "O_RDONLY"),
			pread, closeStep(1)}},
	}
}
