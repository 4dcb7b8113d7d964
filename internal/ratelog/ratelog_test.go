package ratelog

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := New(time.Minute)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	steps := []struct {
		after      time.Duration
		key        string
		ok         bool
		suppressed int
	}{
		{0, "divergence", true, 0},
		{5 * time.Second, "divergence", false, 0},
		{5 * time.Second, "divergence", false, 0},
		{0, "error_rate", true, 0}, // another key is not held back
		{55 * time.Second, "divergence", true, 2},
		{time.Second, "divergence", false, 0},
		{2 * time.Minute, "divergence", true, 1},
	}
	for i, s := range steps {
		now = now.Add(s.after)
		ok, n := l.Allow(s.key)
		if ok != s.ok || n != s.suppressed {
			t.Errorf("step %d (%s): Allow = %v, %d; want %v, %d", i, s.key, ok, n, s.ok, s.suppressed)
		}
	}
}
