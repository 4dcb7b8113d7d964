package bridge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultMirrorNice is the nice value of a bridge that only mirrors: the
// lowest CPU priority short of SCHED_IDLE, so that on a busy machine the
// serving bridge's threads run first and the mirror catches up in the
// gaps (docs/performance.md, "The mirror yields the CPU").
const DefaultMirrorNice = 19

// Priorities a proxy asks for with fsop.ControlPriority.
const (
	PriorityServing = "serving" // nice 0: the bridge answers clients
	PriorityMirror  = "mirror"  // Config.MirrorNice: it only mirrors
)

// SetPriority renices every thread of the bridge and of its executor
// process (the FUSE server, the HTTP server, the syscalls): Linux's nice
// is per thread, and threads created later inherit it from their creator.
// Going back to nice 0 needs CAP_SYS_NICE or an RLIMIT_NICE of at least
// 20; without either the bridge stays low and says so.
func (b *Bridge) SetPriority(priority string) error {
	nice := 0
	switch priority {
	case PriorityServing:
	case PriorityMirror:
		nice = max(b.cfg.MirrorNice, 0)
	default:
		return fmt.Errorf("%w: priority %q: want %s or %s", errRefused, priority, PriorityServing, PriorityMirror)
	}
	b.opsMu.RLock()
	pids := []int{os.Getpid()}
	if b.exec != nil {
		pids = append(pids, b.exec.cmd.Process.Pid)
	}
	b.opsMu.RUnlock()
	b.prioMu.Lock()
	defer b.prioMu.Unlock()
	if nice == b.nice {
		return nil
	}
	var errs []error
	for _, pid := range pids {
		errs = append(errs, reniceProcess(pid, nice))
	}
	if err := errors.Join(errs...); err != nil {
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			err = fmt.Errorf("%w: cannot raise the priority back to nice %d: the bridge needs CAP_SYS_NICE or an RLIMIT_NICE of 20 (docker: --ulimit nice=20:20)", errFailed, nice)
		}
		if msg := err.Error(); msg != b.prioErr { // a proxy asks again every few seconds
			b.prioErr = msg
			b.log.Warn("bridge priority unchanged", "want", priority, "nice", nice, "err", err)
		}
		return err
	}
	b.nice, b.prioErr = nice, ""
	b.metrics.Nice.Set(float64(nice))
	b.log.Info("bridge priority", "priority", priority, "nice", nice)
	return nil
}

// reniceProcess sets the nice value of every thread of pid.
func reniceProcess(pid, nice int) error {
	tasks, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("thread %d of %d: %w", tid, pid, err))
		}
	}
	return errors.Join(errs...)
}

func (b *Bridge) currentNice() int {
	b.prioMu.Lock()
	defer b.prioMu.Unlock()
	return b.nice
}
