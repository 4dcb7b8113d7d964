package httpguard

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LimitListener accepts at most max connections at once (max <= 0:
// DefaultMaxConns); while that many are open, Accept waits for one to close
// (new connections queue in the kernel's backlog) and says so in log at
// most once a minute, with how many waits there were. The gauge
// lighthouse_http_connections_open and the counter
// lighthouse_http_connection_limit_waits_total go to reg (nil: none).
func LimitListener(ln net.Listener, max int, name string, log *slog.Logger, reg prometheus.Registerer) net.Listener {
	if max <= 0 {
		max = DefaultMaxConns
	}
	if log == nil {
		log = slog.Default()
	}
	l := &limitListener{Listener: ln, slots: make(chan struct{}, max), max: max, name: name, log: log,
		open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lighthouse_http_connections_open",
			Help: "Connections accepted and not yet closed, under the connection limit.", ConstLabels: prometheus.Labels{"server": name}}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{Name: "lighthouse_http_connection_limit_waits_total",
			Help: "Times Accept waited because the connection limit was reached.", ConstLabels: prometheus.Labels{"server": name}}),
	}
	if reg != nil {
		l.open = register(reg, l.open)
		l.waits = register(reg, l.waits)
	}
	return l
}

type limitListener struct {
	net.Listener
	slots  chan struct{}
	max    int
	name   string
	log    *slog.Logger
	open   prometheus.Gauge
	waits  prometheus.Counter
	mu     sync.Mutex
	logged time.Time // the last log line about the limit
	missed int       // waits since then
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.reached()
		l.slots <- struct{}{}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.open.Inc()
	return &limitConn{Conn: c, l: l}, nil
}

// reached counts a wait and logs it, at most once a minute.
func (l *limitListener) reached() {
	defer l.waits.Inc() // after the log line: a test waits on the counter
	l.mu.Lock()
	defer l.mu.Unlock()
	l.missed++
	if now := time.Now(); now.Sub(l.logged) >= time.Minute {
		l.log.Warn("connection limit reached: new connections wait until one closes",
			"server", l.name, "limit", l.max, "waits_since_last_line", l.missed)
		l.logged, l.missed = now, 0
	}
}

type limitConn struct {
	net.Conn
	l      *limitListener
	closed atomic.Bool
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.open.Dec()
		<-c.l.slots
	}
	return err
}

// SyscallConn lets the bridge hand the connection's descriptor to its
// executor (bridge/handoff.go).
func (c *limitConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("connection has no descriptor")
	}
	return sc.SyscallConn()
}
