package proxy

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// newCanaryProxy is a proxy in canary whose candidate serves every path it
// is in step on, with a 20 ms serve fallback, and exec, which runs an op
// through it and fails the test unless it succeeds.
func newCanaryProxy(t *testing.T) (p *Proxy, pb, sb *storeBridge, exec func(fsop.Op) fsop.Result) {
	pb, sb = newStoreBridge(), newStoreBridge()
	p, _ = newTestProxy(t, Config{Primary: pb, Shadow: sb, ServeFallback: 20 * time.Millisecond,
		Route:  CandidateRoute(func(string) bool { return true }),
		Weight: func() float64 { return 0.5 }})
	exec = func(op fsop.Op) fsop.Result {
		t.Helper()
		res, err := p.Exec(context.Background(), &op)
		if err != nil || res.Errno != "" {
			t.Fatalf("%s %s (handle %d): %v %s", op.Kind, op.Path, op.Handle, err, res.Errno)
		}
		return res
	}
	return p, pb, sb, exec
}

// TestServeFallback: in canary, a candidate that stops answering (paused)
// costs its clients no error and no lost write. The op it was serving gets
// the store of record's answer after ServeFallback, the candidate goes out
// of step and serves nothing more, and once it answers again its late
// result is still accounted for and the resync brings it back in step.
func TestServeFallback(t *testing.T) {
	p, pb, sb, exec := newCanaryProxy(t)
	exec(fsop.Op{Kind: fsop.Mkdir, Path: "d", Mode: 0o755})
	waitIdle(t, p)
	if st := p.Stats(); st.ServedBy["gofuse"] != 1 || st.Fallbacks != 0 {
		t.Fatalf("before the pause: served %v, fallbacks %d; want the candidate to serve the mkdir", st.ServedBy, st.Fallbacks)
	}

	sb.gate = make(chan struct{}) // the candidate stops answering
	exec(fsop.Op{Kind: fsop.WriteFile, Path: "d/f", Data: []byte("kept")})
	st := p.Stats()
	if st.Fallbacks != 1 || st.ServedBy["bazil"] != 1 {
		t.Fatalf("the write was not answered by the record: served %v, fallbacks %d", st.ServedBy, st.Fallbacks)
	}
	if !p.Status().Bridges[Shadow].Stale {
		t.Fatal("the candidate that did not answer is still in step")
	}
	// Out of step, the candidate serves nothing: this read goes to the
	// record at once (a second fallback would count 2).
	if got := exec(fsop.Op{Kind: fsop.ReadFile, Path: "d/f"}); string(got.Data) != "kept" {
		t.Fatalf("read %q after the fallback, want %q", got.Data, "kept")
	}
	if st := p.Stats(); st.Fallbacks != 1 || st.ServedBy["bazil"] != 2 {
		t.Fatalf("the read: served %v, fallbacks %d; want the record to serve it without a fallback", st.ServedBy, st.Fallbacks)
	}

	close(sb.gate) // the candidate answers again
	waitFor(t, "the candidate back in step", func() bool { return len(p.Status().Bridges[Shadow].OutOfStep) == 0 })
	waitIdle(t, p)
	v := p.Stats()
	var skipped int64
	for _, n := range v.Skipped {
		skipped += n
	}
	if v.Ops != 3 || v.Compared+skipped != v.Ops {
		t.Fatalf("ops %d = compared %d + skipped %v? every op must end compared or skipped once", v.Ops, v.Compared, v.Skipped)
	}
	if v.Divergent != 0 {
		t.Fatalf("divergences: %v %s", v.ByClass, firstExample(v))
	}
	if a, b := dump(t, pb), dump(t, sb); a != b {
		t.Fatalf("bridges differ after the resync:\n%s\nvs\n%s", a, b)
	}
}

// TestHandleGoneOnCandidateIsServedByRecord: in canary, a file opened while
// the candidate was out of step, and renamed since, is open on the store of
// record only (the candidate's resync cannot open it by a name that may
// name another file now). Once the candidate is back in step, an op
// through that handle must still be served by the record: the candidate
// would answer EBADF to the client (seen in e2e: tar's close of a file it
// extracted, counted as an errno divergence).
func TestHandleGoneOnCandidateIsServedByRecord(t *testing.T) {
	p, _, sb, exec := newCanaryProxy(t)
	exec(fsop.Op{Kind: fsop.Mkdir, Path: "d", Mode: 0o755})
	sb.gate = make(chan struct{}) // the candidate stops answering: out of step
	exec(fsop.Op{Kind: fsop.WriteFile, Path: "d/f", Data: []byte("kept")})
	const h = 9
	exec(fsop.Op{Kind: fsop.Open, Path: "d/g", Handle: h, Flags: syscall.O_RDWR | syscall.O_CREAT, Mode: 0o644})
	exec(fsop.Op{Kind: fsop.Rename, Path: "d/g", To: "d/h"})
	close(sb.gate)
	waitFor(t, "the candidate back in step", func() bool { return len(p.Status().Bridges[Shadow].OutOfStep) == 0 })
	waitIdle(t, p)
	before := p.Stats().ServedBy["bazil"]
	exec(fsop.Op{Kind: fsop.Pwrite, Handle: h, Data: []byte("through the handle")})
	exec(fsop.Op{Kind: fsop.Close, Handle: h})
	waitIdle(t, p)
	v := p.Stats()
	if got := v.ServedBy["bazil"] - before; got != 2 {
		t.Errorf("the record served %d of the pwrite and close through the handle, want 2", got)
	}
	if got := exec(fsop.Op{Kind: fsop.ReadFile, Path: "d/h"}); string(got.Data) != "through the handle" {
		t.Errorf("d/h holds %q", got.Data)
	}
	waitIdle(t, p)
	if v := p.Stats(); v.Divergent != 0 {
		t.Fatalf("divergences: %v %s", v.ByClass, firstExample(v))
	}
}
