package proxy

import "github.com/lighthouse-fs/lighthouse/order"

// maxPinned bounds the paths whose mtime is compared.
const maxPinned = 65536

// pins are the paths whose mtime was set explicitly (utimens): compared
// until another op moves it. below counts, per directory, the pinned paths
// under it, so a rename finds those under its names without a scan of
// every pin (tar through the front pins each file it extracts).
type pins struct {
	set   map[string]struct{}
	below map[string]int
}

func (s *pins) has(path string) bool {
	_, ok := s.set[path]
	return ok
}

// ancestors calls f with each directory above path, the root last.
func ancestors(path string, f func(dir string)) {
	for path != order.Root {
		path = parentDir(path)
		f(path)
	}
}

func (s *pins) add(path string) {
	if s.set == nil || len(s.set) >= maxPinned {
		s.set, s.below = map[string]struct{}{}, map[string]int{}
	}
	if _, ok := s.set[path]; ok {
		return
	}
	s.set[path] = struct{}{}
	ancestors(path, func(dir string) { s.below[dir]++ })
}

func (s *pins) remove(path string) {
	if _, ok := s.set[path]; !ok {
		return
	}
	delete(s.set, path)
	ancestors(path, func(dir string) {
		if s.below[dir]--; s.below[dir] <= 0 {
			delete(s.below, dir)
		}
	})
}

func (s *pins) clear() {
	clear(s.set)
	clear(s.below)
}

// removeWithin forgets root's pin and every pin under it.
func (s *pins) removeWithin(root string) {
	if root == order.Root {
		s.clear()
		return
	}
	s.remove(root)
	if s.below[root] == 0 {
		return
	}
	for path := range s.set {
		if order.Within(path, root) {
			s.remove(path)
		}
	}
}

// within copies root's pin and those under it.
func (s *pins) within(root string) map[string]struct{} {
	out := map[string]struct{}{}
	if s.has(root) {
		out[root] = struct{}{}
	}
	if root != order.Root && s.below[root] == 0 {
		return out
	}
	for path := range s.set {
		if order.Within(path, root) {
			out[path] = struct{}{}
		}
	}
	return out
}
