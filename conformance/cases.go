package conformance

import (
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Case is a short sequence of operations run from an empty directory. Every
// op's result is recorded and compared across targets.
type Case struct {
	Name  string // family/name, e.g. "rename/over-existing-file"
	Ops   []fsop.Op
	Rules compare.Rules
	// Sys, instead of Ops, are syscalls outside the wire vocabulary; they
	// run only on targets that are directories.
	Sys []Step
}

// Len is the number of steps (ops or syscalls).
func (c Case) Len() int { return len(c.Ops) + len(c.Sys) }

// Call is step i as the report shows it: an op in one line of JSON, or
// the syscall as an application would write it.
func (c Case) Call(i int) string {
	if i < len(c.Ops) {
		return opString(c.Ops[i])
	}
	return c.Sys[i-len(c.Ops)].Call
}

// Family is the part of the name before the slash.
func (c Case) Family() string {
	f, _, _ := strings.Cut(c.Name, "/")
	return f
}

// Cases returns the conformance suite, grouped by op family.
func Cases() []Case {
	var cs []Case
	add := func(name string, ops ...fsop.Op) { cs = append(cs, Case{Name: name, Ops: ops}) }
	long := strings.Repeat("n", 256)
	mib3 := pattern(3 << 20)

	// create and open
	add("create/new-file", create("f"), stat("f"), readdir("."))
	add("create/exclusive-existing", create("f"), createExcl("f"))
	add("create/existing-keeps-data", writeFile("f", "keep"), create("f"), readFile("f"))
	add("create/missing-parent", create("nope/f"))
	add("create/under-a-file", create("f"), create("f/g"))
	add("create/name-too-long", create(long))
	add("create/mode-0600", createMode("f", 0o600), stat("f"))
	add("create/mode-setuid", createMode("f", 0o4755), stat("f"))
	add("create/over-directory", mkdir("d"), create("d"))
	add("open/trunc", writeFile("f", "hello world"), open(1, "f", wronly|unix.O_TRUNC), closeH(1), stat("f"), readFile("f"))
	add("open/creat-excl-existing", create("f"), open(1, "f", wronly|unix.O_CREAT|unix.O_EXCL))
	add("open/creat-new", open(1, "f", rdwr|unix.O_CREAT), pwrite(1, 0, "abc"), pread(1, 0, 10), closeH(1), stat("f"))
	add("open/dir-for-writing", mkdir("d"), open(1, "d", wronly))
	add("open/o-directory-on-file", create("f"), open(1, "f", rdonly|unix.O_DIRECTORY))
	add("open/o-nofollow-symlink", create("f"), symlink("f", "l"), open(1, "l", rdonly|unix.O_NOFOLLOW))
	add("open/missing", open(1, "f", rdonly))

	// read and write
	add("rw/write-read", writeFile("f", "hello"), readFile("f"), stat("f"))
	add("rw/overwrite-middle", writeFile("f", "0123456789"), writeAt("f", 3, []byte("abc")), readFile("f"))
	add("rw/write-past-eof", writeFile("f", "ab"), writeAt("f", 10, []byte("cd")), readFile("f"), stat("f"))
	add("rw/large-3mib", writeFileBytes("f", mib3), stat("f"), readFile("f"), readAt("f", 1<<20+5, 4096))
	add("rw/sparse-100mib", create("f"), writeAt("f", 100<<20, []byte("x")), stat("f"), readAt("f", 50<<20, 4096), readAt("f", 100<<20-2, 8))
	add("rw/append-twice", appendTo("f", "one,"), appendTo("f", "two"), readFile("f"))
	add("rw/o-append-two-handles", create("f"),
		open(1, "f", wronly|unix.O_APPEND), open(2, "f", wronly|unix.O_APPEND),
		pwrite(1, 0, "aa"), pwrite(2, 0, "bb"), pwrite(1, 0, "cc"), closeH(1), closeH(2), readFile("f"))
	add("rw/handle-pwrite-pread", open(1, "f", rdwr|unix.O_CREAT), pwrite(1, 0, "hello"), pwrite(1, 2, "LL"), pread(1, 0, 100), pread(1, 3, 1), closeH(1))
	add("rw/read-past-eof", writeFile("f", "abc"), readAt("f", 10, 5))
	add("rw/read-directory", mkdir("d"), readFile("d"))
	add("rw/write-missing", writeAt("nope", 0, []byte("x")))
	add("rw/pread-write-only-handle", create("f"), open(1, "f", wronly), pread(1, 0, 1), closeH(1))
	add("rw/pwrite-read-only-handle", create("f"), open(1, "f", rdonly), pwrite(1, 0, "x"), closeH(1))
	add("rw/unknown-handle", pread(7, 0, 1))
	add("rw/empty-write-file", writeFile("f", "abc"), writeFile("f", ""), stat("f"), readFile("f"))
	add("rw/two-handles-see-each-other", create("f"), open(1, "f", rdwr), open(2, "f", rdwr),
		pwrite(1, 0, "from-one"), pread(2, 0, 20), closeH(1), closeH(2))

	// truncate
	add("truncate/down", writeFile("f", "0123456789"), truncate("f", 4), readFile("f"), stat("f"))
	add("truncate/up-zero-fill", writeFile("f", "abc"), truncate("f", 8), readFile("f"))
	add("truncate/to-zero", writeFile("f", "abc"), truncate("f", 0), stat("f"))
	add("truncate/down-then-up", writeFileBytes("f", pattern(200000)), truncate("f", 70000), truncate("f", 140000), readAt("f", 69990, 20), stat("f"))
	add("truncate/ftruncate", writeFile("f", "abcdef"), open(1, "f", rdwr), ftruncate(1, 2), pread(1, 0, 10), closeH(1), stat("f"))
	add("truncate/directory", mkdir("d"), truncate("d", 0))
	add("truncate/missing", truncate("nope", 0))

	// attributes
	add("attr/chmod-file", create("f"), chmod("f", 0o600), stat("f"))
	add("attr/chmod-dir", mkdir("d"), chmod("d", 0o700), stat("d"))
	add("attr/chmod-sticky-setgid", mkdir("d"), chmod("d", 0o3777), stat("d"))
	add("attr/chmod-sticky-file", create("f"), chmod("f", 0o1644), stat("f"))
	add("attr/chmod-zero", create("f"), chmod("f", 0), stat("f"))
	add("attr/chown", create("f"), chown("f", 1000, 1000), stat("f"))
	add("attr/chown-keep-gid", create("f"), chown("f", 1000, 2000), chown("f", 3000, -1), stat("f"))
	cs = append(cs, Case{Name: "attr/utimens", Rules: compare.Rules{Mtime: true}, Ops: []fsop.Op{
		create("f"), utimens("f", 1_600_000_000_123_456_789, 1_500_000_000_987_654_321), stat("f")}})
	add("attr/stat-missing", stat("nope"))
	add("attr/stat-through-file", create("f"), stat("f/x"))
	add("attr/lstat-vs-stat", writeFile("f", "12345"), symlink("f", "l"), lstat("l"), stat("l"))
	add("attr/chmod-missing", chmod("nope", 0o644))
	add("attr/chmod-through-symlink", create("f"), symlink("f", "l"), chmod("l", 0o640), stat("f"))

	// directories
	add("dir/mkdir-readdir", mkdir("d"), readdir("."), stat("d"))
	add("dir/mkdir-exists", mkdir("d"), mkdir("d"))
	add("dir/mkdir-missing-parent", mkdir("a/b"))
	add("dir/mkdir-mode", mkdirMode("d", 0o700), stat("d"))
	add("dir/mkdir-name-too-long", mkdir(long))
	add("dir/rmdir-empty", mkdir("d"), rmdir("d"), stat("d"))
	add("dir/rmdir-not-empty", mkdir("d"), create("d/f"), rmdir("d"))
	add("dir/rmdir-file", create("f"), rmdir("f"))
	add("dir/rmdir-missing", rmdir("nope"))
	add("dir/nlink-counts", mkdir("d"), mkdir("d/a"), mkdir("d/b"), create("d/f"), stat("d"), rmdir("d/a"), stat("d"))
	add("dir/readdir-after-unlink", create("a"), create("b"), create("c"), unlink("b"), readdir("."))
	add("dir/readdir-file", create("f"), readdir("f"))
	add("dir/readdir-empty", mkdir("d"), readdir("d"))
	add("dir/readdir-types", mkdir("d"), create("f"), symlink("f", "l"), readdir("."))
	hundred := []fsop.Op{mkdir("d")}
	for i := 0; i < 100; i++ {
		hundred = append(hundred, create("d/f"+string(rune('A'+i/26))+string(rune('a'+i%26))))
	}
	add("dir/readdir-100", append(hundred, readdir("d"), stat("d"))...)
	add("dir/readdir-missing", readdir("nope"))

	// unlink
	add("unlink/file", create("f"), unlink("f"), stat("f"))
	add("unlink/directory", mkdir("d"), unlink("d"))
	add("unlink/missing", unlink("nope"))
	add("unlink/open-file-still-readable", writeFile("f", "still here"), open(1, "f", rdwr), unlink("f"),
		pread(1, 0, 100), pwrite(1, 0, "STILL"), pread(1, 0, 100), closeH(1), stat("f"))
	add("unlink/symlink-keeps-target", writeFile("f", "x"), symlink("f", "l"), unlink("l"), readFile("f"))

	// rename
	add("rename/file", writeFile("a", "x"), rename("a", "b"), stat("a"), readFile("b"))
	add("rename/over-existing-file", writeFile("a", "new"), writeFile("b", "old"), rename("a", "b"), readFile("b"), readdir("."))
	add("rename/dir-over-empty-dir", mkdir("a"), create("a/f"), mkdir("b"), rename("a", "b"), readdir("b"))
	add("rename/dir-over-non-empty-dir", mkdir("a"), mkdir("b"), create("b/f"), rename("a", "b"))
	add("rename/file-over-dir", create("a"), mkdir("b"), rename("a", "b"))
	add("rename/dir-over-file", mkdir("a"), create("b"), rename("a", "b"))
	add("rename/dir-into-itself", mkdir("a"), mkdir("a/b"), rename("a", "a/b/c"))
	add("rename/missing", rename("nope", "b"))
	add("rename/to-missing-dir", create("a"), rename("a", "nope/b"))
	add("rename/across-dirs-nlink", mkdir("p"), mkdir("q"), mkdir("p/d"), rename("p/d", "q/d"), stat("p"), stat("q"), readdir("q/d"))
	add("rename/noreplace-existing", create("a"), create("b"), renameFlags("a", "b", fsop.RenameNoReplace))
	add("rename/noreplace-free", writeFile("a", "x"), renameFlags("a", "b", fsop.RenameNoReplace), readFile("b"))
	add("rename/exchange-files", writeFile("a", "A"), writeFile("b", "B"), renameFlags("a", "b", fsop.RenameExchange), readFile("a"), readFile("b"))
	add("rename/exchange-file-dir", writeFile("a", "A"), mkdir("b"), renameFlags("a", "b", fsop.RenameExchange), stat("a"), stat("b"))
	add("rename/exchange-missing", create("a"), renameFlags("a", "b", fsop.RenameExchange))
	add("rename/onto-own-hard-link", writeFile("a", "x"), link("a", "b"), rename("a", "b"), readdir("."), stat("a"))
	add("rename/dir-to-itself", mkdir("d"), rename("d", "d"), stat("d"))
	add("rename/open-file", writeFile("a", "data"), open(1, "a", rdonly), rename("a", "b"), pread(1, 0, 10), closeH(1))

	// hard links
	add("link/nlink-two", writeFile("a", "x"), link("a", "b"), stat("a"), stat("b"))
	add("link/unlink-one", writeFile("a", "x"), link("a", "b"), unlink("a"), stat("b"), readFile("b"))
	add("link/existing-target", create("a"), create("b"), link("a", "b"))
	add("link/directory", mkdir("d"), link("d", "e"))
	add("link/missing", link("nope", "b"))
	add("link/write-one-read-other", writeFile("a", "old"), link("a", "b"), writeFile("a", "new"), readFile("b"))
	add("link/across-dirs", mkdir("d"), writeFile("a", "x"), link("a", "d/b"), stat("d/b"))

	// symlinks
	add("symlink/readlink", symlink("some/target", "l"), readlink("l"), lstat("l"))
	add("symlink/dangling", symlink("nope", "l"), stat("l"), lstat("l"))
	add("symlink/exists", create("f"), symlink("x", "f"))
	add("symlink/readlink-file", create("f"), readlink("f"))
	add("symlink/loop", symlink("b", "a"), symlink("a", "b"), stat("a"))
	add("symlink/to-dir", mkdir("d"), symlink("d", "l"), writeFile("l/f", "via link"), readFile("d/f"))
	add("symlink/long-target", symlink(strings.Repeat("x/", 1000), "l"), readlink("l"))

	// xattrs
	add("xattr/set-get", create("f"), setxattr("f", "user.k", "value", 0), getxattr("f", "user.k", 0))
	add("xattr/size-query", create("f"), setxattr("f", "user.k", "12345678", 0), getxattr("f", "user.k", 0))
	add("xattr/erange", create("f"), setxattr("f", "user.k", "12345678", 0), getxattr("f", "user.k", 4))
	add("xattr/exact-buffer", create("f"), setxattr("f", "user.k", "1234", 0), getxattr("f", "user.k", 4))
	add("xattr/get-missing", create("f"), getxattr("f", "user.none", 0))
	add("xattr/list", create("f"), setxattr("f", "user.b", "2", 0), setxattr("f", "user.a", "1", 0), listxattr("f", 0))
	add("xattr/list-erange", create("f"), setxattr("f", "user.a", "1", 0), listxattr("f", 3))
	add("xattr/list-empty", create("f"), listxattr("f", 0))
	add("xattr/remove", create("f"), setxattr("f", "user.k", "v", 0), removexattr("f", "user.k"), getxattr("f", "user.k", 0))
	add("xattr/remove-missing", create("f"), removexattr("f", "user.k"))
	add("xattr/create-existing", create("f"), setxattr("f", "user.k", "1", 0), setxattr("f", "user.k", "2", fsop.XattrCreate))
	add("xattr/replace-missing", create("f"), setxattr("f", "user.k", "1", fsop.XattrReplace))
	add("xattr/replace-existing", create("f"), setxattr("f", "user.k", "1", 0), setxattr("f", "user.k", "2", fsop.XattrReplace), getxattr("f", "user.k", 0))
	add("xattr/on-directory", mkdir("d"), setxattr("d", "user.k", "dir", 0), getxattr("d", "user.k", 0))
	add("xattr/2k-value", create("f"), setxattr("f", "user.big", string(pattern(2000)), 0), getxattr("f", "user.big", 0)) // ext4 keeps xattrs in one block: 4 KiB is ENOSPC there
	add("xattr/bad-namespace", create("f"), setxattr("f", "bogus.k", "v", 0))
	add("xattr/missing-file", getxattr("nope", "user.k", 0))
	add("xattr/empty-value", create("f"), setxattr("f", "user.e", "", 0), getxattr("f", "user.e", 0), listxattr("f", 0))

	// statfs and fsync
	add("statfs/root", statfs("."))
	add("statfs/missing", statfs("nope"))
	add("fsync/path", writeFile("f", "x"), fsyncPath("f"))
	add("fsync/handle", open(1, "f", rdwr|unix.O_CREAT), pwrite(1, 0, "x"), fsyncHandle(1), closeH(1))
	add("fsync/directory", mkdir("d"), fsyncPath("d"))
	add("fsync/missing", fsyncPath("nope"))

	// a path from the case's directory longer than PATH_MAX, as the front
	// sends one for a file a program reached with *at calls: every op on
	// it behaves as on a short path (the executors walk it in pieces)
	deep := strings.Repeat(strings.Repeat("d", 200)+"/", 24) // 4,824 bytes
	var down []fsop.Op
	for i := 201; i <= len(deep); i += 201 {
		down = append(down, mkdir(deep[:i-1]))
	}
	add("paths/deep-ops", append(down, writeFile(deep+"f", "deep"), stat(deep+"f"), rename(deep+"f", deep+"g"),
		link(deep+"g", "h"), symlink("g", deep+"l"), readFile(deep+"l"), readdir(deep[:len(deep)-1]), chmod(deep+"g", 0o600),
		lstat(deep+"g"), unlink(deep+"g"), rmdir(deep[:len(deep)-1]), readFile("h"))...)

	// beyond the wire vocabulary (and names, xattr limits: wire ops at the limits)
	for _, family := range []func() []Case{nameCases, xattrLimitCases, nodeCases, getdentsCases, renameWhiteoutCases,
		fallocateCases, tmpfileCases, seekCases, copyCases, directCases, mmapCases, bigIOCases,
		ioctlCases, lockCases, interruptCases, pollCases, statfsFieldCases, umaskCases, frontCases, usersCases} {
		cs = append(cs, family()...)
	}
	cs = append(cs, trafficCases()...)
	// Last: through the front, a name in the root that the shadow's library
	// keeps for itself diverges there, and a difference in the root resyncs
	// the whole store (a scope is a directory), which leaves every op of the
	// cases running meanwhile uncompared.
	return append(cs, reservedCases()...)
}
