package front_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/fusemount"
)

// kindsSince returns the kinds of the ops logged after the first skip.
func kindsSince(ops []fsop.Op, skip int) []fsop.Kind {
	var out []fsop.Kind
	for _, op := range ops[skip:] {
		out = append(out, op.Kind)
	}
	return out
}

// TestSetattrAnswersWithoutLstat: a SETATTR of a file whose attributes the
// front remembers is answered from them, with the ops it made and no
// lstat after (tar sets three attributes of every file it extracts); the
// answer is not cached, even with a 1 h attribute timeout, so a stat
// after it still asks the bridges (an lstat) and sees their attributes.
func TestSetattrAnswersWithoutLstat(t *testing.T) {
	for _, ttl := range []time.Duration{0, time.Hour} {
		t.Run("attr timeout "+ttl.String(), func(t *testing.T) {
			m := startFront(t, fusemount.Options{AttrTimeout: ttl}, true)
			p := filepath.Join(m.dir, "f")
			m.guard(t, time.Minute, func() {
				f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
				must(t, "create", err)
				defer f.Close()
				_, err = f.Write([]byte("abc"))
				must(t, "write", err)
				// On the descriptor, as tar does: no lookups in between.
				before := len(m.ops(t))
				must(t, "fchmod", unix.Fchmod(int(f.Fd()), 0o640))
				mtime := unix.NsecToTimespec(time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano())
				must(t, "futimens", unix.UtimesNanoAt(int(f.Fd()), "", []unix.Timespec{mtime, mtime}, unix.AT_EMPTY_PATH))
				ops := m.ops(t)
				if got := kindsSince(ops, before); len(got) != 3 || got[0] != fsop.Pwrite || got[1] != fsop.Chmod || got[2] != fsop.Utimens {
					t.Errorf("fchmod and futimens sent %v, want [pwrite chmod utimens] (the write gathered before them)", got)
				}
				before = len(ops)
				var st unix.Stat_t
				must(t, "fstat", unix.Fstat(int(f.Fd()), &st))
				if got := kindsSince(m.ops(t), before); len(got) != 1 || got[0] != fsop.Lstat {
					t.Errorf("an fstat after the SETATTRs sent %v, want [lstat]: their answer must not be cached", got)
				}
				if st.Mode&0o7777 != 0o640 || st.Mtim != mtime || st.Size != 3 {
					t.Errorf("after chmod 0640 and utimensat: mode %04o, mtime %v, size %d; want 0640, %v, 3", st.Mode&0o7777, st.Mtim, st.Size, mtime)
				}
			})
		})
	}
}
