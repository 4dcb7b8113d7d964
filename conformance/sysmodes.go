package conformance

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// umaskCases create files and directories under several umasks: the
// kernel applies the caller's umask before the request reaches the
// filesystem, so every target must show the requested mode minus the
// umask, exactly once (issue 20: the front's bridges applied their own
// umask a second time).
func umaskCases() []Case {
	var cs []Case
	for _, mask := range []int{0, 0o022, 0o077} {
		var steps []Step
		for _, mode := range []uint32{0o777, 0o666, 0o620} {
			f, d := fmt.Sprintf("f%04o", mode), fmt.Sprintf("d%04o", mode)
			steps = append(steps,
				underUmask(mask, fmt.Sprintf("open(%q, O_CREAT|O_EXCL|O_WRONLY, %04o)", f, mode), func(e *Env) error {
					fd, err := unix.Open(e.at(f), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, mode)
					if err == nil {
						err = unix.Close(fd)
					}
					return err
				}),
				lstatStep(f),
				underUmask(mask, fmt.Sprintf("mkdir(%q, %04o)", d, mode), func(e *Env) error {
					return unix.Mkdir(e.at(d), mode)
				}),
				lstatStep(d))
		}
		cs = append(cs, Case{Name: fmt.Sprintf("umask/%03o", mask), Sys: steps})
	}
	return cs
}

// underUmask is a step that runs with the process umask set to mask, and
// the umask restored after it.
func underUmask(mask int, call string, run func(e *Env) error) Step {
	return do(fmt.Sprintf("umask(%03o); %s", mask, call), func(e *Env) error {
		old := unix.Umask(mask)
		defer unix.Umask(old)
		return run(e)
	})
}
