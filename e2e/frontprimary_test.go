package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFrontAnswersAsPrimary: programs in the front mount (proxy, bazil
// primary, go-fuse shadow, bridges started under umask 022) get the same
// answers as on a bazil bridge's own mount: creation modes under several
// umasks, lchown and utimensat(AT_SYMLINK_NOFOLLOW) of a symlink, hard
// links as one inode, and mknod, mkfifo and bind answered by the bridge
// (issue 20). The front also shows the primary's inode numbers.
func TestFrontAnswersAsPrimary(t *testing.T) {
	requireE2E(t)
	timed(t)
	old := unix.Umask(0o022) // what the bridges, their executors and the proxy inherit
	root := testRoot(t)
	stack := startFrontStack(t, root, "now", lighthouseBin, bridgeSync)
	bareRoot := filepath.Join(root, "bare")
	if err := os.MkdirAll(bareRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	bare := startBridge(t, bareRoot, "bazil", "primary", "127.0.0.1:0")
	unix.Umask(old)

	frontDir, bareDir := filepath.Join(stack.front, "t"), filepath.Join(bare.mnt, "t")
	for _, d := range []string{frontDir, bareDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, want := primaryAnswers(frontDir), primaryAnswers(bareDir)
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Errorf("front mount answers %q; the bazil bridge's mount %q", at(got, i), want[i])
		}
	}

	// The front shows the primary's inode numbers.
	for _, name := range []string{".", "f0620", "d0777", "l"} {
		var fst, pst unix.Stat_t
		if err := unix.Lstat(filepath.Join(frontDir, name), &fst); err != nil {
			t.Fatal(err)
		}
		if err := unix.Lstat(filepath.Join(stack.primary.mnt, "t", name), &pst); err != nil {
			t.Fatal(err)
		}
		if fst.Ino != pst.Ino {
			t.Errorf("%s: inode %d on the front mount, %d on the primary's", name, fst.Ino, pst.Ino)
		}
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(nothing)"
}

// primaryAnswers runs the calls issue 20 found the front answering
// differently in dir, and describes each outcome.
func primaryAnswers(dir string) []string {
	var out []string
	note := func(call string, err error, detail string) {
		out = append(out, fmt.Sprintf("%s: %v %s", call, errText(err), detail))
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	mode := func(name string) string {
		var st unix.Stat_t
		if err := unix.Lstat(p(name), &st); err != nil {
			return errText(err)
		}
		return fmt.Sprintf("mode %04o uid %d gid %d", st.Mode&0o7777, st.Uid, st.Gid)
	}
	for _, mask := range []int{0, 0o022, 0o077} {
		old := unix.Umask(mask)
		for _, m := range []uint32{0o620, 0o666, 0o777} {
			name := fmt.Sprintf("f%04o", m)
			if mask != 0 {
				name = fmt.Sprintf("f%04o-%03o", m, mask)
			}
			fd, err := unix.Open(p(name), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, m)
			if err == nil {
				unix.Close(fd)
			}
			note(fmt.Sprintf("umask %03o open %s", mask, name), err, mode(name))
			dname := strings.Replace(name, "f", "d", 1)
			note(fmt.Sprintf("umask %03o mkdir %s", mask, dname), unix.Mkdir(p(dname), m), mode(dname))
		}
		unix.Umask(old)
	}

	note("symlink l", unix.Symlink("f0620", p("l")), "")
	note("lchown l", unix.Lchown(p("l"), 5, 6), "link "+mode("l")+", target "+mode("f0620"))
	ts := []unix.Timespec{{Sec: 1e9}, {Sec: 2e9}}
	err := unix.UtimesNanoAt(unix.AT_FDCWD, p("l"), ts, unix.AT_SYMLINK_NOFOLLOW)
	var lst, fst unix.Stat_t
	unix.Lstat(p("l"), &lst)
	unix.Stat(p("f0620"), &fst)
	note("utimensat l nofollow", err, fmt.Sprintf("link mtime %d, target's is 2e9: %v", lst.Mtim.Sec, fst.Mtim.Sec == 2e9))

	note("link f0666 g", unix.Link(p("f0666"), p("g")), "")
	var a, b unix.Stat_t
	unix.Lstat(p("f0666"), &a)
	unix.Lstat(p("g"), &b)
	out = append(out, fmt.Sprintf("hard link: one inode %v, nlink %d %d", a.Ino == b.Ino, a.Nlink, b.Nlink))

	note("mkfifo p", unix.Mkfifo(p("p"), 0o644), "")
	note("mknod c", unix.Mknod(p("c"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))), "")
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		// Bind through /proc/self/fd: a socket address holds 108 bytes.
		d, derr := unix.Open(dir, unix.O_PATH|unix.O_CLOEXEC, 0)
		if derr == nil {
			err = unix.Bind(sock, &unix.SockaddrUnix{Name: fmt.Sprintf("/proc/self/fd/%d/s", d)})
			unix.Close(d)
		} else {
			err = derr
		}
		unix.Close(sock)
	}
	note("bind s", err, "")
	return out
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	if e, ok := err.(unix.Errno); ok {
		return unix.ErrnoName(e)
	}
	return err.Error()
}
