package conformance

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/internal/asuser"
)

// The users the users family acts as. bob is in group 2000, alice not.
var (
	alice  = asuser.Cred{UID: 1000, GID: 1000}
	bob    = asuser.Cred{UID: 1001, GID: 1001, Groups: []uint32{2000}}
	nobody = asuser.Cred{UID: 65534, GID: 65534}
)

// usersCases run steps as users other than root (issue 19): what they
// may create and own, and what the kernel's permission rules refuse them
// (mode bits, groups, search permission, sticky directories, chmod, chown
// and utimensat rules, set-id bits cleared on write and chown, set-group-id
// directories). On a mount without allow_other every such step is EACCES.
// Root prepares each case; the steps marked with a uid run on a thread of
// their own with that user's credentials (asuser), relative to the case's
// directory.
func usersCases() []Case {
	cs := []Case{
		{Name: "users/create-owner", Sys: []Step{chmodStep(".", 0o777),
			asCreate(alice, "f", 0o640), asMkdir(alice, "d", 0o750), asSymlink(alice, "f", "l"),
			ownerStep("f"), ownerStep("d"), ownerStep("l")}},
		{Name: "users/create-refused", Sys: []Step{
			asCreate(nobody, "f", 0o644), asMkdir(nobody, "d", 0o755), asSymlink(nobody, "x", "l")}},
		{Name: "users/read-write-modes", Sys: []Step{rootFile("r", 0o644), rootFile("s", 0o600),
			asRead(nobody, "r"), asRead(nobody, "s"), asWrite(nobody, "r", "w"),
			asAccess(nobody, "r", unix.R_OK, "R_OK"), asAccess(nobody, "r", unix.W_OK, "W_OK")}},
		{Name: "users/group-access", Sys: []Step{rootFile("g", 0o640), chownStep("g", 0, 2000),
			asRead(bob, "g"), asRead(alice, "g"), asWrite(bob, "g", "w")}},
		{Name: "users/search-permission", Sys: []Step{mkdirStep("p", 0o700), rootFile("p/x", 0o644),
			asStat(nobody, "p/x"), chmodStep("p", 0o711), asStat(nobody, "p/x"), asOpenDir(nobody, "p"),
			asCreate(nobody, "p/y", 0o644)}},
		{Name: "users/sticky-directory", Sys: []Step{chmodStep(".", 0o1777), rootFile("r", 0o666),
			asCreate(alice, "a", 0o644), asUnlink(alice, "r"), asRename(alice, "r", "x"),
			asUnlink(nobody, "a"), asRename(alice, "a", "b"), asUnlink(alice, "b")}},
		{Name: "users/unwritable-directory", Sys: []Step{mkdirStep("ro", 0o755), rootFile("ro/x", 0o666),
			asRename(alice, "ro/x", "ro/y"), asUnlink(alice, "ro/x"), asWrite(alice, "ro/x", "w")}},
		{Name: "users/chmod-rules", Sys: []Step{chmodStep(".", 0o777), rootFile("r", 0o644),
			asCreate(alice, "a", 0o644), asChmod(alice, "r", 0o666), asChmod(alice, "a", 0o2755), ownerStep("a"),
			chownStep("a", 1000, 2000), asChmod(alice, "a", 0o2755), ownerStep("a")}},
		{Name: "users/chown-rules", Sys: []Step{chmodStep(".", 0o777),
			asCreate(alice, "a", 0o644), asChown(alice, "a", 1001, -1), asChown(alice, "a", -1, 2000),
			asCreate(bob, "b", 0o644), asChown(bob, "b", -1, 2000), asChown(bob, "b", -1, 1001),
			ownerStep("a"), ownerStep("b")}},
		{Name: "users/chown-clears-set-ids", Sys: []Step{chmodStep(".", 0o777),
			asCreate(alice, "a", 0o755), asChmod(alice, "a", 0o6755), ownerStep("a"),
			chownStep("a", 1001, 1001), ownerStep("a")}},
		{Name: "users/write-clears-set-ids", Sys: []Step{rootFile("s", 0o6777), asWrite(alice, "s", "w"), ownerStep("s")}},
		{Name: "users/truncate-clears-set-ids", Sys: []Step{rootFile("s", 0o6777), asTruncate(alice, "s", 1), ownerStep("s")}},
		{Name: "users/setgid-directory", Sys: []Step{mkdirStep("g", 0o777), chownStep("g", 0, 2000), chmodStep("g", 0o2777),
			asCreate(alice, "g/f", 0o644), asMkdir(alice, "g/d", 0o755), ownerStep("g/f"), ownerStep("g/d")}},
		{Name: "users/utimens-rules", Sys: []Step{chmodStep(".", 0o777), rootFile("w", 0o666), rootFile("r", 0o644),
			asUtimens(alice, "w", false), asUtimens(alice, "w", true), asUtimens(alice, "r", false),
			asCreate(alice, "a", 0o644), asUtimens(alice, "a", true), mtimeStep("a")}},
		{Name: "users/xattr-rules", Sys: []Step{rootFile("r", 0o644),
			asSetxattr(nobody, "r", "user.k"), chmodStep("r", 0o666), asSetxattr(nobody, "r", "user.k")}},
		{Name: "users/hard-link-rules", Sys: []Step{rootFile("s", 0o600), chmodStep(".", 0o777),
			asLink(alice, "s", "l"), asCreate(alice, "a", 0o600), asLink(alice, "a", "m"), ownerStep("m")}},
		{Name: "users/rmdir-rules", Sys: []Step{mkdirStep("d", 0o777), asRmdir(alice, "d"),
			chmodStep(".", 0o777), asMkdir(alice, "a", 0o755), asMkdir(alice, "a/sub", 0o755),
			asRmdir(nobody, "a/sub"), asRmdir(nobody, "a"), asRmdir(alice, "a/sub"), asRmdir(nobody, "a")}},
		{Name: "users/rename-directory-rules", Sys: []Step{chmodStep(".", 0o777), mkdirStep("x", 0o755), mkdirStep("y", 0o777),
			asRename(alice, "x", "y/x"), asMkdir(alice, "a", 0o755), asRename(nobody, "a", "y/a"),
			asRename(alice, "a", "y/a"), asRename(nobody, "y/a", "y/b"), ownerStep("y/b")}},
		{Name: "users/open-rules", Sys: []Step{rootFile("r", 0o644),
			asOpen(nobody, "r", unix.O_RDONLY|unix.O_TRUNC, "O_RDONLY|O_TRUNC"), asOpen(nobody, "r", unix.O_RDONLY|unix.O_CREAT, "O_RDONLY|O_CREAT"),
			asOpen(nobody, "n", unix.O_RDONLY|unix.O_CREAT, "O_RDONLY|O_CREAT"), asOpen(nobody, "r", unix.O_WRONLY|unix.O_APPEND, "O_WRONLY|O_APPEND"),
			contentStep("r")}},
		{Name: "users/special-files", Sys: []Step{chmodStep(".", 0o777),
			asMknod(alice, "p", unix.S_IFIFO|0o644, 0, "S_IFIFO|0644"), asMknod(alice, "s", unix.S_IFSOCK|0o600, 0, "S_IFSOCK|0600"),
			asMknod(alice, "c", unix.S_IFCHR|0o600, unix.Mkdev(1, 3), "S_IFCHR|0600, 1:3"), ownerStep("p"), ownerStep("s"),
			asOpen(nobody, "p", unix.O_RDONLY|unix.O_NONBLOCK, "O_RDONLY|O_NONBLOCK"),
			asOpen(nobody, "p", unix.O_WRONLY|unix.O_NONBLOCK, "O_WRONLY|O_NONBLOCK"),
			asUnlink(nobody, "s"), asUnlink(alice, "s")}},
	}
	return cs
}

