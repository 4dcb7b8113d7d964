package shadow

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/store"
)

// maxWrite is the largest READ and WRITE request: 128 KiB, bazil's fixed
// value (it has no option for it), so that a large write reaches both
// libraries as the same number of requests. go-fuse alone could go to
// 1 MiB (MAX_PAGES 256); see docs/compatibility.md, "Defaults and
// negotiated settings".
const maxWrite = 128 << 10

// disabledCaps are the INIT capabilities go-fuse offers by default and
// bazil never does; switched off so that both kernels behave alike:
//   - MAX_PAGES: also lets names grow from 1024 to 4095 bytes;
//   - READDIRPLUS: a directory listing that carries every entry's
//     attributes (bazil's kernel sends a LOOKUP per entry instead);
//   - AUTO_INVAL_DATA: the kernel drops cached pages when it sees the
//     mtime or size change.
const disabledCaps = fuse.CAP_MAX_PAGES | fuse.CAP_READDIRPLUS | fuse.CAP_READDIRPLUS_AUTO | fuse.CAP_AUTO_INVAL_DATA

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
			// The kernel's 128 KiB, bazil's value (it echoes what it is
			// offered only up to its own 128 KiB).
			MaxReadAhead:         128 << 10,
			DisabledCapabilities: disabledCaps,
			Debug:                opts.Debug,
			AllowOther:           opts.AllowOther(),
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
	detach, done, err := fusemount.ServeGoFuse(abs, root, fsOpts)
	if err != nil {
		return nil, nil, err
	}
	forget := st.OnSubtreeReplaced(func(c store.SubtreeChange) { invalidate(root, c) })
	return func() error { forget(); return detach() }, done, nil
}

// invalidate drops what the kernel caches of a directory whose subtree the
// store replaced: its entries, old and new (a negative entry too), and its
// attributes. A directory go-fuse does not know was never looked up by the
// kernel: nothing to drop.
func invalidate(root *node, c store.SubtreeChange) {
	dir := root.EmbeddedInode()
	if c.Path != "." {
		for _, name := range strings.Split(c.Path, "/") {
			if dir = dir.GetChild(name); dir == nil {
				return
			}
		}
	}
	if dir.StableAttr().Ino != c.Dir {
		return
	}
	for _, name := range c.Names {
		_ = dir.NotifyEntry(name)
	}
	_ = dir.NotifyContent(0, 0)
}
