package front_test

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// specials: mknod, mkfifo and bind reach the store through the front; the
// type and a device's number show in stat; a FIFO's data stays in the
// kernel (open read-write without blocking, write, read back); names go
// like any file's.
func specials(t *testing.T, root string) {
	at := func(p string) string { return filepath.Join(root, p) }
	must(t, "mkfifo", unix.Mkfifo(at("p"), 0o640))
	if st := lstat(t, at("p")); st.Mode != unix.S_IFIFO|0o640 || st.Rdev != 0 {
		t.Errorf("mkfifo: mode %o rdev %#x", st.Mode, st.Rdev)
	}
	fd, err := unix.Open(at("p"), unix.O_RDWR|unix.O_NONBLOCK, 0)
	must(t, "open the fifo", err)
	if n, err := unix.Write(fd, []byte("piped")); n != 5 || err != nil {
		t.Errorf("write to the fifo: %d, %v", n, err)
	}
	buf := make([]byte, 16)
	if n, err := unix.Read(fd, buf); err != nil || string(buf[:n]) != "piped" {
		t.Errorf("read from the fifo: %q, %v", buf[:max(n, 0)], err)
	}
	unix.Close(fd)

	must(t, "mknod block", unix.Mknod(at("b"), unix.S_IFBLK|0o600, int(unix.Mkdev(8, 1))))
	if st := lstat(t, at("b")); st.Mode != unix.S_IFBLK|0o600 || st.Rdev != unix.Mkdev(8, 1) {
		t.Errorf("mknod block: mode %o rdev %#x, want %o %#x", st.Mode, st.Rdev, unix.S_IFBLK|0o600, unix.Mkdev(8, 1))
	}
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	must(t, "socket", err)
	defer unix.Close(s)
	must(t, "bind", unix.Bind(s, &unix.SockaddrUnix{Name: at("s")}))
	if st := lstat(t, at("s")); st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Errorf("bind: mode %o", st.Mode)
	}
	must(t, "rename a device", unix.Rename(at("b"), at("b2")))
	if st := lstat(t, at("b2")); st.Rdev != unix.Mkdev(8, 1) {
		t.Errorf("renamed device: rdev %#x", st.Rdev)
	}
	for _, name := range []string{"p", "b2", "s"} {
		must(t, "unlink "+name, unix.Unlink(at(name)))
	}
	mustErrno(t, "mknod of a directory", unix.Mknod(at("dir"), unix.S_IFDIR|0o755, 0), unix.EPERM)
}
