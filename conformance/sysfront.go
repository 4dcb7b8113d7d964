package conformance

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// frontCases are the calls issue 20 found the front mount answering
// differently from the primary's own mount, beyond the op vocabulary's
// cases: the attributes of a symlink itself, a hard link's inode number,
// and a path deeper than PATH_MAX below the mount's root, reached
// relative to a directory descriptor. They hold on every target; the
// front is held to bazil on them.
func frontCases() []Case {
	symlinkFile := []Step{writeStep("f", []byte("x")), do(`symlink("f", "l")`, func(e *Env) error { return unix.Symlink("f", e.at("l")) })}
	return []Case{
		{Name: "symlink/lchown", Sys: append(symlinkFile,
			do(`lchown("l", 5, 6)`, func(e *Env) error { return unix.Lchown(e.at("l"), 5, 6) }),
			ownersStep("l", "f"))},
		{Name: "symlink/utimensat-nofollow", Sys: append(symlinkFile,
			do(`utimensat(AT_FDCWD, "l", [1e9, 2e9], AT_SYMLINK_NOFOLLOW)`, func(e *Env) error {
				return unix.UtimesNanoAt(unix.AT_FDCWD, e.at("l"), []unix.Timespec{{Sec: 1e9}, {Sec: 2e9}}, unix.AT_SYMLINK_NOFOLLOW)
			}),
			step(`lstat("l").st_mtime, stat("f").st_mtime`, func(e *Env) (string, error) {
				var l, f unix.Stat_t
				if err := unix.Lstat(e.at("l"), &l); err != nil {
					return "", err
				}
				if err := unix.Stat(e.at("f"), &f); err != nil {
					return "", err
				}
				return fmt.Sprintf("link mtime %d, target's is 2e9: %v", l.Mtim.Sec, f.Mtim.Sec == 2e9), nil
			}))},
		{Name: "link/same-inode", Sys: []Step{writeStep("f", []byte("x")),
			do(`link("f", "g")`, func(e *Env) error { return unix.Link(e.at("f"), e.at("g")) }),
			step(`lstat("f"), lstat("g"): one inode`, func(e *Env) (string, error) {
				var f, g unix.Stat_t
				if err := unix.Lstat(e.at("f"), &f); err != nil {
					return "", err
				}
				if err := unix.Lstat(e.at("g"), &g); err != nil {
					return "", err
				}
				return fmt.Sprintf("same inode %v, nlink %d %d", f.Ino == g.Ino, f.Nlink, g.Nlink), nil
			})}},
		deepPathCase(),
		pathMaxCase(),
	}
}

