package store

import "fmt"

// evKind names a mutation in the log.
type evKind uint8

const (
	evMkdir evKind = iota + 1
	evCreate
	evSymlink
	evLink
	evUnlink
	evRmdir
	evRename
	evSetattr
	evWrite
	evSetxattr
	evRemovexattr
	evRestoreSubtree // ino: the directory; off: its first new inode; data: the subtree snapshot
	evGroupEnd       // ino: the group whose events replay may apply (group.go)
	evMknod          // a FIFO, socket or device: evCreate's fields, then rdev
)

// makesNode reports whether events of kind k make a new node (ino is its
// number).
func (k evKind) makesNode() bool {
	return k == evMkdir || k == evCreate || k == evSymlink || k == evMknod
}

// inGroup prefixes the record of an event that belongs to a group: the
// byte, the group id, then the event.
const inGroup = 0x80

// event is one logged mutation. Everything apply needs to reproduce it
// exactly is inside: new inode numbers and timestamps are chosen when the
// event is made, never when it is replayed.
type event struct {
	kind      evKind
	ino       uint64 // the node acted on, or the new node's number
	parent    uint64
	newParent uint64
	name      string
	newName   string
	mode      uint32
	uid, gid  uint32
	flags     uint32 // rename or xattr flags
	valid     uint32 // setattr mask
	size      int64
	off       int64
	atime     int64
	mtime     int64
	time      int64  // wall clock of the mutation, ns: ctime and mtime
	data      []byte // write data, symlink target or xattr value
	rdev      uint64 // mknod: the device number
	group     uint64 // the atomic group it belongs to (0: none)
}

func (ev *event) encode(e *enc) {
	if ev.group != 0 {
		e.u8(inGroup)
		e.u64(ev.group)
	}
	e.u8(uint8(ev.kind))
	e.u64(ev.ino)
	e.i64(ev.time)
	switch ev.kind {
	case evMkdir, evCreate, evSymlink, evMknod:
		e.u64(ev.parent)
		e.str(ev.name)
		e.u32(ev.mode)
		e.u32(ev.uid)
		e.u32(ev.gid)
		e.bytes(ev.data)
		if ev.kind == evMknod {
			e.u64(ev.rdev)
		}
	case evLink:
		e.u64(ev.newParent)
		e.str(ev.newName)
	case evUnlink, evRmdir:
		e.u64(ev.parent)
		e.str(ev.name)
	case evRename:
		e.u64(ev.parent)
		e.str(ev.name)
		e.u64(ev.newParent)
		e.str(ev.newName)
		e.u32(ev.flags)
	case evSetattr:
		e.u32(ev.valid)
		e.u32(ev.mode)
		e.u32(ev.uid)
		e.u32(ev.gid)
		e.i64(ev.size)
		e.i64(ev.atime)
		e.i64(ev.mtime)
	case evWrite:
		e.i64(ev.off)
		e.bytes(ev.data)
	case evSetxattr:
		e.str(ev.name)
		e.bytes(ev.data)
		e.u32(ev.flags)
	case evRemovexattr:
		e.str(ev.name)
	case evRestoreSubtree:
		e.i64(ev.off)
		e.bytes(ev.data)
	}
}

func decodeEvent(b []byte) (event, error) {
	d := &dec{b: b}
	var group uint64
	if len(b) > 0 && b[0] == inGroup {
		d.u8()
		group = d.u64()
	}
	ev := event{kind: evKind(d.u8()), ino: d.u64(), time: d.i64(), group: group}
	switch ev.kind {
	case evMkdir, evCreate, evSymlink, evMknod:
		ev.parent, ev.name = d.u64(), d.str()
		ev.mode, ev.uid, ev.gid = d.u32(), d.u32(), d.u32()
		ev.data = d.bytes()
		if ev.kind == evMknod {
			ev.rdev = d.u64()
		}
	case evLink:
		ev.newParent, ev.newName = d.u64(), d.str()
	case evUnlink, evRmdir:
		ev.parent, ev.name = d.u64(), d.str()
	case evRename:
		ev.parent, ev.name = d.u64(), d.str()
		ev.newParent, ev.newName = d.u64(), d.str()
		ev.flags = d.u32()
	case evSetattr:
		ev.valid, ev.mode, ev.uid, ev.gid = d.u32(), d.u32(), d.u32(), d.u32()
		ev.size, ev.atime, ev.mtime = d.i64(), d.i64(), d.i64()
	case evWrite:
		ev.off, ev.data = d.i64(), d.bytes()
	case evSetxattr:
		ev.name, ev.data, ev.flags = d.str(), d.bytes(), d.u32()
	case evRemovexattr:
		ev.name = d.str()
	case evRestoreSubtree:
		ev.off, ev.data = d.i64(), d.bytes()
	case evGroupEnd:
	default:
		return ev, fmt.Errorf("unknown event kind %d", ev.kind)
	}
	if d.err == nil && len(d.b) != 0 {
		return ev, fmt.Errorf("event kind %d: %d trailing bytes", ev.kind, len(d.b))
	}
	return ev, d.err
}
