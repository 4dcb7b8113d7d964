package bridge

// Handing frames connections to the executor: the bridge passes the
// upgraded connection's descriptor (SCM_RIGHTS) and the bytes it already
// read from it over a socketpair; the executor serves the connection from
// then on. An op then goes client -> executor -> mount and back, where it
// went client -> bridge -> executor -> mount and back: two process wake-ups
// fewer per op, on the machines where each costs tens of microseconds.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// maxEarly bounds the bytes a handoff carries besides the descriptor: what
// the HTTP server's reader held beyond the upgrade request (its buffer is
// 4 KiB).
const maxEarly = 64 << 10

// handoffPair makes the socketpair of a new executor: the bridge's end and
// the child's.
func handoffPair() (bridgeEnd *net.UnixConn, childEnd *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("handoff socketpair: %w", err)
	}
	childEnd = os.NewFile(uintptr(fds[1]), "executor-handoff")
	uc, err := handoffConn(fds[0])
	if err != nil {
		childEnd.Close()
		return nil, nil, err
	}
	return uc, childEnd, nil
}

// handoffConn makes a connection of descriptor fd, which it takes over.
func handoffConn(fd int) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), "handoff")
	c, err := net.FileConn(f)
	f.Close() // FileConn has its own descriptor
	if err != nil {
		return nil, fmt.Errorf("handoff socket: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("handoff socket: %T, want a unix socket", c)
	}
	return uc, nil
}

// sendConn passes conn and early to the other end of uc. conn stays open
// here: the caller closes it.
func sendConn(uc *net.UnixConn, conn net.Conn, early []byte) error {
	if len(early) > maxEarly {
		return fmt.Errorf("handoff: %d early bytes, at most %d", len(early), maxEarly)
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("handoff: %T has no descriptor", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var sendErr error
	err = raw.Control(func(fd uintptr) {
		// A zero-length message would not carry the descriptor: send one
		// byte more, a marker, before the early bytes.
		_, _, sendErr = uc.WriteMsgUnix(append([]byte{0}, early...), unix.UnixRights(int(fd)), nil)
	})
	return errors.Join(err, sendErr)
}

// receiveConn waits for the next connection sent with sendConn.
func receiveConn(uc *net.UnixConn) (net.Conn, []byte, error) {
	buf := make([]byte, 1+maxEarly)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, nil, err
	}
	if n == 0 && oobn == 0 {
		return nil, nil, io.EOF
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, nil, fmt.Errorf("handoff: bad control message (%d, %v)", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, nil, fmt.Errorf("handoff: want one descriptor, got %d (%v)", len(fds), err)
	}
	unix.CloseOnExec(fds[0])
	f := os.NewFile(uintptr(fds[0]), "frames")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("handoff: %w", err)
	}
	return conn, append([]byte(nil), buf[1:n]...), nil
}

// handOff passes an upgraded frames connection to the executor, which
// serves it from then on. False if there is none (degraded) or it cannot
// take it: the bridge then serves the connection itself.
func (b *Bridge) handOff(conn net.Conn, early []byte) bool {
	b.rlockExec() // not while the executor is being replaced
	defer b.opsMu.RUnlock()
	if b.exec == nil {
		return false
	}
	if err := sendConn(b.exec.handoff, conn, early); err != nil {
		b.log.Warn("frames: cannot hand the connection to the executor: serving it here", "err", err)
		return false
	}
	conn.Close() // the executor has its own descriptor
	return true
}

// drainHanded asks the executor to stop reading its frames connections,
// finish their ops and close them, within ctx.
func (b *Bridge) drainHanded(ctx context.Context) error {
	b.opsMu.RLock()
	ex := b.exec
	b.opsMu.RUnlock()
	if ex == nil {
		return nil
	}
	if err := ex.control(ctx, ctlDrain, ""); err != nil {
		return fmt.Errorf("drain the executor's frames connections: %w", err)
	}
	return nil
}

// fromExecutor handles a frame the executor started: a batch of outcomes
// to count, or a control message of a connection it serves, answered on
// its own goroutine (state reads the store).
func (b *Bridge) fromExecutor(p *executorProc, f fsop.Frame) {
	c, err := fsop.DecodeControl(f.Payload)
	if err == nil && c.Kind == ctlStats {
		err = b.applyStats([]byte(c.Arg))
	}
	switch {
	case err != nil:
		b.log.Error("bad message from the executor", "err", err)
		if f.ID != execRequest {
			p.send(frameErr(f.ID, errRefused, err))
		}
	case c.Kind != ctlStats:
		go func() { p.send(b.controlFrame(f.ID, c)) }()
	}
}