// pathMaxCase makes each call with a path of PATH_MAX-1 (4,095) bytes
// relative to the case's directory, the longest the kernel takes, as a
// POSIX suite does from its working directory: mkdir, open(O_CREAT),
// chmod, chown, link, rename, symlink, stat, unlink, rmdir; then one byte
// more, which the kernel refuses (ENAMETOOLONG) before any filesystem sees
// it. The path from the mount's root is longer than PATH_MAX by the case
// directory's own path: a filesystem that measures paths from its root
// refuses the first group too.
func pathMaxCase() Case {
	dirName := strings.Repeat("d", 200)
	dir := strings.TrimSuffix(strings.Repeat(dirName+"/", 20), "/") // 4,019 bytes
	name := func(c string) string { return dir + "/" + strings.Repeat(c, unix.PathMax-1-len(dir)-1) }
	p, q, r, l := name("f"), name("g"), name("h"), name("l")
	short := func(s string) string { return fmt.Sprintf("D/%s...(%d bytes)", s[len(dir)+1:][:4], len(s)) }
	at := func(call string, fn func(dirf int) error) Step {
		return do(call, func(e *Env) error { return fn(e.dirf) })
	}
	return Case{Name: "paths/path-max-relative", Sys: []Step{
		step(fmt.Sprintf("20 x mkdirat(dir, D[:i]) with D the 4,019-byte %q/..., relative to the case's directory", dirName[:8]), func(e *Env) (string, error) {
			for i := len(dirName); i <= len(dir); i += len(dirName) + 1 {
				if err := unix.Mkdirat(e.dirf, dir[:i], 0o755); err != nil {
					return fmt.Sprintf("%d bytes: %s", i, fsop.ErrnoName(err)), nil
				}
			}
			return "20 levels", nil
		}),
		at(fmt.Sprintf("openat(dir, %s, O_CREAT|O_WRONLY, 0644); close", short(p)), func(d int) error {
			return closeAfter(unix.Openat(d, p, unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644))
		}),
		at(fmt.Sprintf("fchmodat(dir, %s, 0600)", short(p)), func(d int) error { return unix.Fchmodat(d, p, 0o600, 0) }),
		at(fmt.Sprintf("fchownat(dir, %s, 5, 6)", short(p)), func(d int) error { return unix.Fchownat(d, p, 5, 6, 0) }),
		at(fmt.Sprintf("openat(dir, %s, O_WRONLY|O_TRUNC); close", short(p)), func(d int) error {
			return closeAfter(unix.Openat(d, p, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0))
		}),
		at(fmt.Sprintf("linkat(dir, %s, dir, %s)", short(p), short(q)), func(d int) error { return unix.Linkat(d, p, d, q, 0) }),
		at(fmt.Sprintf("renameat(dir, %s, dir, %s)", short(q), short(r)), func(d int) error { return unix.Renameat(d, q, d, r) }),
		at(fmt.Sprintf("symlinkat(\"x\", dir, %s)", short(l)), func(d int) error { return unix.Symlinkat("x", d, l) }),
		step(fmt.Sprintf("fstatat(dir, %s), fstatat(dir, %s)", short(p), short(l)), func(e *Env) (string, error) {
			var a, b unix.Stat_t
			if err := unix.Fstatat(e.dirf, p, &a, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return "", err
			}
			if err := unix.Fstatat(e.dirf, l, &b, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s %d:%d nlink=%d, %s", describeStat(&a), a.Uid, a.Gid, a.Nlink, describeStat(&b)), nil
		}),
		at(fmt.Sprintf("openat(dir, %s, O_CREAT|O_WRONLY, 0644)", short(p+"x")), func(d int) error {
			return closeAfter(unix.Openat(d, p+"x", unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644))
		}),
		at(fmt.Sprintf("mkdirat(dir, %s)", short(p+"x")), func(d int) error { return unix.Mkdirat(d, p+"x", 0o755) }),
		at(fmt.Sprintf("unlinkat(dir, %s), (%s), (%s)", short(p), short(r), short(l)), func(d int) error {
			for _, n := range []string{p, r, l} {
				if err := unix.Unlinkat(d, n, 0); err != nil {
					return err
				}
			}
			return nil
		}),
		at("unlinkat(dir, D, AT_REMOVEDIR)", func(d int) error { return unix.Unlinkat(d, dir, unix.AT_REMOVEDIR) }),
	}}
}

// ownersStep shows the owners of a (not followed) and b.
func ownersStep(a, b string) Step {
	return step(fmt.Sprintf("lstat(%q), lstat(%q): owners", a, b), func(e *Env) (string, error) {
		var sa, sb unix.Stat_t
		if err := unix.Lstat(e.at(a), &sa); err != nil {
			return "", err
		}
		if err := unix.Lstat(e.at(b), &sb); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s %d:%d, %s %d:%d", a, sa.Uid, sa.Gid, b, sb.Uid, sb.Gid), nil
	})
}

// deepPathCase makes 24 nested directories of 200-byte names (4,824 bytes
// below the case's directory, beyond PATH_MAX), each with mkdirat
// relative to a descriptor of its parent, as `cd` and `tar` do, then
// creates and stats a file in the deepest one reached. The kernel never
// sees a path longer than one name; a filesystem that measures paths from
// its root refuses somewhere on the way down.
func deepPathCase() Case {
	const levels, nameLen = 24, 200
	name := strings.Repeat("d", nameLen)
	return Case{Name: "paths/deep-relative", Sys: []Step{
		step(fmt.Sprintf("%d x (mkdirat(fd, %q...(%d bytes)), fd = openat(fd, it, O_PATH))", levels, name[:8], nameLen), func(e *Env) (string, error) {
			fd, err := unix.Open(e.Dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return "", err
			}
			made, failed := 0, ""
			for ; made < levels; made++ {
				if err = unix.Mkdirat(fd, name, 0o755); err != nil {
					failed = "mkdirat"
					break
				}
				next, oerr := unix.Openat(fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				unix.Close(fd)
				if fd, err = next, oerr; err != nil {
					failed = "openat"
					break
				}
			}
			if fd >= 0 {
				e.fds[1] = fd // the deepest directory reached
			}
			if err != nil {
				return fmt.Sprintf("%d levels, then %s: %s", made, failed, fsop.ErrnoName(err)), nil
			}
			return fmt.Sprintf("%d levels", made), nil
		}),
		do(`openat(fd1, "f", O_CREAT|O_EXCL|O_WRONLY, 0644); close`, func(e *Env) error {
			dfd, err := e.fd(1)
			if err != nil {
				return err
			}
			fd, err := unix.Openat(dfd, "f", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
			if err != nil {
				return err
			}
			return unix.Close(fd)
		}),
		step(`fstatat(fd1, "f", AT_SYMLINK_NOFOLLOW)`, func(e *Env) (string, error) {
			dfd, err := e.fd(1)
			if err != nil {
				return "", err
			}
			var st unix.Stat_t
			if err := unix.Fstatat(dfd, "f", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return "", err
			}
			return describeStat(&st), nil
		}),
		closeStep(1),
	}}
}
