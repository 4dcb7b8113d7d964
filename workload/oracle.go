package workload

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// The classes of oracle mismatches: a read whose answer is not what the
// workload's own model of what it wrote says.
const (
	// MismatchContent: the bytes differ (same length), or a readlink's
	// target does.
	MismatchContent = "content"
	// MismatchSize: the length of the data, or a stat's size, differs.
	MismatchSize = "size"
	// MismatchExistence: a file that must exist is missing (ENOENT), or
	// one that must not exist is there.
	MismatchExistence = "existence"
	// MismatchErrno: any other errno on a read of a file that exists.
	MismatchErrno = "errno"
)

// maxMismatchExamples bounds Result.MismatchExamples.
const maxMismatchExamples = 5

// node is a file's content as the model knows it; hard links share one.
type node struct {
	data  []byte
	known bool // false once an op on it ended without a certain result
}

// model is one client's oracle: what it wrote to the paths nobody else
// writes (its own packages, its log, and the release, which nobody
// changes after the setup), so the answer of every read of them is
// determined whatever the other clients do. Directories are not modelled.
type model struct {
	prefixes []string         // owned directories ("work/pkg03/")
	exact    map[string]bool  // owned single paths (the client's log)
	paths    map[string]*node // owned path -> file; nil: known not to exist; absent: unknown
	links    map[string]string
	handles  map[uint64]*node
	checked  int // reads whose answer was determined, and so checked
}

func newModel() *model {
	return &model{exact: map[string]bool{}, paths: map[string]*node{}, links: map[string]string{}, handles: map[uint64]*node{}}
}

func (m *model) own(dir string) { m.prefixes = append(m.prefixes, dir+"/") }

func (m *model) owned(p string) bool {
	if m.exact[p] {
		return true
	}
	for _, pre := range m.prefixes {
		if strings.HasPrefix(p, pre) || p+"/" == pre {
			return true
		}
	}
	return false
}

// adopt copies from's knowledge of the paths under dir (and the symlink
// at link): the release, written once by the setup.
func (m *model) adopt(from *model, dir, link string) {
	m.own(dir)
	m.exact[link] = true
	for p, n := range from.paths {
		if strings.HasPrefix(p, dir+"/") && n != nil {
			m.paths[p] = &node{data: bytes.Clone(n.data), known: n.known}
		}
	}
	if t, ok := from.links[link]; ok {
		m.links[link] = t
	}
}

// resolve follows the modelled symlinks among p's directories (and its
// last component too when last); false when p leads out of what the
// model knows.
func (m *model) resolve(p string, last bool) (string, bool) {
	for range 8 {
		parts := strings.Split(p, "/")
		n := len(parts)
		if !last {
			n--
		}
		changed := false
		for i := 1; i <= n; i++ {
			pre := strings.Join(parts[:i], "/")
			if t, ok := m.links[pre]; ok {
				p = path.Join(append([]string{path.Dir(pre), t}, parts[i:]...)...)
				changed = true
				break
			}
		}
		if !changed {
			return p, m.owned(p)
		}
	}
	return "", false
}

// forget makes p unknown: whatever happened to it is not certain. The
// path stays seen, so a later append is not taken for a new file's.
func (m *model) forget(p string) {
	if n := m.paths[p]; n != nil {
		n.known = false
	}
	m.paths[p] = &node{}
	delete(m.links, p)
}

// fresh is p's node for an op that defines its whole content: the file
// itself when it is known (hard links see the change), else a new one;
// nil when p is not the client's to know.
func (m *model) fresh(p string) *node {
	n, seen := m.paths[p]
	switch {
	case n != nil && n.known:
		return n
	case seen || m.owned(p):
		n = &node{known: true}
		m.paths[p] = n
		delete(m.links, p)
		return n
	}
	return nil
}

func patch(n *node, off int64, data []byte) {
	if end := off + int64(len(data)); end > int64(len(n.data)) {
		n.data = append(n.data, make([]byte, end-int64(len(n.data)))...)
	}
	copy(n.data[off:], data)
}

func resize(n *node, size int64) {
	if size <= int64(len(n.data)) {
		n.data = n.data[:size]
		return
	}
	n.data = append(n.data, make([]byte, size-int64(len(n.data)))...)
}

// apply updates the model after an op that got a result (err nil) or
// none; reads change nothing.
func (m *model) apply(op *fsop.Op, res fsop.Result, err error) {
	ok := err == nil && res.Errno == ""
	if op.HandleBased() {
		m.applyHandle(op, ok)
		return
	}
	if !m.owned(op.Path) && (op.To == "" || !m.owned(op.To)) {
		return
	}
	if !ok {
		// The op failed or may have half-run: stop checking what it
		// touched (even an EEXIST says the model was wrong about it).
		if op.Kind.Mutates() {
			m.forget(op.Path)
			if op.To != "" {
				m.forget(op.To)
			}
		}
		return
	}
	n, seen := m.paths[op.Path]
	switch op.Kind {
	case fsop.WriteFile:
		if n := m.fresh(op.Path); n != nil {
			n.data = bytes.Clone(op.Data)
		}
	case fsop.Create:
		if n == nil && (seen || m.owned(op.Path)) {
			m.fresh(op.Path)
		}
	case fsop.Append:
		if n == nil && (seen || m.owned(op.Path)) {
			n = m.fresh(op.Path)
		}
		if n != nil && n.known {
			n.data = append(n.data, op.Data...)
		}
	case fsop.Write:
		if n != nil && n.known {
			patch(n, op.Offset, op.Data)
		}
	case fsop.Truncate:
		if n != nil && n.known {
			resize(n, op.Size)
		}
	case fsop.Unlink:
		m.paths[op.Path] = nil
		delete(m.links, op.Path)
	case fsop.Rename, fsop.Link:
		m.move(op)
	case fsop.Symlink:
		m.links[op.Path] = op.Target
		delete(m.paths, op.Path)
	case fsop.Open:
		m.open(op)
	}
}

