package primary

import (
	"fmt"
	"log"
	"sync"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/store"
)

var _ fusemount.MountFunc = Mount

// unmountTimeout bounds each step of unmount: the clean unmount helper and
// the wait for the serve loop.
const unmountTimeout = 5 * time.Second

// Mount serves st on dir through bazil (which mounts with fusermount3)
// until unmount is called or the kernel ends the connection. done receives
// the serve loop's result (nil after a clean unmount) and is then closed.
//
// Mount options, all explicit:
//   - FSName(opts.Name()), Subtype("lighthouse"): the source and type
//     shown in /proc/mounts (fuse.lighthouse).
//   - DefaultPermissions: the kernel checks mode bits, as on a real
//     filesystem; the store does no permission checks of its own.
//   - MaxReadahead(128 KiB): bazil's default 0 disables readahead; 128 KiB
//     is the value the kernel offers, which go-fuse echoes.
//   - AsyncRead: several reads in flight per file, as go-fuse and libfuse
//     negotiate by default.
//   - AllowOther unless opts.OwnerOnly: every user's programs reach the
//     store, checked by the kernel (DefaultPermissions).
//
// Not settable through bazil: max write (fixed 128 KiB, which the go-fuse
// adapter matches), max pages, READDIRPLUS (never offered; the go-fuse
// adapter switches them off) and the negative entry timeout (see the
// package doc).
func Mount(dir string, st *store.Store, opts fusemount.Options) (unmount func() error, done <-chan error, err error) {
	if err := fusemount.CleanStale(dir); err != nil {
		return nil, nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	options := []fuse.MountOption{
		fuse.FSName(opts.Name()),
		fuse.Subtype("lighthouse"),
		fuse.DefaultPermissions(),
		fuse.MaxReadahead(128 << 10),
		fuse.AsyncRead(),
	}
	if opts.AllowOther() {
		options = append(options, fuse.AllowOther())
	}
	conn, err := fuse.Mount(dir, options...)
	if err != nil {
		return nil, nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	cfg := &fs.Config{Debug: func(any) {}}
	if opts.Debug {
		cfg.Debug = func(msg any) { log.Printf("primary %s: %v", dir, msg) }
		// INIT is answered inside fuse.Mount, before any debug hook: the
		// connection keeps what was negotiated.
		log.Printf("primary %s: INIT negotiated protocol %v flags %#x", dir, conn.Protocol(), uint32(conn.Features()))
	}
	srv := fs.New(conn, cfg)
	fsys := &filesystem{st: st, opts: opts}
	m := &mount{dir: dir, served: make(chan struct{})}
	m.forget = st.OnSubtreeReplaced(func(c store.SubtreeChange) { invalidate(srv, fsys, c) })
	ch := make(chan error, 1)
	go func() {
		err := srv.Serve(fsys)
		m.forget()
		conn.Close()
		close(m.served)
		if err != nil {
			err = fmt.Errorf("serve %s: %w", dir, err)
		}
		ch <- err
		close(ch)
	}()
	return m.unmount, ch, nil
}

// mount is one live mount, for its unmount function.
type mount struct {
	dir    string
	served chan struct{} // closed when the serve loop has returned
	forget func()        // stops the store's OnSubtreeReplaced calls
	once   sync.Once
	err    error
}

// unmount unmounts once; later calls return the first result.
func (m *mount) unmount() error {
	m.forget()
	m.once.Do(func() { m.err = m.detach() })
	return m.err
}

// detach tries a clean unmount (fusermount3 -u). If that fails or hangs
// (the mount is busy, already gone, or its connection is dead), it aborts
// the connection and detaches lazily, so it never waits on the kernel.
func (m *mount) detach() error {
	if withTimeout(func() error { return fuse.Unmount(m.dir) }) == nil && m.waitServed() {
		return nil
	}
	_ = fusemount.Abort(m.dir) // fails if the mount is already gone: fine
	if err := fusemount.Unmount(m.dir); err != nil {
		return fmt.Errorf("unmount %s: %w", m.dir, err)
	}
	if !m.waitServed() {
		return fmt.Errorf("unmount %s: serve loop still running after %v", m.dir, unmountTimeout)
	}
	return nil
}

func (m *mount) waitServed() bool {
	select {
	case <-m.served:
		return true
	case <-time.After(unmountTimeout):
		return false
	}
}

// withTimeout runs fn, giving up on it after unmountTimeout.
func withTimeout(fn func() error) error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(unmountTimeout):
		return fmt.Errorf("timed out after %v", unmountTimeout)
	}
}

// invalidate drops what the kernel caches of a directory whose subtree the
// store replaced: its entries, old and new (bazil gives mkdir, symlink and
// link replies a fixed minute of entry validity, so even with timeouts of
// 0 the kernel would keep the old nodes), and its attributes. ErrNotCached
// (the kernel never looked the directory up) needs nothing.
func invalidate(srv *fs.Server, f *filesystem, c store.SubtreeChange) {
	dir := node{fs: f, ino: c.Dir}
	for _, name := range c.Names {
		_ = srv.InvalidateEntry(dir, name)
	}
	_ = srv.InvalidateNodeAttr(dir)
}
