package fusemount

import (
	"fmt"
	"sync"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// unmountTimeout bounds a polite unmount before the lazy detach.
const unmountTimeout = 3 * time.Second

// ServeGoFuse mounts root on dir (an absolute path) with go-fuse and serves
// it, returning once the kernel has finished INIT and go-fuse has disabled
// POLL (WaitMount). It is the go-fuse half of a MountFunc, shared by the
// shadow adapter and the proxy's front mount.
func ServeGoFuse(dir string, root fs.InodeEmbedder, opts *fs.Options) (unmount func() error, done <-chan error, err error) {
	server, err := fuse.NewServer(fs.NewNodeFS(root, opts), dir, &opts.MountOptions)
	if err != nil {
		// NewServer can fail after mount(2) (during INIT) and leaves the
		// mount behind then.
		_ = Unmount(dir)
		return nil, nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	m := &goFuseMount{dir: dir, server: server, ended: make(chan struct{})}
	result := make(chan error, 1)
	go m.serve(result)
	if err := server.WaitMount(); err != nil {
		_ = m.unmount()
		return nil, nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	return m.unmount, result, nil
}

// goFuseMount is one served go-fuse mount point.
type goFuseMount struct {
	dir    string
	server *fuse.Server
	ended  chan struct{} // closed when the serve loop has returned

	once sync.Once
	err  error
}

// serve runs the serve loop and reports how it ended. go-fuse's Serve
// returns nothing: a clean unmount and an aborted connection both end it.
// After an abort the mount is still in the namespace (answering ENOTCONN),
// which tells the two apart.
func (m *goFuseMount) serve(result chan<- error) {
	m.server.Serve()
	close(m.ended)
	var err error
	if _, mounted := Find(m.dir); mounted {
		err = fmt.Errorf("serve %s: FUSE connection ended while still mounted", m.dir)
	}
	result <- err
	close(result)
}

// unmount is idempotent.
func (m *goFuseMount) unmount() error {
	m.once.Do(func() { m.err = m.detach() })
	return m.err
}

// detach unmounts politely (go-fuse's Unmount: umount(2), then
// fusermount3 -u, with retries) and falls back to a lazy detach when that
// fails (files still open), times out, or the connection is gone already.
// After a lazy detach the serve loop ends when the last user is gone.
func (m *goFuseMount) detach() error {
	select {
	case <-m.ended:
	default:
		res := make(chan error, 1)
		go func() { res <- m.server.Unmount() }()
		select {
		case err := <-res:
			if err == nil {
				return nil
			}
		case <-m.ended:
		case <-time.After(unmountTimeout):
		}
	}
	return Unmount(m.dir)
}
