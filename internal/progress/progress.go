// Package progress is the one progress display of every command (compat,
// up, workload, replay, bench): a bar when its writer is a terminal,
// otherwise a plain line at each tenth of the way, so a redirected log
// gets ten lines instead of thousands of carriage-return frames.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/sys/unix"
)

// Terminal reports whether w is a terminal (a TTY answers TCGETS; a pipe,
// a file or /dev/null does not).
func Terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Bar shows how far a job of total units has come. A nil *Bar shows
// nothing. Its methods are safe for concurrent use.
type Bar struct {
	mu          sync.Mutex
	bar         *progressbar.ProgressBar // nil when w is not a terminal
	w           io.Writer
	what, unit  string
	total, done int64
	tenth       int64
	finished    bool
}

// New starts a bar on w (nil: none) for total units of unit, described as
// what ("workload", "ops").
func New(w io.Writer, total int64, what, unit string) *Bar {
	if w == nil {
		return nil
	}
	b := &Bar{w: w, what: what, unit: unit, total: total}
	if Terminal(w) {
		b.bar = progressbar.NewOptions64(total, progressbar.OptionSetDescription(what),
			progressbar.OptionSetWriter(w), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(unit), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
	}
	return b
}

// Set records that done units are done.
func (b *Bar) Set(done int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = done
	if b.bar != nil {
		_ = b.bar.Set64(done)
		return
	}
	if t := done * 10 / max(b.total, 1); t > b.tenth && !b.finished {
		b.tenth = t
		fmt.Fprintf(b.w, "%s: %d/%d %s\n", b.what, done, b.total, b.unit)
	}
}

// Add records n more units done.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	done := b.done + n
	b.mu.Unlock()
	b.Set(done)
}

// Describe changes the bar's description (a terminal only: a plain log
// gets the tenths).
func (b *Bar) Describe(what string) {
	if b == nil || b.bar == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bar.Describe(what)
}

// Finish clears the bar; nothing more is shown.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil && !b.finished {
		_ = b.bar.Finish()
	}
	b.finished = true
}
