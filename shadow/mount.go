package shadow

import (
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/store"
)

// maxWrite is the largest READ and WRITE request: 1 MiB, the most a Linux
// kernel (4.20 and later, max_pages 256) sends; go-fuse caps it there too.
// Larger requests mean fewer round trips for big files.
const maxWrite = 1 << 20

// unmountTimeout bounds a polite unmount before falling back to a lazy
// detach, so a hung connection cannot hang the caller.
const unmountTimeout = 3 * time.Second

var _ fusemount.MountFunc = Mount

// Mount serves st on dir until unmount is called or the kernel ends the
// connection. done receives the serve loop's result (nil after a clean
// unmount) and is then closed. unmount is idempotent.
//
// As root it mounts with mount(2) itself; otherwise go-fuse falls back to
// fusermount3. Mount returns once the kernel has finished INIT and go-fuse
// has disabled POLL (server.WaitMount), so the mount is usable at once.
func Mount(dir string, st *store.Store, opts fusemount.Options) (unmount func() error, done <-chan error, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	if err := fusemount.CleanStale(abs); err != nil {
		return nil, nil, fmt.Errorf("mount %s: %w", abs, err)
	}
	entry, attr, negative := opts.EntryTimeout, opts.AttrTimeout, opts.NegativeTimeout
	fsOpts := &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName: opts.Name(),
			Name:   "lighthouse", // /proc/mounts shows fuse.lighthouse
			// The kernel checks mode bits, as on a disk filesystem, so
			// go-fuse's Access emulation is never asked.
			Options:     []string{"default_permissions"},
			DirectMount: true,
			MaxWrite:    maxWrite,
			Debug:       opts.Debug,
		},
		EntryTimeout:    &entry,
		AttrTimeout:     &attr,
		NegativeTimeout: &negative,
		RootStableAttr:  &fs.StableAttr{Ino: store.RootIno, Mode: syscall.S_IFDIR},
		// No UID/GID overrides. NullPermissions: go-fuse's default (false)
		// rewrites a mode without permission bits to 0644/0755, which no
		// kernel filesystem does and bazil does not do: a library default,
		// not a behaviour of the library's core, so it is set explicitly.
		NullPermissions: true,
	}
	root := &node{fsys: &filesystem{st: st, opts: opts}}
	server, err := fuse.NewServer(fs.NewNodeFS(root, fsOpts), abs, &fsOpts.MountOptions)
	if err != nil {
		// NewServer can fail after mount(2) (during INIT) and leaves the
		// mount behind then.
		_ = fusemount.Unmount(abs)
		return nil, nil, fmt.Errorf("mount %s: %w", abs, err)
	}
	m := &mount{dir: abs, server: server, ended: make(chan struct{})}
	result := make(chan error, 1)
	go m.serve(result)
	if err := server.WaitMount(); err != nil {
		_ = m.unmount()
		return nil, nil, fmt.Errorf("mount %s: %w", abs, err)
	}
	return m.unmount, result, nil
}

// mount is one served mount point.
type mount struct {
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
func (m *mount) serve(result chan<- error) {
	m.server.Serve()
	close(m.ended)
	var err error
	if _, mounted := fusemount.Find(m.dir); mounted {
		err = fmt.Errorf("serve %s: FUSE connection ended while still mounted", m.dir)
	}
	result <- err
	close(result)
}

func (m *mount) unmount() error {
	m.once.Do(func() { m.err = m.detach() })
	return m.err
}

// detach unmounts politely (go-fuse's Unmount: umount(2), then
// fusermount3 -u, with retries) and falls back to a lazy detach when that
// fails (files still open), times out, or the connection is gone already.
// After a lazy detach the serve loop ends when the last user is gone.
func (m *mount) detach() error {
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
	return fusemount.Unmount(m.dir)
}
