package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/internal/progress"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

// lineRun is what replaying one op sequence from the baseline showed.
type lineRun struct {
	onOp, earlier []proxy.Divergence // divergences on the last op, and before it
	rec           *proxy.Record      // the last op's record
	lastErr       error              // the last op's error, if any
}

// runSequence resets the bridges to the baseline and runs ops through a
// fresh proxy (no resync during them: they run on the state they diverge
// on), collecting the divergences.
func (rp *replayer) runSequence(ctx context.Context, ops []fsop.Op, prog *progress.Bar) (lineRun, error) {
	var out lineRun
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := rp.clients[0].Restore(rctx, rp.baseline)
	cancel()
	if err != nil {
		return out, fmt.Errorf("reset the primary to the starting state: %w", err)
	}
	var mu sync.Mutex
	var divs []proxy.Divergence
	var recBuf bytes.Buffer
	p, err := rp.newProxy(rp.collect(&mu, &divs), &recBuf, time.Hour)
	if err != nil {
		return out, err
	}
	initial := p.Stats().Resyncs
	cctx := proxy.WithClient(context.WithoutCancel(ctx), "replay")
	for i, op := range ops {
		if ctx.Err() != nil {
			break
		}
		_, err := rp.exec(cctx, p, op)
		if i == len(ops)-1 {
			out.lastErr = err
		}
		prog.Add(1)
	}
	closeReplayProxy(p)
	rp.stats.add(p.Stats(), initial)
	if err := ctx.Err(); err != nil {
		return out, err
	}
	// The last op is the one with the highest seq: a resync's barrier
	// takes a seq number too, so the count of ops does not say which.
	var recs []proxy.Record
	var final uint64
	dec := json.NewDecoder(&recBuf)
	for {
		var r proxy.Record
		if dec.Decode(&r) != nil {
			break
		}
		recs = append(recs, r)
		final = max(final, r.Seq)
	}
	for i := range recs {
		if recs[i].Seq == final {
			out.rec = &recs[i]
		}
	}
	for _, x := range divs {
		if x.Seq == final {
			out.onOp = append(out.onOp, x)
		} else {
			out.earlier = append(out.earlier, x)
		}
	}
	return out, nil
}

// replayDivergence replays one divergence line from the baseline state and
// says whether its class reproduces on its op.
func (rp *replayer) replayDivergence(ctx context.Context, l replayLine, prog *progress.Bar) (string, error) {
	d := l.div
	ops := append(append([]fsop.Op(nil), d.Recent...), d.Op)
	run, err := rp.runSequence(ctx, ops, prog)
	if err != nil {
		return "", fmt.Errorf("line %d: %w", l.line, err)
	}
	for _, x := range append(append([]proxy.Divergence(nil), run.earlier...), run.onOp...) {
		if notAllowed(x) {
			rp.stats.notAllowed = append(rp.stats.notAllowed, x)
		}
	}
	onOp, earlier, rec, lastErr := run.onOp, run.earlier, run.rec, run.lastErr

	return lineVerdict(l, lastErr, onOp, earlier, rec), nil
}

// lineVerdict says what replaying divergence line l showed: the recorded
// class on its op again, another class, or why it did not reproduce, and
// which earlier ops diverged.
func lineVerdict(l replayLine, lastErr error, onOp, earlier []proxy.Divergence, rec *proxy.Record) string {
	d := l.div
	what := fmt.Sprintf("line %d: seq %d %s %q", l.line, d.Seq, d.Op.Kind, d.Op.Path)
	if d.Op.To != "" {
		what += fmt.Sprintf(" -> %q", d.Op.To)
	}
	what += fmt.Sprintf(" after %d recent ops: recorded %s", len(d.Recent), d.Class)
	var verdict string
	switch {
	case lastErr != nil && !errors.Is(lastErr, proxy.ErrRefused):
		verdict = "not reproduced: the op failed on the serving bridge: " + lastErr.Error()
	case len(onOp) > 0:
		classes := make([]string, len(onOp))
		same := false
		for i, x := range onOp {
			classes[i] = x.Class
			same = same || x.Class == d.Class
		}
		if same {
			verdict = "reproduced (" + strings.Join(classes, ", ") + ")"
		} else {
			verdict = "reproduced as another class: " + strings.Join(classes, ", ")
		}
	case rec != nil && rec.Skipped != "":
		verdict = "not reproduced: the op was not compared (" + rec.Skipped + ")"
	case rec != nil && rec.Mirror == nil:
		verdict = "not reproduced: the op was not mirrored (the shadow is out of step)"
	default:
		verdict = "not reproduced: both bridges answered the same"
	}
	if len(earlier) > 0 {
		var e []string
		for _, x := range earlier {
			e = append(e, fmt.Sprintf("%s on %s %q", x.Class, x.Op.Kind, x.Op.Path))
		}
		verdict += "; earlier ops diverged: " + strings.Join(e, ", ")
	}
	return what + ": " + verdict
}