// as is a step that runs fn as c, with the case's directory (opened
// O_PATH) to make its calls relative to: the targets' roots sit below
// directories only root may search.
func as(c asuser.Cred, call string, fn func(dir int) (string, error)) Step {
	return step(fmt.Sprintf("[uid %d] %s", c.UID, call), func(e *Env) (string, error) {
		var text string
		err := asuser.Do(c, func() error {
			var err error
			text, err = fn(e.dirf)
			return err
		})
		return text, err
	})
}

func asCreate(c asuser.Cred, name string, mode uint32) Step {
	return as(c, fmt.Sprintf("open(%q, O_CREAT|O_EXCL|O_WRONLY, %04o)", name, mode), func(dir int) (string, error) {
		return "", closeAfter(unix.Openat(dir, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, mode))
	})
}

func asMkdir(c asuser.Cred, name string, mode uint32) Step {
	return as(c, fmt.Sprintf("mkdir(%q, %04o)", name, mode), func(dir int) (string, error) {
		return "", unix.Mkdirat(dir, name, mode)
	})
}

func asSymlink(c asuser.Cred, target, name string) Step {
	return as(c, fmt.Sprintf("symlink(%q, %q)", target, name), func(dir int) (string, error) {
		return "", unix.Symlinkat(target, dir, name)
	})
}

