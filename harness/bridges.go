package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lighthouse-fs/lighthouse/internal/supervise"
	"github.com/lighthouse-fs/lighthouse/proxyserver"
)

// bridgeProc is a `lighthouse bridge` child process. It runs in its own
// process group, so a terminal's Ctrl-C reaches only `up`, which stops the
// proxy first and then the bridges; Pdeathsig stops it if `up` dies.
type bridgeProc struct {
	role, backend, listen, dir string
	inject                     float64
	injectAfter                time.Duration
	active                     string // what /readyz reported

	proc *supervise.Proc
}

func (b *bridgeProc) url() string     { return "http://" + b.listen }
func (b *bridgeProc) mnt() string     { return filepath.Join(b.dir, b.role, "mnt") }
func (b *bridgeProc) data() string    { return filepath.Join(b.dir, b.role, "data") }
func (b *bridgeProc) logPath() string { return filepath.Join(b.dir, b.role+".log") }

func (b *bridgeProc) start(exe string) error {
	args := []string{"bridge", "--backend", b.backend, "--role", b.role, "--listen", b.listen, "--mount", b.mnt(), "--data", b.data()}
	if b.inject > 0 {
		args = append(args, "--inject-divergence", strconv.FormatFloat(b.inject, 'g', -1, 64), "--inject-after", b.injectAfter.String())
	}
	var err error
	b.proc, err = supervise.Start(supervise.Config{Name: fmt.Sprintf("the %s bridge (%s) on %s", b.role, b.backend, b.listen),
		Path: exe, Args: args, Log: b.logPath(), AppendLog: true, Mounts: []string{b.mnt()}, OwnGroup: true})
	return err
}

// waitReady waits for /readyz (a probe file written, read back and removed
// through the bridge's mount) to answer 200.
func (b *bridgeProc) waitReady(ctx context.Context, limit time.Duration) error {
	body, err := b.proc.WaitHTTP(ctx, b.url()+"/readyz", limit)
	if err != nil {
		if !b.proc.Running() {
			return b.exitError()
		}
		return err
	}
	var ready struct {
		Active string `json:"active_backend"`
	}
	json.Unmarshal(body, &ready)
	b.active = ready.Active
	return nil
}

// exitError explains why the bridge exited, from the end of its log.
func (b *bridgeProc) exitError() error {
	if strings.Contains(b.proc.Tail(12), "address already in use") {
		return fmt.Errorf("the %s bridge could not listen on %s: the port is in use; another `lighthouse up` (or a bridge) may be running; see %s", b.role, b.listen, b.logPath())
	}
	return b.proc.ExitError()
}

// bridgeGrace is how long a bridge has after SIGTERM to finish its running
// ops, close its store and unmount.
const bridgeGrace = 45 * time.Second

// exitedBridge reports the first bridge that exits.
func exitedBridge(bridges []*bridgeProc) <-chan *bridgeProc {
	ch := make(chan *bridgeProc, len(bridges))
	for _, b := range bridges {
		go func() { <-b.proc.Exited(); ch <- b }()
	}
	return ch
}

// shutdown stops the proxy's servers, the proxy (its front mount first),
// then both bridges, and checks that none of mountPoints is still mounted.
func shutdown(rp *proxyserver.Server, stopServe func() error, bridges []*bridgeProc, mountPoints []string) error {
	var errs []error
	if stopServe != nil {
		errs = append(errs, stopServe())
	}
	if rp != nil {
		errs = append(errs, rp.Close())
	}
	var wg sync.WaitGroup
	stopErr := make([]error, len(bridges))
	for i, b := range bridges {
		if b.proc != nil {
			wg.Go(func() { stopErr[i] = b.proc.Stop(bridgeGrace) })
		}
	}
	wg.Wait()
	errs = append(errs, stopErr...)
	left, err := supervise.Detach(mountPoints...)
	if errs = append(errs, err); len(left) > 0 {
		errs = append(errs, fmt.Errorf("FUSE mounts left after shutdown (now detached): %s", strings.Join(left, ", ")))
	}
	return errors.Join(errs...)
}

// portFree says whether addr can be listened on.
func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// waitHTTP polls url until it answers 200, failed says the server ended,
// or limit passes.
