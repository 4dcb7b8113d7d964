package storeexec

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"syscall"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/store"
)

// walk is one path lookup, the kernel's nameidata under RESOLVE_BENEATH: it
// follows at most maxSymlinks symlinks in all and refuses an absolute one or
// a ".." above the root.
type walk struct {
	e     *Executor
	path  string // the path asked for, for the escape error
	links int
}

// mkfile is O_CREAT's part of a walk: a missing final name is created as a
// regular file with mode.
type mkfile struct {
	mode    uint32
	excl    bool
	owner   owner
	created bool
}

// resolve looks p (clean, relative) up from the root. follow says whether a
// final symlink is followed; mk, if set, creates a missing final name.
//
// p may be longer than PATH_MAX (up to fsop.MaxPathLen): sysexec walks such
// a path in pieces, so its length alone is no error here either.
func (e *Executor) resolve(p string, follow bool, mk *mkfile) (store.Attr, error) {
	w := walk{e: e, path: p}
	root, err := e.s.Getattr(store.RootIno)
	if err != nil {
		return store.Attr{}, err
	}
	dir, name, slash, err := w.dirs(root, p)
	if err != nil {
		return store.Attr{}, err
	}
	return w.last(dir, name, slash, follow, mk)
}

// parent returns the directory holding p's last component and that
// component, like sysexec's openParent: for the root itself, the root and
// ".". The directory is resolved like open(O_PATH|O_DIRECTORY).
func (e *Executor) parent(p string) (store.Attr, string, error) {
	dir, err := e.resolve(path.Dir(p), true, nil)
	if err == nil && !isDir(dir) {
		err = syscall.ENOTDIR
	}
	return dir, path.Base(p), err
}

// dirs walks every component of p but the last from dir, following
// symlinks; each must lead to a directory. It returns that directory and the
// last component; slash reports slashes after it (only a symlink's target
// can have them).
func (w *walk) dirs(dir store.Attr, p string) (store.Attr, string, bool, error) {
	for {
		name, rest, _ := strings.Cut(p, "/")
		if rest = strings.TrimLeft(rest, "/"); rest == "" {
			return dir, name, len(name) < len(p), nil
		}
		next, err := w.last(dir, name, false, true, nil)
		if err != nil {
			return store.Attr{}, "", false, err
		}
		if !isDir(next) {
			return store.Attr{}, "", false, syscall.ENOTDIR
		}
		dir, p = next, rest
	}
}

// last resolves name in dir as the final component of a walk. A symlink
// there is followed if follow or slash; slash also requires a directory.
func (w *walk) last(dir store.Attr, name string, slash, follow bool, mk *mkfile) (store.Attr, error) {
	switch name {
	case ".":
		return dir, nil
	case "..":
		if dir.Ino == store.RootIno {
			return store.Attr{}, fmt.Errorf("storeexec: %w: %q", fsop.ErrPathEscapes, w.path)
		}
		return w.e.s.Lookup(dir.Ino, "..")
	}
	if mk != nil && slash {
		return store.Attr{}, syscall.EISDIR // O_CREAT on "name/"
	}
	a, err := w.lookup(dir, name, mk)
	if err == nil && isLink(a) && (follow || slash) {
		a, err = w.follow(dir, a, mk)
	}
	if err == nil && slash && !isDir(a) {
		err = syscall.ENOTDIR
	}
	return a, err
}

// lookup finds name in dir. With mk a missing name is created; a name that
// another creator made meanwhile is found instead, since O_CREAT without
// O_EXCL never fails with EEXIST.
func (w *walk) lookup(dir store.Attr, name string, mk *mkfile) (store.Attr, error) {
	for try := 0; ; try++ {
		a, err := w.e.s.Lookup(dir.Ino, name)
		if mk == nil || !errors.Is(err, syscall.ENOENT) {
			return a, err
		}
		a, err = w.e.s.Create(dir.Ino, name, mk.mode, mk.owner.uid, mk.owner.gid)
		if errors.Is(err, syscall.EEXIST) && !mk.excl && try < 8 {
			continue
		}
		mk.created = err == nil
		return a, err
	}
}

// follow resolves symlink link, found in dir: its target is walked from dir,
// its final component followed too.
func (w *walk) follow(dir, link store.Attr, mk *mkfile) (store.Attr, error) {
	if w.links >= maxSymlinks {
		return store.Attr{}, syscall.ELOOP
	}
	w.links++
	target, err := w.e.s.Readlink(link.Ino)
	if err != nil {
		return store.Attr{}, err
	}
	if strings.HasPrefix(target, "/") {
		return store.Attr{}, fmt.Errorf("storeexec: %w: %q", fsop.ErrPathEscapes, w.path)
	}
	tdir, name, slash, err := w.dirs(dir, target)
	if err != nil {
		return store.Attr{}, err
	}
	return w.last(tdir, name, slash, true, mk)
}

// lookupAt is an *at syscall's no-follow lookup of base in dir.
func (e *Executor) lookupAt(dir store.Attr, base string) (store.Attr, error) {
	if base == "." {
		return dir, nil
	}
	return e.s.Lookup(dir.Ino, base)
}

// contains reports whether node a is directory b or an ancestor of it.
func (e *Executor) contains(a store.Attr, b uint64) (bool, error) {
	if !isDir(a) {
		return false, nil
	}
	for b != a.Ino {
		if b == store.RootIno {
			return false, nil
		}
		p, err := e.s.Lookup(b, "..")
		if err != nil {
			return false, err
		}
		b = p.Ino
	}
	return true, nil
}

func isDir(a store.Attr) bool  { return a.Mode&syscall.S_IFMT == syscall.S_IFDIR }
func isReg(a store.Attr) bool  { return a.Mode&syscall.S_IFMT == syscall.S_IFREG }
func isLink(a store.Attr) bool { return a.Mode&syscall.S_IFMT == syscall.S_IFLNK }
