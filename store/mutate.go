package store

// Mutations: each is one event, applied to the tree and appended to the log
// under the store lock, and acknowledged once durable (package doc,
// Durability).

import (
	"fmt"
	"syscall"
)

// checkNameLen refuses, before it is logged, an event naming an entry
// longer than the cap (xattr events name an attribute, not an entry).
func (s *Store) checkNameLen(ev *event) error {
	switch ev.kind {
	case evMkdir, evCreate, evSymlink, evMknod, evUnlink, evRmdir, evLink, evRename:
		if len(ev.name) > s.nameMax() || len(ev.newName) > s.nameMax() {
			return syscall.ENAMETOOLONG
		}
	}
	return nil
}

// mutate applies ev and waits until it is durable.
func (s *Store) mutate(ev *event) error {
	s.busy.Add(1)
	defer func() {
		s.progress.Add(1)
		s.busy.Add(-1)
	}()
	s.mu.Lock()
	lsn, err := s.applyLocked(ev)
	w := s.wal
	s.mu.Unlock()
	if err != nil || w == nil {
		return err
	}
	if err := w.wait(lsn); err != nil {
		return fmt.Errorf("%w: %v", syscall.EIO, err)
	}
	s.maybeCompact()
	return nil
}

// applyLocked applies ev and appends it to the log; s.mu is held.
func (s *Store) applyLocked(ev *event) (uint64, error) {
	if s.closed {
		return 0, syscall.EIO
	}
	if s.wal != nil {
		s.wal.mu.Lock()
		err := s.wal.err
		s.wal.mu.Unlock()
		if err != nil {
			return 0, syscall.EIO
		}
	}
	if err := s.checkNameLen(ev); err != nil {
		return 0, err
	}
	if err := s.t.apply(ev); err != nil {
		return 0, err
	}
	if len(s.groups) > 0 {
		ev.group = s.groupOf(ev)
	}
	if s.wal == nil {
		return 0, nil
	}
	e := enc{b: make([]byte, 0, 64+len(ev.data)+len(ev.name)+len(ev.newName))}
	ev.encode(&e)
	lsn, err := s.wal.append(e.b)
	if err != nil {
		return 0, syscall.EIO
	}
	return lsn, nil
}

// create makes a new node of kind (evMkdir, evCreate or evSymlink).
func (s *Store) create(kind evKind, parent uint64, name string, mode, uid, gid uint32, target string) (Attr, error) {
	return s.createNode(&event{kind: kind, parent: parent, name: name, mode: mode, uid: uid, gid: gid, data: []byte(target), time: s.now()})
}

// createNode applies ev, an event that makes a node, with the next inode
// number, and returns the new node's attributes once ev is durable.
func (s *Store) createNode(ev *event) (Attr, error) {
	s.mu.Lock()
	ev.ino = s.t.nextIno
	if p, ok := s.t.nodes[ev.parent]; ok && p.mode&syscall.S_ISGID != 0 {
		// A set-group-id directory gives its group to what is made in it,
		// and its set-group-id bit to new directories, as the kernel's
		// inode_init_owner does for a disk filesystem (a FUSE server must
		// do it itself). The event logs the result, so replay agrees.
		ev.gid = p.gid
		if ev.kind == evMkdir {
			ev.mode |= syscall.S_ISGID
		}
	}
	lsn, err := s.applyLocked(ev)
	var a Attr
	if err == nil {
		a = s.t.nodes[ev.ino].attr()
	}
	w := s.wal
	s.mu.Unlock()
	if err != nil {
		return Attr{}, err
	}
	if w != nil {
		if err := w.wait(lsn); err != nil {
			return Attr{}, fmt.Errorf("%w: %v", syscall.EIO, err)
		}
		s.maybeCompact()
	}
	return a, nil
}

// Mkdir creates directory name in parent.
func (s *Store) Mkdir(parent uint64, name string, mode, uid, gid uint32) (Attr, error) {
	return s.create(evMkdir, parent, name, mode, uid, gid, "")
}

// Create creates an empty regular file; EEXIST if name exists.
func (s *Store) Create(parent uint64, name string, mode, uid, gid uint32) (Attr, error) {
	return s.create(evCreate, parent, name, mode, uid, gid, "")
}

// Symlink creates a symbolic link to target (stored verbatim).
func (s *Store) Symlink(parent uint64, name, target string, uid, gid uint32) (Attr, error) {
	return s.create(evSymlink, parent, name, 0o777, uid, gid, target)
}