func asLink(c asuser.Cred, old, name string) Step {
	return as(c, fmt.Sprintf("link(%q, %q)", old, name), func(dir int) (string, error) {
		return "", unix.Linkat(dir, old, dir, name, 0)
	})
}

func asUnlink(c asuser.Cred, name string) Step {
	return as(c, fmt.Sprintf("unlink(%q)", name), func(dir int) (string, error) {
		return "", unix.Unlinkat(dir, name, 0)
	})
}

func asRmdir(c asuser.Cred, name string) Step {
	return as(c, fmt.Sprintf("rmdir(%q)", name), func(dir int) (string, error) {
		return "", unix.Unlinkat(dir, name, unix.AT_REMOVEDIR)
	})
}

func asMknod(c asuser.Cred, name string, mode uint32, dev uint64, text string) Step {
	return as(c, fmt.Sprintf("mknod(%q, %s)", name, text), func(dir int) (string, error) {
		return "", unix.Mknodat(dir, name, mode, int(dev))
	})
}

// asOpen opens name with flags (mode 0644 if they create) and closes it.
func asOpen(c asuser.Cred, name string, flags int, text string) Step {
	return as(c, fmt.Sprintf("open(%q, %s)", name, text), func(dir int) (string, error) {
		return "", closeAfter(unix.Openat(dir, name, flags|unix.O_CLOEXEC, 0o644))
	})
}

func asRename(c asuser.Cred, old, name string) Step {
	return as(c, fmt.Sprintf("rename(%q, %q)", old, name), func(dir int) (string, error) {
		return "", unix.Renameat(dir, old, dir, name)
	})
}

func asRead(c asuser.Cred, name string) Step {
	return as(c, fmt.Sprintf("read_file(%q)", name), func(dir int) (string, error) {
		fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", err
		}
		defer unix.Close(fd)
		buf := make([]byte, 64)
		n, err := unix.Read(fd, buf)
		if err != nil {
			return "", err
		}
		return describeBytes(buf[:n]), nil
	})
}

func asWrite(c asuser.Cred, name, data string) Step {
	return as(c, fmt.Sprintf("open(%q, O_WRONLY); write(%q)", name, data), func(dir int) (string, error) {
		fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", err
		}
		defer unix.Close(fd)
		_, err = unix.Write(fd, []byte(data))
		return "", err
	})
}

func asTruncate(c asuser.Cred, name string, size int64) Step {
	return as(c, fmt.Sprintf("open(%q, O_WRONLY); ftruncate(%d)", name, size), func(dir int) (string, error) {
		fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", err
		}
		defer unix.Close(fd)
		return "", unix.Ftruncate(fd, size)
	})
}

func asAccess(c asuser.Cred, name string, mode uint32, text string) Step {
	return as(c, fmt.Sprintf("access(%q, %s)", name, text), func(dir int) (string, error) {
		return "", unix.Faccessat(dir, name, mode, 0)
	})
}

func asStat(c asuser.Cred, name string) Step {
	return as(c, fmt.Sprintf("lstat(%q)", name), func(dir int) (string, error) {
		var st unix.Stat_t
		if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return "", err
		}
		return describeStat(&st), nil
	})
}

