package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Families about names and directories: special files, name lengths,
// directory offsets, renameat2 flags and the names a library reserves.

// nodeCases: mknod of every type an application makes, mkfifo and bind(2)
// of a Unix socket; data through a FIFO made on the mount (the kernel's
// pipe), a device's number, the names of special files, their readdir
// types, and the same as wire ops (so the store runs them too).
func nodeCases() []Case {
	mknod := func(name string, mode uint32, dev int, text string) Step {
		return do(fmt.Sprintf("mknod(%q, %s, %d)", name, text, dev), func(e *Env) error {
			return unix.Mknod(e.at(name), mode, dev)
		})
	}
	mkfifo := do(`mkfifo("p", 0644)`, func(e *Env) error { return unix.Mkfifo(e.at("p"), 0o644) })
	null, sda1 := int(unix.Mkdev(1, 3)), int(unix.Mkdev(8, 1))
	return []Case{
		{Name: "node/mknod-fifo", Sys: []Step{mknod("p", unix.S_IFIFO|0o644, 0, "S_IFIFO|0644"), lstatStep("p")}},
		{Name: "node/mknod-regular", Sys: []Step{mknod("f", unix.S_IFREG|0o644, 0, "S_IFREG|0644"), lstatStep("f")}},
		{Name: "node/mknod-socket", Sys: []Step{mknod("s", unix.S_IFSOCK|0o644, 0, "S_IFSOCK|0644"), lstatStep("s")}},
		{Name: "node/mknod-char-device", Sys: []Step{mknod("c", unix.S_IFCHR|0o644, null, "S_IFCHR|0644"), lstatStep("c")}},
		{Name: "node/mknod-block-device", Sys: []Step{mknod("b", unix.S_IFBLK|0o600, sda1, "S_IFBLK|0600"), lstatStep("b")}},
		{Name: "node/mkfifo", Sys: []Step{mkfifo, lstatStep("p")}},
		{Name: "node/bind-unix-socket", Sys: []Step{
			do(`bind(socket(AF_UNIX, SOCK_STREAM), "s")`, func(e *Env) error {
				fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					return err
				}
				defer unix.Close(fd)
				return unix.Bind(fd, &unix.SockaddrUnix{Name: e.procPath("s")})
			}), lstatStep("s")}},
		{Name: "node/fifo-write-read", Sys: []Step{mkfifo,
			openStep(1, "p", unix.O_RDWR|unix.O_NONBLOCK, "O_RDWR|O_NONBLOCK"),
			fdStep(`write(fd1, "through the pipe")`, 1, func(fd int) (string, error) {
				n, err := unix.Write(fd, []byte("through the pipe"))
				return fmt.Sprintf("%d", n), err
			}),
			fdStep("read(fd1, 64)", 1, readFd), fdStep("read(fd1, 64)", 1, readFd),
			closeStep(1), lstatStep("p")}},
		{Name: "node/open-char-device", Sys: []Step{mknod("c", unix.S_IFCHR|0o666, null, "S_IFCHR|0666"),
			openStep(1, "c", unix.O_WRONLY, "O_WRONLY"), closeStep(1)}},
		{Name: "node/unlink-special", Sys: []Step{mkfifo, mknod("c", unix.S_IFCHR|0o644, null, "S_IFCHR|0644"),
			do(`unlink("p")`, func(e *Env) error { return unix.Unlink(e.at("p")) }),
			do(`unlink("c")`, func(e *Env) error { return unix.Unlink(e.at("c")) }),
			lstatStep("p"), lstatStep("c")}},
		{Name: "node/rename-special", Sys: []Step{mknod("b", unix.S_IFBLK|0o600, sda1, "S_IFBLK|0600"), mkfifo,
			do(`rename("b", "b2")`, func(e *Env) error { return unix.Rename(e.at("b"), e.at("b2")) }),
			do(`rename("p", "b2")`, func(e *Env) error { return unix.Rename(e.at("p"), e.at("b2")) }),
			lstatStep("b"), lstatStep("b2")}},
		{Name: "node/readdir-types", Sys: []Step{mkfifo, mknod("c", unix.S_IFCHR|0o644, null, "S_IFCHR|0644"),
			mknod("b", unix.S_IFBLK|0o600, sda1, "S_IFBLK|0600"), mknod("s", unix.S_IFSOCK|0o644, 0, "S_IFSOCK|0644"),
			step("getdents64(\".\"): d_type of each entry", func(e *Env) (string, error) { return direntTypes(e.Dir) })}},
		{Name: "node/mknod-ops", Ops: []fsop.Op{
			mknodOp("p", unix.S_IFIFO|0o640, 0), mknodOp("s", unix.S_IFSOCK|0o600, 0),
			mknodOp("c", unix.S_IFCHR|0o620, unix.Mkdev(1, 3)), mknodOp("b", unix.S_IFBLK|0o660, unix.Mkdev(8, 1)),
			mknodOp("f", unix.S_IFREG|0o644, 0), mknodOp("p", unix.S_IFIFO|0o644, 0),
			lstat("p"), lstat("s"), lstat("c"), lstat("b"), stat("f"), readdir("."),
			rename("b", "b2"), link("c", "c2"), lstat("c2"), unlink("p"), readdir(".")}},
	}
}

