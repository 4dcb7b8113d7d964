package store

// The namespace events: create, link, unlink and rmdir, rename and
// exchange (tree.apply).

import "syscall"

func (t *tree) applyNew(ev *event) error {
	p, err := t.dir(ev.parent)
	if err != nil {
		return err
	}
	if err := checkName(ev.name); err != nil {
		return err
	}
	if _, exists := p.children[ev.name]; exists {
		return syscall.EEXIST
	}
	if _, taken := t.nodes[ev.ino]; taken {
		return syscall.EIO // an inode number reused: the log and the tree disagree
	}
	n := &node{ino: ev.ino, uid: ev.uid, gid: ev.gid, nlink: 1, atime: ev.time, mtime: ev.time, ctime: ev.time}
	p = t.w(p)
	switch ev.kind {
	case evMkdir:
		n.mode = syscall.S_IFDIR | ev.mode&0o7777
		n.nlink = 2
		n.parent = p.ino
		n.children = map[string]uint64{}
		p.nlink++
	case evCreate:
		n.mode = syscall.S_IFREG | ev.mode&0o7777
	case evMknod:
		if !isSpecialMode(ev.mode) {
			return syscall.EINVAL
		}
		n.mode = ev.mode&syscall.S_IFMT | ev.mode&0o7777
		if n.isDev() {
			n.rdev = ev.rdev
		}
	case evSymlink:
		if len(ev.data) == 0 {
			return syscall.ENOENT
		}
		if len(ev.data) > maxSymlink {
			return syscall.ENAMETOOLONG
		}
		n.mode = syscall.S_IFLNK | 0o777
		n.target = string(ev.data)
		n.size = int64(len(ev.data))
	}
	t.newNode(n)
	p.children[ev.name] = n.ino
	p.mtime, p.ctime = ev.time, ev.time
	return nil
}

func (t *tree) applyLink(ev *event) error {
	n, err := t.get(ev.ino)
	if err != nil {
		return err
	}
	if n.isDir() {
		return syscall.EPERM
	}
	p, err := t.dir(ev.newParent)
	if err != nil {
		return err
	}
	if err := checkName(ev.newName); err != nil {
		return err
	}
	if _, exists := p.children[ev.newName]; exists {
		return syscall.EEXIST
	}
	if n.nlink == 0 {
		return syscall.ENOENT // linkat of an unlinked open file
	}
	n, p = t.w(n), t.w(p)
	p.children[ev.newName] = n.ino
	n.nlink++
	n.ctime = ev.time
	p.mtime, p.ctime = ev.time, ev.time
	return nil
}

func (t *tree) applyRemove(ev *event) error {
	p, err := t.dir(ev.parent)
	if err != nil {
		return err
	}
	n, err := t.lookup(p, ev.name)
	if err != nil {
		return err
	}
	if ev.name == "." || ev.name == ".." {
		return syscall.EINVAL
	}
	if ev.kind == evRmdir {
		if !n.isDir() {
			return syscall.ENOTDIR
		}
		if n.ino == RootIno {
			return syscall.EBUSY
		}
		if len(n.children) > 0 {
			return syscall.ENOTEMPTY
		}
	} else if n.isDir() {
		return syscall.EISDIR
	}
	p = t.w(p)
	if n.isDir() {
		p.nlink--
	}
	delete(p.children, ev.name)
	p.mtime, p.ctime = ev.time, ev.time
	t.dropLink(n, ev.time)
	return nil
}

// dropLink removes one name of n; n's data goes when the last name and the
// last open handle are gone.
func (t *tree) dropLink(n *node, now int64) {
	n = t.w(n)
	if n.isDir() {
		n.nlink = 0
	} else if n.nlink > 0 {
		n.nlink--
	}
	n.ctime = now
	if n.nlink == 0 && t.open[n.ino] == 0 {
		delete(t.nodes, n.ino)
	}
}

// isAncestor reports whether dir a is b or contains b.
func (t *tree) isAncestor(a, b uint64) bool {
	for {
		if a == b {
			return true
		}
		n, ok := t.nodes[b]
		if !ok || b == RootIno {
			return false
		}
		b = n.parent
	}
}

func (t *tree) applyRename(ev *event) error {
	const known = RenameNoReplace | RenameExchange
	if ev.flags&^known != 0 || ev.flags == known {
		return syscall.EINVAL
	}
	op, err := t.dir(ev.parent)
	if err != nil {
		return err
	}
	np, err := t.dir(ev.newParent)
	if err != nil {
		return err
	}
	if ev.name == "." || ev.name == ".." || ev.newName == "." || ev.newName == ".." {
		return syscall.EBUSY
	}
	src, err := t.lookup(op, ev.name)
	if err != nil {
		return err
	}
	if err := checkName(ev.newName); err != nil {
		return err
	}
	var dst *node
	if ino, ok := np.children[ev.newName]; ok {
		dst = t.nodes[ino]
	}
	if src.isDir() && t.isAncestor(src.ino, np.ino) {
		return syscall.EINVAL
	}
	if ev.flags == RenameExchange {
		if dst == nil {
			return syscall.ENOENT
		}
		if dst.isDir() && t.isAncestor(dst.ino, op.ino) {
			return syscall.EINVAL
		}
		op, np, src, dst = t.w(op), t.w(np), t.w(src), t.w(dst)
		return t.exchange(op, ev.name, src, np, ev.newName, dst, ev.time)
	}
	if dst != nil {
		if ev.flags == RenameNoReplace {
			return syscall.EEXIST
		}
		if dst == src { // two names of one file: rename does nothing
			return nil
		}
		if src.isDir() {
			if !dst.isDir() {
				return syscall.ENOTDIR
			}
			if len(dst.children) > 0 {
				return syscall.ENOTEMPTY
			}
		} else if dst.isDir() {
			return syscall.EISDIR
		}
	}
	op, np, src = t.w(op), t.w(np), t.w(src)
	if dst != nil {
		if dst.isDir() {
			np.nlink--
		}
		t.dropLink(dst, ev.time)
	}
	delete(op.children, ev.name)
	np.children[ev.newName] = src.ino
	if src.isDir() && op != np {
		op.nlink--
		np.nlink++
		src.parent = np.ino
	}
	src.ctime = ev.time
	op.mtime, op.ctime = ev.time, ev.time
	np.mtime, np.ctime = ev.time, ev.time
	return nil
}

func (t *tree) exchange(op *node, on string, src *node, np *node, nn string, dst *node, now int64) error {
	op.children[on], np.children[nn] = dst.ino, src.ino
	if op != np {
		if src.isDir() {
			src.parent = np.ino
			op.nlink--
			np.nlink++
		}
		if dst.isDir() {
			dst.parent = op.ino
			np.nlink--
			op.nlink++
		}
	}
	src.ctime, dst.ctime = now, now
	op.mtime, op.ctime = now, now
	np.mtime, np.ctime = now, now
	return nil
}
