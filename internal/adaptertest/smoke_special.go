package adaptertest

import (
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// mknod: special files on the mount as on ext4: a FIFO from mkfifo(3)
// carries data through the kernel (the server never sees it), a device
// keeps its number, bind(2) makes a socket that accepts a connection,
// readdir shows each type, and the names go like any file's.
func mknod(t *testing.T, m mnt) {
	must(t, unix.Mkfifo(m.p("fifo"), 0o640))
	if st := lstat(t, m.p("fifo")); st.Mode != unix.S_IFIFO|0o640 || st.Rdev != 0 || st.Uid != uint32(os.Geteuid()) {
		t.Errorf("fifo: mode %o rdev %#x uid %d", st.Mode, st.Rdev, st.Uid)
	}
	fifoData(t, m.p("fifo"))

	devs := []struct {
		name string
		mode uint32
		rdev uint64
	}{
		{"null", unix.S_IFCHR | 0o666, unix.Mkdev(1, 3)},
		{"sda1", unix.S_IFBLK | 0o660, unix.Mkdev(8, 1)},
	}
	for _, d := range devs {
		must(t, unix.Mknod(m.p(d.name), d.mode, int(d.rdev)))
		if st := lstat(t, m.p(d.name)); st.Mode != d.mode || st.Rdev != d.rdev {
			t.Errorf("%s: mode %o rdev %#x, want %o %#x", d.name, st.Mode, st.Rdev, d.mode, d.rdev)
		}
	}

	l, err := net.Listen("unix", m.p("sock"))
	must(t, err)
	defer l.Close()
	if st := lstat(t, m.p("sock")); st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Errorf("bound socket: mode %o", st.Mode)
	}
	c, err := net.Dial("unix", m.p("sock"))
	if err != nil {
		t.Errorf("connect to the socket on the mount: %v", err)
	} else {
		c.Close()
	}

	types := map[string]byte{"fifo": unix.DT_FIFO, "null": unix.DT_CHR, "sda1": unix.DT_BLK, "sock": unix.DT_SOCK}
	for _, e := range getdents(t, m.dir) {
		if want, ok := types[e.name]; ok && e.typ != want {
			t.Errorf("readdir type of %s: %d, want %d", e.name, e.typ, want)
		}
		delete(types, e.name)
	}
	for name := range types {
		t.Errorf("readdir lacks %s", name)
	}

	must(t, unix.Rename(m.p("sda1"), m.p("d/sda1")))
	if st := lstat(t, m.p("d/sda1")); st.Rdev != unix.Mkdev(8, 1) {
		t.Errorf("renamed device: rdev %#x", st.Rdev)
	}
	for _, name := range []string{"fifo", "null", "d/sda1", "sock"} {
		must(t, unix.Unlink(m.p(name)))
	}
	if err := unix.Mknod(m.p("dir"), unix.S_IFDIR|0o755, 0); err != unix.EPERM {
		t.Errorf("mknod of a directory: %v, want EPERM", err)
	}
}

// fifoData opens the FIFO at p read-write without blocking, writes and
// reads back: the pipe is the kernel's.
func fifoData(t *testing.T, p string) {
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Errorf("open the fifo O_RDWR|O_NONBLOCK: %v", err)
		return
	}
	defer unix.Close(fd)
	if n, err := unix.Write(fd, []byte("through the pipe")); err != nil || n != 16 {
		t.Errorf("write to the fifo: %d, %v", n, err)
	}
	buf := make([]byte, 64)
	if n, err := unix.Read(fd, buf); err != nil || string(buf[:n]) != "through the pipe" {
		t.Errorf("read from the fifo: %q, %v", buf[:max(n, 0)], err)
	}
	if _, err := unix.Read(fd, buf); err != unix.EAGAIN {
		t.Errorf("read of an empty fifo: %v, want EAGAIN", err)
	}
}