// readFd reads up to 64 bytes from fd and shows them.
func readFd(fd int) (string, error) {
	buf := make([]byte, 64)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%q", buf[:n]), nil
}

// direntTypes lists dir with getdents64 and shows each name but "." and
// ".." with its d_type, in byte order of names.
func direntTypes(dir string) (string, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	ents, err := getdents(fd, 32<<10)
	if err != nil {
		return "", err
	}
	var out []string
	for _, d := range ents {
		if d.name != "." && d.name != ".." {
			out = append(out, d.name+":"+fsop.DirentType(uint32(d.typ)<<12)) // DT_* is S_IF* >> 12
		}
	}
	sort.Strings(out)
	return strings.Join(out, " "), nil
}

// nameCases create, stat and unlink names around each limit: ext4's 255,
// the kernel's FUSE limits (1024 without FUSE_MAX_PAGES, 4095 with it).
// They are wire ops, so they run on the store as well.
func nameCases() []Case {
	var cs []Case
	for _, n := range []int{255, 256, 1024, 1025, 4095} {
		name := strings.Repeat("n", n)
		cs = append(cs, Case{Name: fmt.Sprintf("names/create-%d", n), Ops: []fsop.Op{create(name), stat(name), unlink(name)}})
	}
	long := strings.Repeat("d", 1024)
	cs = append(cs, Case{Name: "names/mkdir-rename-1024", Ops: []fsop.Op{mkdir(long), rename(long, "short"), stat("short")}})
	return cs
}

