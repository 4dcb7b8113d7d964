package handles

import (
	"testing"
	"time"
)

func TestReserveAcquireDetach(t *testing.T) {
	tb := New[string]()
	h, ok := tb.Reserve(1)
	if !ok {
		t.Fatal("reserve 1")
	}
	if _, ok := tb.Reserve(1); ok {
		t.Error("id 1 reserved twice")
	}
	if tb.Acquire(1) != nil {
		t.Error("a handle still opening was acquired")
	}
	if !tb.Publish(1, h, "f") {
		t.Fatal("publish")
	}
	a := tb.Acquire(1)
	if a == nil || a.Value != "f" {
		t.Fatalf("acquire: %+v", a)
	}

	// Close while an op runs: the closer waits for it.
	got, drained := tb.Detach(1)
	if got != h || drained == nil {
		t.Fatalf("detach with an op in flight: %v %v", got, drained)
	}
	if tb.Acquire(1) != nil {
		t.Error("a detached handle was acquired")
	}
	select {
	case <-drained:
		t.Fatal("drained before the op ended")
	case <-time.After(10 * time.Millisecond):
	}
	if tb.Release(a) {
		t.Error("the last op's release told the releaser to free what the closer waits for")
	}
	<-drained

	// Close with nothing running: free now.
	h2, _ := tb.Reserve(2)
	tb.Publish(2, h2, "g")
	if got, drained := tb.Detach(2); got != h2 || drained != nil {
		t.Errorf("detach of an idle handle: %v %v", got, drained)
	}
	if got, _ := tb.Detach(2); got != nil {
		t.Error("detached twice")
	}
}

func TestDetachAll(t *testing.T) {
	tb := New[int]()
	idle, _ := tb.Reserve(1)
	tb.Publish(1, idle, 10)
	busy, _ := tb.Reserve(2)
	tb.Publish(2, busy, 20)
	opening, _ := tb.Reserve(3)
	op := tb.Acquire(2)

	now := tb.DetachAll()
	if len(now) != 1 || now[0] != 10 {
		t.Errorf("DetachAll freed %v, want [10] (20 is in use, 3 still opening)", now)
	}
	if tb.Publish(3, opening, 30) {
		t.Error("an open that finished after DetachAll was published")
	}
	if !tb.Release(op) {
		t.Error("the last op on a handle DetachAll took did not get to free it")
	}
}
