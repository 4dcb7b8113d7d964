package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/internal/supervise"
)

// bridgeGrace is how long a fresh bridge has to unmount after SIGTERM.
const bridgeGrace = 20 * time.Second

// bridgePair is two bridges started for a replay.
type bridgePair struct {
	dir     string
	tmp     bool // dir was created for this replay
	urls    [2]string
	bridges []*supervise.Proc
}

// startBridges starts a fresh bazil primary and gofuse shadow (the binary
// exe) on free loopback ports, with their mounts and stores under dir.
func startBridges(ctx context.Context, exe, dir string) (*bridgePair, error) {
	pair := &bridgePair{dir: dir}
	var err error
	if dir == "" {
		if pair.dir, err = os.MkdirTemp("", "lighthouse-replay-"); err != nil {
			return nil, err
		}
		pair.tmp = true
	} else if pair.dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	} else if err := os.MkdirAll(pair.dir, 0o755); err != nil {
		return nil, err
	}
	for i, b := range []struct{ backend, role string }{{"bazil", "primary"}, {"gofuse", "shadow"}} {
		p, url, err := startBridge(ctx, exe, pair.dir, b.backend, b.role)
		if err != nil {
			return nil, errors.Join(err, pair.stop())
		}
		pair.bridges = append(pair.bridges, p)
		pair.urls[i] = url
	}
	return pair, nil
}

// startBridge starts one bridge, this backend or nothing (no fallback),
// and waits until it listens.
func startBridge(ctx context.Context, exe, dir, backend, role string) (*supervise.Proc, string, error) {
	mnt := filepath.Join(dir, "mnt-"+backend)
	data := filepath.Join(dir, "data-"+backend)
	if _, mounted := fusemount.Find(mnt); mounted {
		return nil, "", fmt.Errorf("%s is still mounted (another replay running in %s?)", mnt, dir)
	}
	if err := os.RemoveAll(data); err != nil { // fresh: nothing of an earlier replay
		return nil, "", err
	}
	p, err := supervise.Start(supervise.Config{Name: "the " + backend + " bridge", Path: exe,
		Args: []string{"bridge", "--backend", backend, "--role", role, "--listen", "127.0.0.1:0", "--mount", mnt, "--data", data, "--sync", "none"},
		Env:  append(os.Environ(), "LIGHTHOUSE_FUSE_FALLBACK="),
		Log:  filepath.Join(dir, backend+".log"), Mounts: []string{mnt}})
	if err != nil {
		return nil, "", err
	}
	fields, err := p.WaitLine(ctx, "bridge listening", 30*time.Second)
	if err != nil || fields["addr"] == "" {
		return nil, "", errors.Join(fmt.Errorf("the %s bridge did not listen: %w", backend, err), p.Stop(bridgeGrace))
	}
	return p, "http://" + fields["addr"], nil
}

// stop ends both bridges (SIGTERM: they unmount) and makes sure no mount is
// left: a hung bridge's connection is aborted and its mount detached.
func (pair *bridgePair) stop() error {
	var errs []error
	for _, p := range pair.bridges {
		errs = append(errs, p.Stop(bridgeGrace))
	}
	pair.bridges = nil
	return errors.Join(errs...)
}