// getdentsCases: the d_off cookies a directory hands out, and whether
// seekdir to a telldir cookie resumes at the right entry after an entry
// already read is unlinked.
func getdentsCases() []Case {
	files := func(n int) Step {
		return do(fmt.Sprintf("create f0..f%d", n-1), func(e *Env) error {
			for i := 0; i < n; i++ {
				if err := os.WriteFile(e.at(fmt.Sprintf("f%d", i)), nil, 0o644); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return []Case{
		{Name: "getdents/d-off", Sys: []Step{files(5), openStep(1, ".", unix.O_RDONLY|unix.O_DIRECTORY, "O_RDONLY|O_DIRECTORY"),
			step("getdents64(fd1, 32 KiB): d_off of each entry", func(e *Env) (string, error) {
				fd, err := e.fd(1)
				if err != nil {
					return "", err
				}
				ents, err := getdents(fd, 32<<10)
				if err != nil {
					return "", err
				}
				return describeOffsets(ents), nil
			}), closeStep(1)}},
		{Name: "getdents/seekdir-across-unlink", Sys: seekdirSteps(files(10))},
	}
}

// dirent is one record of getdents64.
type dirent struct {
	name string
	off  int64
	typ  uint8 // d_type
}

// getdents reads one buffer of size bytes of directory fd.
func getdents(fd, size int) ([]dirent, error) {
	buf := make([]byte, size)
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		return nil, err
	}
	var out []dirent
	for b := buf[:n]; len(b) >= 19; {
		reclen := int(b[16]) | int(b[17])<<8
		if reclen < 19 || reclen > len(b) {
			return out, fmt.Errorf("getdents64: bad record length %d", reclen)
		}
		off := int64(0)
		for i := 7; i >= 0; i-- {
			off = off<<8 | int64(b[8+i])
		}
		name := b[19:reclen]
		if i := strings.IndexByte(string(name), 0); i >= 0 {
			name = name[:i]
		}
		out = append(out, dirent{name: string(name), off: off, typ: b[18]})
		b = b[reclen:]
	}
	return out, nil
}

// describeOffsets shows small cookies as they are; large ones (ext4's name
// hashes) only as such, since their values change with the hash seed.
func describeOffsets(ents []dirent) string {
	offs := make([]string, len(ents))
	for i, d := range ents {
		if d.off < 0 || d.off >= 1<<24 {
			return fmt.Sprintf("%d entries, d_off = name hashes (not positions)", len(ents))
		}
		offs[i] = fmt.Sprint(d.off)
	}
	return fmt.Sprintf("%d entries, d_off = %s", len(ents), strings.Join(offs, ","))
}

// seekdirSteps read a directory in small buffers, take a telldir cookie,
// read on, unlink an entry read before the cookie, seekdir back and read
// to the end: nothing may be lost or repeated.
func seekdirSteps(setup Step) []Step {
	var first, second []dirent
	var cookie int64
	var gone string
	return []Step{setup, openStep(1, ".", unix.O_RDONLY|unix.O_DIRECTORY, "O_RDONLY|O_DIRECTORY"),
		step("getdents64(fd1, 96 bytes); pos = telldir(fd1)", func(e *Env) (string, error) {
			fd, err := e.fd(1)
			if err != nil {
				return "", err
			}
			if first, err = getdents(fd, 96); err != nil || len(first) == 0 {
				return "", err
			}
			cookie = first[len(first)-1].off
			return fmt.Sprintf("%d entries", len(first)), nil
		}),
		step("getdents64(fd1, 96 bytes)", func(e *Env) (string, error) {
			fd, err := e.fd(1)
			if err != nil {
				return "", err
			}
			second, err = getdents(fd, 96)
			return fmt.Sprintf("%d entries", len(second)), err
		}),
		do("unlink(a file read before pos)", func(e *Env) error {
			for _, d := range first {
				if strings.HasPrefix(d.name, "f") {
					gone = d.name
					return os.Remove(e.at(d.name))
				}
			}
			return unix.ENOENT
		}),
		step("seekdir(fd1, pos); getdents64 to the end", func(e *Env) (string, error) {
			fd, err := e.fd(1)
			if err != nil {
				return "", err
			}
			if _, err := unix.Seek(fd, cookie, 0); err != nil {
				return "", err
			}
			var rest []dirent
			for {
				more, err := getdents(fd, 4096)
				if err != nil {
					return "", err
				}
				if len(more) == 0 {
					break
				}
				rest = append(rest, more...)
			}
			return describeResume(e.Dir, first, rest, gone)
		}), closeStep(1)}
}

// describeResume counts the entries lost or repeated when reading resumed
// at the cookie, against what the directory holds now.
func describeResume(dir string, first, rest []dirent, gone string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	want := map[string]bool{".": true, "..": true}
	for _, d := range ents {
		want[d.Name()] = true
	}
	seen := map[string]int{}
	for _, d := range append(append([]dirent{}, first...), rest...) {
		seen[d.name]++
	}
	var lost, repeated []string
	for name := range want {
		if seen[name] == 0 && name != gone {
			lost = append(lost, name)
		}
	}
	for name, n := range seen {
		if n > 1 {
			repeated = append(repeated, name)
		}
	}
	sort.Strings(lost)
	sort.Strings(repeated)
	return fmt.Sprintf("lost=%d repeated=%d", len(lost), len(repeated)), nil
}

// renameWhiteoutCases: RENAME_WHITEOUT, which overlay filesystems use.
func renameWhiteoutCases() []Case {
	return []Case{{Name: "rename2/whiteout", Sys: []Step{writeStep("a", []byte("A")),
		do(`renameat2("a", "b", RENAME_WHITEOUT)`, func(e *Env) error {
			return unix.Renameat2(unix.AT_FDCWD, e.at("a"), unix.AT_FDCWD, e.at("b"), unix.RENAME_WHITEOUT)
		}), lstatStep("a"), contentStep("b")}}}
}

// reservedCases: a name in the mount's root that the library keeps for
// itself (go-fuse's epoll workaround file).
func reservedCases() []Case {
	const hack = ".go-fuse-epoll-hack"
	root := func(call string, fn func(p string) error) Step {
		return do(call, func(e *Env) error { return fn(filepath.Join(e.Root, hack)) })
	}
	return []Case{{Name: "reserved/go-fuse-epoll-hack", Sys: []Step{
		step(fmt.Sprintf("lstat(ROOT/%q)", hack), func(e *Env) (string, error) {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(e.Root, hack), &st); err != nil {
				return "", err
			}
			s := describeStat(&st)
			if st.Ino == 1<<64-1 {
				s += " ino=2^64-1"
			}
			return s, nil
		}),
		root(fmt.Sprintf("mkdir(ROOT/%q)", hack), func(p string) error { return unix.Mkdir(p, 0o755) }),
		root(fmt.Sprintf("rmdir(ROOT/%q)", hack), unix.Rmdir),
		root(fmt.Sprintf("unlink(ROOT/%q)", hack), unix.Unlink),
	}}}
}
