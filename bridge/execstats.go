package bridge

// What the executor tells the bridge about the ops of the connections it
// serves: their outcomes, in batches, for the bridge's metrics, and which
// of them have run too long, for the bridge's watchdog.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/metrics"
)

const (
	// statsDelay is the longest an op's outcome waits before the executor
	// sends it to the bridge; statsMax the batch size that sends at once.
	statsDelay = 100 * time.Millisecond
	statsMax   = 32 << 10
)

// opResult is the result label of an op's outcome.
func opResult(res *fsop.Result, err error) string {
	switch {
	case errors.Is(err, errRefused):
		return metrics.ResultRefused
	case err != nil:
		return metrics.ResultFailed
	case res.Errno != "":
		return metrics.ResultErrno
	}
	return metrics.ResultOK
}

// statsBuffer collects the outcomes of ops and sends them as one ctlStats
// control message at most statsDelay after the first, so that counting an
// op costs no message of its own. Record: str kind, str result, uvarint
// duration in ns, uvarint handle (an open's or close's that succeeded, else
// 0).
type statsBuffer struct {
	send func(fsop.Frame)

	mu      sync.Mutex
	buf     []byte
	pending bool // a flush is scheduled
}

func (s *statsBuffer) add(op *fsop.Op, res *fsop.Result, err error, d time.Duration) {
	result := opResult(res, err)
	var handle uint64
	if result == metrics.ResultOK && (op.Kind == fsop.Open || op.Kind == fsop.Close) {
		handle = op.Handle
	}
	s.mu.Lock()
	s.buf = appendShort(s.buf, string(op.Kind))
	s.buf = appendShort(s.buf, result)
	s.buf = binary.AppendUvarint(s.buf, uint64(max(d, 0)))
	s.buf = binary.AppendUvarint(s.buf, handle)
	full := len(s.buf) >= statsMax
	schedule := !full && !s.pending
	s.pending = s.pending || schedule
	s.mu.Unlock()
	if full {
		s.flush()
	} else if schedule {
		time.AfterFunc(statsDelay, s.flush)
	}
}

// flush sends what was collected, if anything.
func (s *statsBuffer) flush() {
	s.mu.Lock()
	b := s.buf
	s.buf, s.pending = nil, false
	s.mu.Unlock()
	if len(b) > 0 {
		s.send(fsop.Frame{ID: execRequest, Type: fsop.FrameControl,
			Payload: fsop.AppendControl(nil, fsop.Control{Kind: ctlStats, Arg: string(b)})})
	}
}

func appendShort(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s[:min(len(s), 255)]...)
}

// applyStats counts the outcomes of a ctlStats message as Exec counts an
// op's.
func (b *Bridge) applyStats(p []byte) error {
	for len(p) > 0 {
		kind, rest, ok := cutShort(p)
		if !ok {
			return errors.New("stats: truncated kind")
		}
		result, rest, ok := cutShort(rest)
		if !ok {
			return errors.New("stats: truncated result")
		}
		d, n := binary.Uvarint(rest)
		if n <= 0 {
			return errors.New("stats: bad duration")
		}
		handle, m := binary.Uvarint(rest[n:])
		if m <= 0 {
			return errors.New("stats: bad handle")
		}
		p = rest[n+m:]
		b.count(fsop.Kind(kind), result, time.Duration(d))
		if handle != 0 {
			b.trackHandle(fsop.Kind(kind), handle)
		}
	}
	return nil
}

func cutShort(p []byte) (string, []byte, bool) {
	if len(p) == 0 || len(p) < 1+int(p[0]) {
		return "", nil, false
	}
	return string(p[1 : 1+p[0]]), p[1+p[0]:], true
}

// flightTable holds the ops of handed connections while they run, so that
// the bridge's watchdog can find one that has run too long.
type flightTable struct {
	mu   sync.Mutex
	next uint64
	ops  map[uint64]flight
}

type flight struct {
	fc       *frameConn
	id       uint64 // the frame's
	start    time.Time
	answered bool // answered by answerHung: the op's own answer is dropped
}

func (t *flightTable) begin(fc *frameConn, id uint64, start time.Time) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ops == nil {
		t.ops = map[uint64]flight{}
	}
	t.next++
	t.ops[t.next] = flight{fc: fc, id: id, start: start}
	return t.next
}

// end removes an op that finished; true if it was answered already.
func (t *flightTable) end(key uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.ops[key]
	delete(t.ops, key)
	return f.answered
}

// answerHung answers every op running for longer than limit with an error
// (the executor is about to be replaced) and says how many there were.
func (t *flightTable) answerHung(limit time.Duration) error {
	now := time.Now()
	var hung []flight
	t.mu.Lock()
	for k, f := range t.ops {
		if !f.answered && now.Sub(f.start) > limit {
			f.answered = true
			t.ops[k] = f
			hung = append(hung, f)
		}
	}
	t.mu.Unlock()
	for _, f := range hung {
		f.fc.reply(frameErr(f.id, errFailed, fmt.Errorf("op took longer than %v: executor replaced", limit)))
	}
	if len(hung) > 0 {
		return fmt.Errorf("%d op(s) of frames connections running for more than %v", len(hung), limit)
	}
	return nil
}
