package store

// Reads take the shared lock and never hold it across I/O; Acquire and
// Release count the open handles that keep an unlinked file readable.

import "syscall"

// Lookup finds name in directory parent.
func (s *Store) Lookup(parent uint64, name string) (Attr, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, err := s.t.dir(parent)
	if err != nil {
		return Attr{}, err
	}
	if len(name) > s.nameMax() {
		return Attr{}, syscall.ENAMETOOLONG
	}
	n, err := s.t.lookup(p, name)
	if err != nil {
		return Attr{}, err
	}
	return n.attr(), nil
}

// Getattr returns the attributes of ino.
func (s *Store) Getattr(ino uint64) (Attr, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.t.get(ino)
	if err != nil {
		return Attr{}, err
	}
	return n.attr(), nil
}

// ReadAt reads from file ino at off into p; a short count means end of file.
func (s *Store) ReadAt(ino uint64, p []byte, off int64) (int, error) {
	defer s.progress.Add(1)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.t.get(ino)
	if err != nil {
		return 0, err
	}
	if n.isDir() {
		return 0, syscall.EISDIR
	}
	if !n.isReg() || off < 0 {
		return 0, syscall.EINVAL
	}
	return n.readAt(p, off), nil
}

// Readlink returns a symlink's target.
func (s *Store) Readlink(ino uint64) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.t.get(ino)
	if err != nil {
		return "", err
	}
	if !n.isLink() {
		return "", syscall.EINVAL
	}
	return n.target, nil
}

// Readdir lists directory ino: ".", "..", then the names in byte order.
func (s *Store) Readdir(ino uint64) ([]Entry, error) {
	defer s.progress.Add(1)
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, err := s.t.dir(ino)
	if err != nil {
		return nil, err
	}
	return s.t.entries(d), nil
}

// Getxattr returns the value of xattr name; ENODATA if it is not set.
func (s *Store) Getxattr(ino uint64, name string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.t.get(ino)
	if err != nil {
		return nil, err
	}
	if err := checkXattrName(name); err != nil {
		return nil, err
	}
	v, ok := n.xattrs[name]
	if !ok {
		return nil, syscall.ENODATA
	}
	return append([]byte{}, v...), nil
}

// Listxattr returns the xattr names of ino in byte order.
func (s *Store) Listxattr(ino uint64) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.t.get(ino)
	if err != nil {
		return nil, err
	}
	return sortedKeys(n.xattrs), nil
}

// Capacity the store reports through statfs: fixed, so both mounts and
// every replica report the same numbers for the same tree.
const (
	statfsBlocks = 1 << 28 // 1 TiB of 4 KiB blocks
	statfsFiles  = 1 << 24
)

// Statfs reports capacity and use.
func (s *Store) Statfs() Statfs {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var used int64
	for _, n := range s.t.nodes {
		used += (n.allocated() + 4095) / 4096
	}
	free := uint64(max(statfsBlocks-used, 0))
	files := uint64(len(s.t.nodes))
	return Statfs{Bsize: 4096, Blocks: statfsBlocks, Bfree: free, Bavail: free,
		Files: statfsFiles, Ffree: statfsFiles - min(files, statfsFiles), Namelen: uint32(s.nameMax())}
}

// Acquire records an open handle on ino, keeping its data after its last
// name is unlinked until Release.
func (s *Store) Acquire(ino uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.t.get(ino); err != nil {
		return err
	}
	s.t.open[ino]++
	return nil
}

// Release ends a handle taken with Acquire.
func (s *Store) Release(ino uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t.open[ino] <= 1 {
		delete(s.t.open, ino)
		if n, ok := s.t.nodes[ino]; ok && n.nlink == 0 {
			delete(s.t.nodes, ino)
		}
		return
	}
	s.t.open[ino]--
}
