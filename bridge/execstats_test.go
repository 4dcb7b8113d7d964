package bridge

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/metrics"
)

// TestStatsRoundTrip: outcomes collected by an executor's statsBuffer are
// counted by the bridge as Exec counts them, handles included.
func TestStatsRoundTrip(t *testing.T) {
	sent := make(chan fsop.Frame, 10)
	s := statsBuffer{send: func(f fsop.Frame) { sent <- f }}
	s.add(&fsop.Op{Kind: fsop.Open, Handle: 5}, &fsop.Result{}, nil, time.Millisecond)
	s.add(&fsop.Op{Kind: fsop.Open, Handle: 6}, &fsop.Result{}, nil, time.Millisecond)
	s.add(&fsop.Op{Kind: fsop.Close, Handle: 5}, &fsop.Result{}, nil, time.Millisecond)
	s.add(&fsop.Op{Kind: fsop.Close, Handle: 6}, &fsop.Result{Errno: "EBADF"}, nil, time.Millisecond)
	s.add(&fsop.Op{Kind: fsop.Stat, Path: "x"}, &fsop.Result{Errno: "ENOENT"}, nil, 2*time.Millisecond)
	s.add(&fsop.Op{Kind: fsop.Stat, Path: "x"}, &fsop.Result{}, errRefused, 0)
	s.add(&fsop.Op{Kind: fsop.Stat, Path: "x"}, &fsop.Result{}, errAnswered, time.Minute)
	var f fsop.Frame
	select {
	case f = <-sent: // the scheduled flush, statsDelay after the first add
	case <-time.After(5 * time.Second):
		t.Fatal("no stats sent")
	}
	if f.ID != execRequest || f.Type != fsop.FrameControl {
		t.Fatalf("stats frame: id %x type %d", f.ID, f.Type)
	}
	c, err := fsop.DecodeControl(f.Payload)
	if err != nil || c.Kind != ctlStats {
		t.Fatalf("stats control: %+v %v", c, err)
	}
	reg := prometheus.NewRegistry()
	b := &Bridge{metrics: metrics.NewBridge(reg), handles: map[uint64]bool{}, active: "gofuse"}
	if err := b.applyStats([]byte(c.Arg)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		op, result string
		want       float64
	}{
		{"open", "ok", 2}, {"close", "ok", 1}, {"close", "errno", 1},
		{"stat", "errno", 1}, {"stat", "refused", 1}, {"stat", "failed", 1},
	} {
		if got := testutil.ToFloat64(b.metrics.Operations.WithLabelValues("gofuse", tc.op, tc.result)); got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.op, tc.result, got, tc.want)
		}
	}
	if got := testutil.ToFloat64(b.metrics.Handles); got != 1 {
		t.Errorf("open handles %v, want 1 (6 is open: its close failed)", got)
	}
	if n := testutil.CollectAndCount(b.metrics.Duration); n != 3 {
		t.Errorf("%d duration series, want 3 (open, close, stat: ops that ran)", n)
	}
	if err := b.applyStats([]byte{4, 's', 't'}); err == nil {
		t.Error("a truncated batch was accepted")
	}
}

// TestFlightAnswerHung: an op running longer than the limit is answered
// with an error on its connection, once, and its own answer is dropped.
func TestFlightAnswerHung(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	fc := &frameConn{conn: server, w: bufio.NewWriter(server)}
	var tab flightTable
	old := tab.begin(fc, 7, time.Now().Add(-time.Hour))
	fresh := tab.begin(fc, 8, time.Now())
	got := make(chan fsop.Frame, 1)
	go func() {
		f, _ := fsop.ReadFrame(bufio.NewReader(client), 0)
		got <- f
	}()
	err := tab.answerHung(time.Minute)
	if err == nil || !strings.Contains(err.Error(), "1 op(s)") {
		t.Errorf("answerHung: %v, want one op reported", err)
	}
	f := <-got
	if f.ID != 7 || f.Type != fsop.FrameError || !strings.HasPrefix(string(f.Payload), "failed: op took longer than 1m0s") {
		t.Errorf("answer: id %d type %d %q", f.ID, f.Type, f.Payload)
	}
	if err := tab.answerHung(time.Minute); err != nil {
		t.Errorf("second answerHung: %v, want nothing new", err)
	}
	if !tab.end(old) {
		t.Error("the hung op's end did not say it was answered")
	}
	if tab.end(fresh) {
		t.Error("the fresh op's end said it was answered")
	}
}