func asOpenDir(c asuser.Cred, name string) Step {
	return as(c, fmt.Sprintf("open(%q, O_RDONLY|O_DIRECTORY)", name), func(dir int) (string, error) {
		return "", closeAfter(unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0))
	})
}

func asChmod(c asuser.Cred, name string, mode uint32) Step {
	return as(c, fmt.Sprintf("chmod(%q, %04o)", name, mode), func(dir int) (string, error) {
		return "", unix.Fchmodat(dir, name, mode, 0)
	})
}

func asChown(c asuser.Cred, name string, uid, gid int) Step {
	return as(c, fmt.Sprintf("lchown(%q, %d, %d)", name, uid, gid), func(dir int) (string, error) {
		return "", unix.Fchownat(dir, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	})
}

// asUtimens sets name's times to now (times NULL: write permission is
// enough) or, explicit, to 2001-09-09 (only the owner may).
func asUtimens(c asuser.Cred, name string, explicit bool) Step {
	call, ts := fmt.Sprintf("utimensat(%q, NULL)", name), []unix.Timespec(nil)
	if explicit {
		t := unix.NsecToTimespec(1e18)
		call, ts = fmt.Sprintf("utimensat(%q, {1000000000 s, 1000000000 s})", name), []unix.Timespec{t, t}
	}
	return as(c, call, func(dir int) (string, error) {
		return "", unix.UtimesNanoAt(dir, name, ts, 0)
	})
}

// asSetxattr opens name for reading and sets a user xattr on the
// descriptor (there is no setxattrat): the kernel asks for write
// permission on the inode.
func asSetxattr(c asuser.Cred, name, key string) Step {
	return as(c, fmt.Sprintf("fd = open(%q, O_RDONLY); fsetxattr(fd, %q, \"v\")", name, key), func(dir int) (string, error) {
		fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", err
		}
		defer unix.Close(fd)
		return "", unix.Fsetxattr(fd, key, []byte("v"), 0)
	})
}

// closeAfter closes the descriptor a successful open returned.
func closeAfter(fd int, err error) error {
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// Root's steps that prepare the users cases.

func rootFile(name string, mode uint32) Step {
	return do(fmt.Sprintf("write_file(%q, \"data\"); chmod(%04o)", name, mode), func(e *Env) error {
		if err := closeAfter(unix.Open(e.at(name), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)); err != nil {
			return err
		}
		fd, err := unix.Open(e.at(name), unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		_, err = unix.Write(fd, []byte("data"))
		unix.Close(fd)
		if err != nil {
			return err
		}
		return unix.Chmod(e.at(name), mode)
	})
}

func mkdirStep(name string, mode uint32) Step {
	return do(fmt.Sprintf("mkdir(%q, %04o)", name, mode), func(e *Env) error { return unix.Mkdir(e.at(name), mode) })
}

func chmodStep(name string, mode uint32) Step {
	return do(fmt.Sprintf("chmod(%q, %04o)", name, mode), func(e *Env) error { return unix.Chmod(e.at(name), mode) })
}

func chownStep(name string, uid, gid int) Step {
	return do(fmt.Sprintf("lchown(%q, %d, %d)", name, uid, gid), func(e *Env) error { return unix.Lchown(e.at(name), uid, gid) })
}

// ownerStep shows name's type, mode and owner (not followed).
func ownerStep(name string) Step {
	return step(fmt.Sprintf("lstat(%q): owner", name), func(e *Env) (string, error) {
		var st unix.Stat_t
		if err := unix.Lstat(e.at(name), &st); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s %d:%d", describeStat(&st), st.Uid, st.Gid), nil
	})
}

// mtimeStep shows name's mtime in seconds.
func mtimeStep(name string) Step {
	return step(fmt.Sprintf("lstat(%q): mtime", name), func(e *Env) (string, error) {
		var st unix.Stat_t
		if err := unix.Lstat(e.at(name), &st); err != nil {
			return "", err
		}
		return fmt.Sprintf("mtime=%d.%09d", st.Mtim.Sec, st.Mtim.Nsec), nil
	})
}
