package fusemount

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
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

// stagedName is the served root's name below go-fuse's own root in a
// staged mount, and stageIno go-fuse's root's inode number there (never a
// store's, which count up from 1, nor an automatic one).
const (
	stagedName = "root"
	stageIno   = ^uint64(0) - 1
)

// ServeGoFuseStaged is ServeGoFuse for a root that must see every name the
// kernel sends, .go-fuse-epoll-hack included: go-fuse's protocol server
// answers that name in its own root itself, before any node sees it
// (fuse/protocol-server.go; no option turns it off). So the mount is made on
// a private staging directory, with root (numbered rootAttr) as the one
// child of go-fuse's root; that child is bind-mounted onto dir, nosuid and
// nodev as go-fuse's direct mount is, and the staging mount is detached.
// The bind is then the only mount of the connection, and the name is an
// ordinary one in dir. It needs CAP_SYS_ADMIN (mount(2)); opts must ask for
// a direct mount. Unmounting dir ends the connection.
func ServeGoFuseStaged(dir string, root fs.InodeEmbedder, rootAttr fs.StableAttr, opts *fs.Options) (unmount func() error, done <-chan error, err error) {
	stage, err := os.MkdirTemp("", ".lighthouse-stage-")
	if err != nil {
		return nil, nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	defer os.Remove(stage)
	o := *opts
	o.RootStableAttr = &fs.StableAttr{Ino: stageIno, Mode: syscall.S_IFDIR}
	top := &stageRoot{child: root, attr: rootAttr}
	server, err := fuse.NewServer(fs.NewNodeFS(top, &o), stage, &o.MountOptions)
	if err != nil {
		_ = Unmount(stage)
		return nil, nil, fmt.Errorf("mount %s (staged on %s): %w", dir, stage, err)
	}
	m := &goFuseMount{dir: dir, server: server, staged: true, ended: make(chan struct{})}
	result := make(chan error, 1)
	go m.serve(result)
	if err := server.WaitMount(); err != nil {
		_ = Unmount(stage)
		return nil, nil, fmt.Errorf("mount %s (staged on %s): %w", dir, stage, err)
	}
	bind := func() error {
		if err := unix.Mount(filepath.Join(stage, stagedName), dir, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind onto %s: %w", dir, err)
		}
		if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			_ = Unmount(dir)
			return fmt.Errorf("remount %s nosuid,nodev: %w", dir, err)
		}
		return nil
	}
	err = bind()
	// The staging mount goes in every case: on success the bind holds the
	// connection; on failure its detach ends the serve loop.
	if derr := Unmount(stage); err == nil && derr != nil {
		_ = Unmount(dir)
		err = fmt.Errorf("detach the staging mount %s: %w", stage, derr)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	return m.unmount, result, nil
}

// stageRoot is go-fuse's root in a staged mount: a directory holding only
// the served root, which is what gets bound onto the mount point.
type stageRoot struct {
	fs.Inode
	child fs.InodeEmbedder
	attr  fs.StableAttr
}

var (
	_ fs.NodeOnAdder   = (*stageRoot)(nil)
	_ fs.NodeGetattrer = (*stageRoot)(nil)
)

func (s *stageRoot) OnAdd(ctx context.Context) {
	s.AddChild(stagedName, s.NewPersistentInode(ctx, s.child, s.attr), false)
}

// Getattr gives the directory search permission (the mount may set
// NullPermissions, under which go-fuse would show mode 0).
func (s *stageRoot) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o755
	out.Ino = stageIno
	return 0
}

// goFuseMount is one served go-fuse mount point.
type goFuseMount struct {
	dir    string
	server *fuse.Server
	staged bool          // dir is a bind of a staged mount (ServeGoFuseStaged)
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
// fusermount3 -u, with retries; umount(2) of the bind if staged) and falls
// back to a lazy detach when that fails (files still open), times out, or
// the connection is gone already.
// After a lazy detach the serve loop ends when the last user is gone.
func (m *goFuseMount) detach() error {
	select {
	case <-m.ended:
	default:
		res := make(chan error, 1)
		go func() {
			if m.staged {
				// go-fuse's Unmount knows only the staging directory.
				res <- unix.Unmount(m.dir, 0)
				return
			}
			res <- m.server.Unmount()
		}()
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
