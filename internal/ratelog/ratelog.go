// Package ratelog de-duplicates and rate-limits repeated log lines: a
// warning that a condition would repeat every few seconds is written once
// per interval per key, with the number of repeats it stood for.
package ratelog

import (
	"sync"
	"time"
)

// Limiter lets one line per key through per Every. The zero value is not
// usable; make one with New.
type Limiter struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]*entry
}

type entry struct {
	last       time.Time
	suppressed int
}

// New returns a Limiter that lets a key through at most once per every.
func New(every time.Duration) *Limiter {
	return &Limiter{every: every, now: time.Now, keys: map[string]*entry{}}
}

// Allow says whether the line for key is written now; when it is,
// suppressed is how many lines for key were held back since the last one.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e := l.keys[key]
	if e == nil {
		l.keys[key] = &entry{last: now}
		return true, 0
	}
	if now.Sub(e.last) < l.every {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return true, n
}
