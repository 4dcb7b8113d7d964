package replay

import (
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/sys/unix"
)

// progress is a progress bar on stderr for long replays: drawn when
// stderr is a terminal, otherwise a line every 10 seconds.
type progress struct {
	bar   *progressbar.ProgressBar
	total int64
	done  int64
	last  time.Time
	over  bool
}

func newProgress(total int64) *progress {
	p := &progress{total: total, last: time.Now()}
	if total < 1000 {
		p.over = true // short: no progress report
		return p
	}
	if _, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS); err == nil {
		p.bar = progressbar.NewOptions64(total, progressbar.OptionSetDescription("replay"),
			progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	return p
}

func (p *progress) add(n int64) {
	if p.over {
		return
	}
	p.done += n
	if p.bar != nil {
		p.bar.Add64(n)
		return
	}
	if time.Since(p.last) >= 10*time.Second {
		p.last = time.Now()
		fmt.Fprintf(os.Stderr, "replay: %d/%d ops\n", p.done, p.total)
	}
}

func (p *progress) finish() {
	if p.over {
		return
	}
	p.over = true
	if p.bar != nil {
		p.bar.Finish()
	}
}