// Mknod makes a special file, as mknod(2): mode's file type is S_IFIFO,
// S_IFSOCK, S_IFCHR or S_IFBLK (rdev is kept for the two devices only, as
// ext4 keeps it), or S_IFREG or none for an empty regular file (Create
// without an open). A directory is EPERM, any other type EINVAL.
func (s *Store) Mknod(parent uint64, name string, mode uint32, rdev uint64, uid, gid uint32) (Attr, error) {
	switch t := mode & syscall.S_IFMT; {
	case t == 0 || t == syscall.S_IFREG:
		return s.create(evCreate, parent, name, mode, uid, gid, "")
	case t == syscall.S_IFDIR:
		return Attr{}, syscall.EPERM
	case !isSpecialMode(mode):
		return Attr{}, syscall.EINVAL
	}
	if !isDevMode(mode) {
		rdev = 0
	}
	return s.createNode(&event{kind: evMknod, parent: parent, name: name, mode: mode & (syscall.S_IFMT | 0o7777),
		uid: uid, gid: gid, rdev: rdev, time: s.now()})
}

// Link gives node ino another name.
func (s *Store) Link(ino, newParent uint64, newName string) (Attr, error) {
	if err := s.mutate(&event{kind: evLink, ino: ino, newParent: newParent, newName: newName, time: s.now()}); err != nil {
		return Attr{}, err
	}
	return s.Getattr(ino)
}

// Unlink removes a non-directory name.
func (s *Store) Unlink(parent uint64, name string) error {
	return s.mutate(&event{kind: evUnlink, parent: parent, name: name, time: s.now()})
}

// Rmdir removes an empty directory.
func (s *Store) Rmdir(parent uint64, name string) error {
	return s.mutate(&event{kind: evRmdir, parent: parent, name: name, time: s.now()})
}

// Rename moves parent/name to newParent/newName with renameat2 semantics.
func (s *Store) Rename(parent uint64, name string, newParent uint64, newName string, flags uint32) error {
	return s.mutate(&event{kind: evRename, parent: parent, name: name, newParent: newParent, newName: newName, flags: flags, time: s.now()})
}

// Setattr changes the fields named in a.Valid and returns the new attributes.
func (s *Store) Setattr(ino uint64, a SetAttr) (Attr, error) {
	now := s.now()
	ev := &event{kind: evSetattr, ino: ino, valid: a.Valid &^ (SetAtimeNow | SetMtimeNow),
		mode: a.Mode, uid: a.UID, gid: a.GID, size: a.Size, atime: a.Atime, mtime: a.Mtime, time: now}
	if a.Valid&SetAtimeNow != 0 {
		ev.valid |= SetAtime
		ev.atime = now
	}
	if a.Valid&SetMtimeNow != 0 {
		ev.valid |= SetMtime
		ev.mtime = now
	}
	if err := s.mutate(ev); err != nil {
		return Attr{}, err
	}
	return s.Getattr(ino)
}

// OwnRoot gives the root directory to uid:gid unless it is theirs
// already: a new store's root belongs to uid 0, and a server that runs as
// another user mounts with default_permissions, so the kernel would refuse
// its users (and its own probes) every write in the root. The change is an
// event in the log like any chown, so it happens once per store.
func (s *Store) OwnRoot(uid, gid uint32) error {
	a, err := s.Getattr(RootIno)
	if err != nil || (a.UID == uid && a.GID == gid) {
		return err
	}
	_, err = s.Setattr(RootIno, SetAttr{Valid: SetUID | SetGID, UID: uid, GID: gid})
	return err
}

// WriteAt writes p at off in file ino.
func (s *Store) WriteAt(ino uint64, p []byte, off int64) (int, error) {
	if len(p) == 0 {
		_, err := s.Getattr(ino)
		return 0, err
	}
	if err := s.mutate(&event{kind: evWrite, ino: ino, off: off, data: p, time: s.now()}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Setxattr sets xattr name on ino (flags: XattrCreate, XattrReplace).
func (s *Store) Setxattr(ino uint64, name string, value []byte, flags uint32) error {
	return s.mutate(&event{kind: evSetxattr, ino: ino, name: name, data: value, flags: flags, time: s.now()})
}

// Removexattr removes xattr name; ENODATA if it is not set.
func (s *Store) Removexattr(ino uint64, name string) error {
	return s.mutate(&event{kind: evRemovexattr, ino: ino, name: name, time: s.now()})
}
