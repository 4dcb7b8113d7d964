package store

import (
	"maps"
	"slices"
	"sort"
	"strings"
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

func (n *node) attr() Attr {
	return Attr{
		Ino: n.ino, Mode: n.mode, Nlink: n.nlink, UID: n.uid, GID: n.gid,
		Size: n.size, Blocks: (n.allocated() + 511) / 512,
		Atime: n.atime, Mtime: n.mtime, Ctime: n.ctime,
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

// freeze returns a view of t as it is now, which stays unchanged and may
// be read without the store's lock while t changes on: the snapshot of a
// compaction is encoded from it while the log keeps appending. It costs a
// copy of the inode map; afterwards each node is copied on its first
// change (tree.w) and each data chunk on its first write.
func (t *tree) freeze() *tree {
	v := &tree{nodes: maps.Clone(t.nodes), nextIno: t.nextIno, gen: t.gen}
	t.gen++
	return v
}

// w returns node n (by its inode number) ready to be changed: n itself if
// no frozen view can hold it, else a copy, with its own maps, that
// replaces it in the tree. Every change to a node goes through w.
func (t *tree) w(n *node) *node {
	cur, ok := t.nodes[n.ino]
	if !ok {
		cur = n
	}
	if cur.gen == t.gen {
		return cur
	}
	c := *cur
	c.children, c.xattrs, c.chunks = maps.Clone(cur.children), maps.Clone(cur.xattrs), maps.Clone(cur.chunks)
	c.gen, c.sharedChunks, c.owned = t.gen, len(cur.chunks) > 0, nil
	if ok {
		t.nodes[c.ino] = &c
	}
	return &c
}

// newNode makes a node of the current generation.
func (t *tree) newNode(n *node) *node {
	n.gen = t.gen
	t.nodes[n.ino] = n
	return n
}

// chunkForWrite returns chunk idx of n (made writable by w) for an
// in-place change: copied first if a frozen view may share it.
func (n *node) chunkForWrite(idx int64) []byte {
	c := n.chunks[idx]
	if !n.sharedChunks || n.owned[idx] || c == nil {
		return c
	}
	if n.owned == nil {
		n.owned = map[int64]bool{}
	}
	n.owned[idx] = true
	return slices.Clone(c)
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
	if ev.kind == evMkdir || ev.kind == evCreate || ev.kind == evSymlink {
		if ev.ino >= t.nextIno {
			t.nextIno = ev.ino + 1
		}
	}
	switch ev.kind {
	case evMkdir, evCreate, evSymlink:
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

func (t *tree) applySetattr(ev *event) error {
	n, err := t.get(ev.ino)
	if err != nil {
		return err
	}
	if ev.valid&SetSize != 0 {
		switch {
		case n.isDir():
			return syscall.EISDIR
		case !n.isReg() || ev.size < 0:
			return syscall.EINVAL
		case ev.size > MaxFileSize:
			return syscall.EFBIG
		}
	}
	n = t.w(n)
	if ev.valid&SetSize != 0 {
		n.truncate(ev.size)
		n.mtime = ev.time
	}
	if ev.valid&SetMode != 0 {
		n.mode = n.mode&syscall.S_IFMT | ev.mode&0o7777
	}
	if ev.valid&SetUID != 0 {
		n.uid = ev.uid
	}
	if ev.valid&SetGID != 0 {
		n.gid = ev.gid
	}
	if ev.valid&SetAtime != 0 {
		n.atime = ev.atime
	}
	if ev.valid&SetMtime != 0 {
		n.mtime = ev.mtime
	}
	n.ctime = ev.time
	return nil
}

// truncate sets a file's size, dropping whole chunks past it and cutting
// the last partial one, so growing again reads zeros.
func (n *node) truncate(size int64) {
	if size < n.size {
		last, keep := size/chunkSize, int(size%chunkSize)
		for idx := range n.chunks {
			if idx > last || (idx == last && keep == 0) {
				delete(n.chunks, idx)
			}
		}
		if c, ok := n.chunks[last]; ok && len(c) > keep {
			n.chunks[last] = c[:keep]
		}
	}
	n.size = size
}

func (t *tree) applyWrite(ev *event) error {
	n, err := t.get(ev.ino)
	if err != nil {
		return err
	}
	if n.isDir() {
		return syscall.EISDIR
	}
	if !n.isReg() {
		return syscall.EINVAL
	}
	end := ev.off + int64(len(ev.data))
	if ev.off < 0 || end > MaxFileSize {
		return syscall.EFBIG
	}
	n = t.w(n)
	if n.chunks == nil {
		n.chunks = map[int64][]byte{}
	}
	for off, p := ev.off, ev.data; len(p) > 0; {
		idx, in := off/chunkSize, int(off%chunkSize)
		k := min(len(p), chunkSize-in)
		n.chunks[idx] = writeChunk(n.chunkForWrite(idx), in, p[:k])
		p, off = p[k:], off+int64(k)
	}
	if end > n.size {
		n.size = end
	}
	n.mtime, n.ctime = ev.time, ev.time
	return nil
}

// writeChunk writes p at in of chunk c, which holds only the bytes up to
// the last one written (the rest of the chunk reads as zeros), growing it
// as needed, and returns it.
func writeChunk(c []byte, in int, p []byte) []byte {
	if need := in + len(p); need > len(c) {
		old := len(c)
		c = slices.Grow(c, need-old)[:need]
		clear(c[old:max(in, old)])
	}
	copy(c[in:], p)
	return c
}

// readAt copies file data at off into p and returns the count, zeros for
// holes, stopping at end of file.
func (n *node) readAt(p []byte, off int64) int {
	if off >= n.size {
		return 0
	}
	if rest := n.size - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	total := len(p)
	for len(p) > 0 {
		idx, in := off/chunkSize, off%chunkSize
		k := min(len(p), int(chunkSize-in))
		m := 0
		if c := n.chunks[idx]; int(in) < len(c) {
			m = copy(p[:k], c[in:])
		}
		clear(p[m:k])
		p, off = p[k:], off+int64(k)
	}
	return total
}

func (t *tree) applyXattr(ev *event) error {
	n, err := t.get(ev.ino)
	if err != nil {
		return err
	}
	if err := checkXattrName(ev.name); err != nil {
		return err
	}
	_, exists := n.xattrs[ev.name]
	if ev.kind == evRemovexattr {
		if !exists {
			return syscall.ENODATA
		}
		n = t.w(n)
		delete(n.xattrs, ev.name)
		n.ctime = ev.time
		return nil
	}
	switch {
	case ev.flags&^(XattrCreate|XattrReplace) != 0:
		return syscall.EINVAL
	case ev.flags&XattrCreate != 0 && exists:
		return syscall.EEXIST
	case ev.flags&XattrReplace != 0 && !exists:
		return syscall.ENODATA
	case len(ev.data) > MaxXattrSize:
		return syscall.E2BIG
	}
	n = t.w(n)
	if n.xattrs == nil {
		n.xattrs = map[string][]byte{}
	}
	n.xattrs[ev.name] = append([]byte{}, ev.data...)
	n.ctime = ev.time
	return nil
}

// xattrNamespaces are the prefixes Linux filesystems accept; the kernel
// leaves the check to FUSE filesystems, so the store makes it.
var xattrNamespaces = []string{"user.", "trusted.", "security.", "system."}

func checkXattrName(name string) error {
	if name == "" || len(name) > MaxXattrName {
		return syscall.ERANGE
	}
	for _, ns := range xattrNamespaces {
		if strings.HasPrefix(name, ns) {
			return nil
		}
	}
	return syscall.EOPNOTSUPP
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