// move is a successful rename or hard link.
func (m *model) move(op *fsop.Op) {
	from, to := op.Path, op.To
	fromOwned, toOwned := m.owned(from), m.owned(to)
	if !toOwned {
		if fromOwned && op.Kind == fsop.Rename {
			m.paths[from] = nil
		}
		return
	}
	n, known := m.paths[from]
	t, isLink := m.links[from]
	switch {
	case fromOwned && isLink:
		m.links[to] = t
		delete(m.paths, to)
	case fromOwned && known && n != nil:
		m.paths[to] = n
		delete(m.links, to)
	default:
		m.forget(to)
	}
	if op.Kind == fsop.Rename && fromOwned {
		m.paths[from] = nil
		delete(m.links, from)
	}
}

// open tracks a handle on a modelled file; O_TRUNC empties it and O_CREAT
// makes it.
func (m *model) open(op *fsop.Op) {
	p, ok := m.resolve(op.Path, true)
	if !ok {
		return
	}
	n := m.paths[p]
	if op.Flags&unix.O_TRUNC != 0 || (n == nil && op.Flags&unix.O_CREAT != 0) {
		if n = m.fresh(p); n != nil && op.Flags&unix.O_TRUNC != 0 {
			n.data = nil
		}
	}
	if n != nil {
		m.handles[op.Handle] = n
	}
}

func (m *model) applyHandle(op *fsop.Op, ok bool) {
	n := m.handles[op.Handle]
	if n == nil {
		return
	}
	switch {
	case op.Kind == fsop.Close:
		delete(m.handles, op.Handle)
	case !ok && (op.Kind == fsop.Pwrite || op.Kind == fsop.Ftruncate):
		n.known = false
	case op.Kind == fsop.Pwrite:
		patch(n, op.Offset, op.Data)
	case op.Kind == fsop.Ftruncate:
		resize(n, op.Size)
	}
}

// check compares a read's result with the model: "" when it matches or
// the answer is not determined, else the mismatch's class and a
// description.
func (m *model) check(op *fsop.Op, res fsop.Result) (class, what string) {
	var n *node
	var p string
	switch op.Kind {
	case fsop.Pread:
		if n = m.handles[op.Handle]; n == nil || !n.known {
			return "", ""
		}
		m.checked++
		return compareData(n, op.Offset, op.Length, res)
	case fsop.ReadFile, fsop.Read, fsop.Stat, fsop.Lstat, fsop.Readlink:
	default:
		return "", ""
	}
	p, ok := m.resolve(op.Path, op.Kind != fsop.Lstat && op.Kind != fsop.Readlink)
	if !ok {
		return "", ""
	}
	if t, isLink := m.links[p]; isLink {
		m.checked++
		switch {
		case res.Errno != "":
			return existence(res.Errno, true)
		case op.Kind == fsop.Readlink && res.Target != t:
			return MismatchContent, fmt.Sprintf("target %q, want %q", res.Target, t)
		case op.Kind == fsop.Lstat && res.Stat != nil && res.Stat.Size != int64(len(t)):
			return MismatchSize, fmt.Sprintf("size %d, want %d (a symlink to %q)", res.Stat.Size, len(t), t)
		}
		return "", ""
	}
	n, known := m.paths[p]
	if !known || (n != nil && !n.known) || op.Kind == fsop.Readlink {
		return "", ""
	}
	m.checked++
	switch {
	case n == nil:
		if res.Errno == "" {
			return MismatchExistence, "answered, want ENOENT (removed or never made)"
		}
		return "", ""
	case res.Errno != "":
		return existence(res.Errno, true)
	}
	switch op.Kind {
	case fsop.ReadFile:
		return compareData(n, 0, -1, res)
	case fsop.Read:
		return compareData(n, op.Offset, op.Length, res)
	}
	if res.Stat != nil && res.Stat.Size != int64(len(n.data)) {
		return MismatchSize, fmt.Sprintf("size %d, want %d", res.Stat.Size, len(n.data))
	}
	return "", ""
}

func existence(errno string, want bool) (string, string) {
	if errno == "ENOENT" && want {
		return MismatchExistence, "ENOENT, want the file written before"
	}
	return MismatchErrno, errno + ", want the file written before"
}

// compareData checks data read at off (length < 0: to the end).
func compareData(n *node, off, length int64, res fsop.Result) (string, string) {
	if res.Errno != "" {
		return existence(res.Errno, true)
	}
	want := []byte{}
	if off < int64(len(n.data)) {
		end := int64(len(n.data))
		if length >= 0 {
			end = min(end, off+length)
		}
		want = n.data[off:end]
	}
	switch {
	case len(res.Data) != len(want):
		return MismatchSize, fmt.Sprintf("%d bytes at %d, want %d", len(res.Data), off, len(want))
	case !bytes.Equal(res.Data, want):
		return MismatchContent, fmt.Sprintf("%d bytes at %d, sha256 %.12x, want %.12x", len(want), off, sha256.Sum256(res.Data), sha256.Sum256(want))
	}
	return "", ""
}
