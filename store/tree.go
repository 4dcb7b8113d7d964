package store

import (
	"sort"
	"syscall"
)

// chunkSize is the unit of file data storage. Chunks never written are
// holes: they read as zeros and take no memory, so sparse files are cheap.
const chunkSize = 64 << 10

// Limits the store enforces itself, with the values Linux filesystems use.
const (
	// MaxNameLen is the default name cap (Options.NameMax), ext4's.
	MaxNameLen = 255
	// NameMaxLimit is the largest Options.NameMax and the length every
	// stored name is checked against when a log or snapshot is read back,
	// so lowering NameMax never loses a name already stored: a FUSE
	// kernel never sends a longer name (PATH_MAX less the NUL).
	NameMaxLimit = 4095
	MaxXattrSize = 64 << 10
	MaxXattrName = 255
	MaxFileSize  = 1 << 40
	maxSymlink   = 4095
)

// node is one inode of the speed layer.
type node struct {
	ino      uint64
	mode     uint32 // file type and permission bits, as st_mode
	uid, gid uint32
	nlink    uint32
	size     int64
	atime    int64
	mtime    int64
	ctime    int64
	parent   uint64            // directories only: the containing directory
	chunks   map[int64][]byte  // regular files: chunk index -> its bytes up to the last written (at most chunkSize)
	target   string            // symlinks
	rdev     uint64            // character and block devices: the device number
	children map[string]uint64 // directories
	xattrs   map[string][]byte

	// Copy-on-write (see tree.freeze): gen is the tree generation in which
	// this node struct was made; a node of an older one may be in a frozen
	// view, so tree.w copies it before a change. sharedChunks says its
	// chunk slices may be a view's too: a chunk not in owned is copied
	// before it is written.
	gen          uint64
	sharedChunks bool
	owned        map[int64]bool
}

func (n *node) isDir() bool  { return n.mode&syscall.S_IFMT == syscall.S_IFDIR }
func (n *node) isReg() bool  { return n.mode&syscall.S_IFMT == syscall.S_IFREG }
func (n *node) isLink() bool { return n.mode&syscall.S_IFMT == syscall.S_IFLNK }

// isDev reports whether n is a character or block device, the only kinds
// with a device number.
func (n *node) isDev() bool { return isDevMode(n.mode) }

func isDevMode(mode uint32) bool {
	t := mode & syscall.S_IFMT
	return t == syscall.S_IFCHR || t == syscall.S_IFBLK
}

// isSpecialMode reports whether mode's type is a special file: a FIFO, a
// socket or a device, which hold no data in the store.
func isSpecialMode(mode uint32) bool {
	t := mode & syscall.S_IFMT
	return t == syscall.S_IFIFO || t == syscall.S_IFSOCK || isDevMode(mode)
}

func (n *node) attr() Attr {
	return Attr{
		Ino: n.ino, Mode: n.mode, Nlink: n.nlink, UID: n.uid, GID: n.gid,
		Size: n.size, Blocks: (n.allocated() + 511) / 512,
		Atime: n.atime, Mtime: n.mtime, Ctime: n.ctime, Rdev: n.rdev,
	}
}

// allocated is the bytes of storage a node uses, for st_blocks.
func (n *node) allocated() int64 {
	switch {
	case n.isReg():
		return int64(len(n.chunks)) * chunkSize
	case n.isDir():
		return 4096
	}
	return 0
}

// tree is the in-memory filesystem: the speed layer. It is not safe for
// concurrent use; Store guards it.
type tree struct {
	nodes   map[uint64]*node
	nextIno uint64
	gen     uint64 // incremented by freeze
	// open counts the open handles per inode (memory only), so an unlinked
	// file stays readable until its last handle is released.
	open map[uint64]int
}

func newTree(now int64) *tree {
	root := &node{
		ino: RootIno, mode: syscall.S_IFDIR | 0o755, nlink: 2, parent: RootIno,
		atime: now, mtime: now, ctime: now, children: map[string]uint64{},
	}
	return &tree{nodes: map[uint64]*node{RootIno: root}, nextIno: RootIno + 1, open: map[uint64]int{}}
}

func (t *tree) get(ino uint64) (*node, error) {
	if n, ok := t.nodes[ino]; ok {
		return n, nil
	}
	return nil, syscall.ENOENT
}

func (t *tree) dir(ino uint64) (*node, error) {
	n, err := t.get(ino)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, syscall.ENOTDIR
	}
	return n, nil
}

func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return syscall.EINVAL
	case len(name) > NameMaxLimit:
		return syscall.ENAMETOOLONG
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 {
			return syscall.EINVAL
		}
	}
	return nil
}

// lookup resolves name in dir ("." and ".." included).
func (t *tree) lookup(dir *node, name string) (*node, error) {
	switch name {
	case ".":
		return dir, nil
	case "..":
		return t.get(dir.parent)
	}
	if len(name) > NameMaxLimit {
		return nil, syscall.ENAMETOOLONG
	}
	ino, ok := dir.children[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	return t.get(ino)
}

// apply validates ev against the tree and performs it. It is the only code
// that mutates the tree, used both live and when replaying the log, so a
// replayed store is the store that was acknowledged.
func (t *tree) apply(ev *event) error {
	if ev.kind.makesNode() {
		if ev.ino >= t.nextIno {
			t.nextIno = ev.ino + 1
		}
	}
	switch ev.kind {
	case evMkdir, evCreate, evSymlink, evMknod:
		return t.applyNew(ev)
	case evLink:
		return t.applyLink(ev)
	case evUnlink, evRmdir:
		return t.applyRemove(ev)
	case evRename:
		return t.applyRename(ev)
	case evSetattr:
		return t.applySetattr(ev)
	case evWrite:
		return t.applyWrite(ev)
	case evSetxattr, evRemovexattr:
		return t.applyXattr(ev)
	case evRestoreSubtree:
		return t.applySubtree(ev)
	case evGroupEnd:
		return nil // a marker for replay
	}
	return syscall.EINVAL
}

// entries lists dir with "." and ".." first, then the names in byte order.
func (t *tree) entries(dir *node) []Entry {
	out := make([]Entry, 0, len(dir.children)+2)
	out = append(out, Entry{Name: ".", Ino: dir.ino, Mode: syscall.S_IFDIR})
	out = append(out, Entry{Name: "..", Ino: dir.parent, Mode: syscall.S_IFDIR})
	start := len(out)
	for name, ino := range dir.children {
		var mode uint32
		if c, ok := t.nodes[ino]; ok {
			mode = c.mode & syscall.S_IFMT
		}
		out = append(out, Entry{Name: name, Ino: ino, Mode: mode})
	}
	sort.Slice(out[start:], func(i, j int) bool { return out[start+i].Name < out[start+j].Name })
	return out
}
