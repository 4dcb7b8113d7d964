package store

// Groups make one client operation that the kernel turns into several
// store mutations atomic under replay: a write_file through the mount is
// a CREATE (or a truncating SETATTR) and WRITEs, each its own event. The
// bridge begins a group for the path before the op and ends it after; the
// store tags the group's events in the log, and replay applies them only
// if the group's end record is in the log too. After a crash in the middle
// the file is as it was before the op, never created empty or half written.

import (
	"math/rand/v2"
	"sync"
)

// Group is an atomic group of mutations of one path (BeginGroup).
type Group struct {
	s      *Store
	id     uint64
	parent uint64 // the watched entry: parent directory and name
	name   string
	inos   map[uint64]bool // the files it created or changes
	used   bool            // an event was tagged
}

// BeginGroup starts a group for the regular file at path (a cleaned path
// relative to the root): until End, the creation of that name and every
// truncate and write of the file it names belong to the group. If a
// component of path is missing or a symlink, the group watches nothing
// (the op is not atomic then). A compaction waits for open groups to end.
//
// Another client's write to the same file while the group is open joins
// the group: the proxy never runs two conflicting ops on one path at once.
func (s *Store) BeginGroup(path string) *Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.groupsPaused > 0 {
		s.groupCond().Wait()
	}
	g := &Group{s: s, id: rand.Uint64() | 1, inos: map[uint64]bool{}}
	dir, name := ".", path
	if i := lastSlash(path); i >= 0 {
		dir, name = path[:i], path[i+1:]
	}
	if d, err := s.t.resolveDir(dir); err == nil && checkName(name) == nil {
		g.parent, g.name = d.ino, name
		if n, err := s.t.lookup(d, name); err == nil && n.isReg() {
			g.inos[n.ino] = true
		}
	}
	s.groups = append(s.groups, g)
	return g
}

func lastSlash(p string) int {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return i
		}
	}
	return -1
}

// End closes the group: if any mutation was tagged, an end record is
// logged and End returns once it is durable (the op may be acknowledged
// then). It must be called whether the op succeeded or not: the tree has
// whatever the op did.
func (g *Group) End() error {
	s := g.s
	s.mu.Lock()
	for i, o := range s.groups {
		if o == g {
			s.groups = append(s.groups[:i], s.groups[i+1:]...)
			break
		}
	}
	s.groupCond().Broadcast()
	used := g.used
	s.mu.Unlock()
	if !used {
		return nil
	}
	// Every event of the group is applied: a snapshot taken from here on
	// holds all of it, and the end record may follow it.
	return s.mutate(&event{kind: evGroupEnd, ino: g.id, time: s.now()})
}

// groupOf returns the open group ev belongs to (0: none), after apply
// succeeded; s.mu is held.
func (s *Store) groupOf(ev *event) uint64 {
	for _, g := range s.groups {
		switch ev.kind {
		case evCreate:
			if ev.parent != g.parent || ev.name != g.name || g.parent == 0 {
				continue
			}
			g.inos[ev.ino] = true
		case evSetattr, evWrite:
			if !g.inos[ev.ino] {
				continue
			}
		default:
			continue
		}
		g.used = true
		return g.id
	}
	return 0
}

// groupCond is signalled when a group ends or a compaction lets groups
// begin again.
func (s *Store) groupCond() *sync.Cond {
	if s.gcond.L == nil {
		s.gcond.L = &s.mu
	}
	return &s.gcond
}

// quiesceGroupsLocked waits (s.mu held) until no group is open and keeps
// new ones from beginning until resumeGroupsLocked: a snapshot taken with
// a group half applied would keep that half after a crash.
func (s *Store) quiesceGroupsLocked() {
	s.groupsPaused++
	for len(s.groups) > 0 {
		s.groupCond().Wait()
	}
}

func (s *Store) resumeGroupsLocked() {
	s.groupsPaused--
	s.groupCond().Broadcast()
}
