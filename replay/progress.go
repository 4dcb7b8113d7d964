package replay

import (
	"os"

	"github.com/lighthouse-fs/lighthouse/internal/progress"
)

// newProgress is the progress of a long replay on stderr (package
// internal/progress: a bar on a terminal, a line each tenth otherwise); a
// short one (under 1000 ops) shows none.
func newProgress(total int64) *progress.Bar {
	if total < 1000 {
		return nil
	}
	return progress.New(os.Stderr, total, "replay", "ops")
}
