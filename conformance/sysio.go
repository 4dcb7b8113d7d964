package conformance

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Families about file data outside read and write: fallocate, O_TMPFILE,
// SEEK_DATA/SEEK_HOLE, copy_file_range, O_DIRECT, shared mmap and requests
// larger than one FUSE request.

// fdStep runs fn on descriptor h.
func fdStep(call string, h int, fn func(fd int) (string, error)) Step {
	return step(call, func(e *Env) (string, error) {
		fd, err := e.fd(h)
		if err != nil {
			return "", err
		}
		return fn(fd)
	})
}

// fallocateCases: each fallocate mode on an 8 KiB file, then its size and
// content.
func fallocateCases() []Case {
	modes := []struct {
		name      string
		mode      uint32
		text      string
		off, size int64
	}{
		{"allocate-extend", 0, "0", 0, 16384},
		{"keep-size", unix.FALLOC_FL_KEEP_SIZE, "FALLOC_FL_KEEP_SIZE", 0, 16384},
		{"punch-hole", unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE, "FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE", 0, 4096},
		{"zero-range", unix.FALLOC_FL_ZERO_RANGE, "FALLOC_FL_ZERO_RANGE", 4096, 4096},
		{"collapse-range", unix.FALLOC_FL_COLLAPSE_RANGE, "FALLOC_FL_COLLAPSE_RANGE", 0, 4096},
		{"insert-range", unix.FALLOC_FL_INSERT_RANGE, "FALLOC_FL_INSERT_RANGE", 4096, 4096},
	}
	var cs []Case
	for _, m := range modes {
		cs = append(cs, Case{Name: "fallocate/" + m.name, Sys: []Step{
			writeStep("f", pattern(8192)), openStep(1, "f", unix.O_RDWR, "O_RDWR"),
			fdStep(fmt.Sprintf("fallocate(fd1, %s, %d, %d)", m.text, m.off, m.size), 1, func(fd int) (string, error) {
				return "", unix.Fallocate(fd, m.mode, m.off, m.size)
			}), closeStep(1), lstatStep("f"), contentStep("f")}})
	}
	return cs
}

// tmpfileCases: O_TMPFILE, and giving the file a name with linkat.
func tmpfileCases() []Case {
	return []Case{{Name: "tmpfile/o-tmpfile-linkat", Sys: []Step{
		openStep(1, ".", unix.O_TMPFILE|unix.O_RDWR, "O_TMPFILE|O_RDWR"),
		fdStep(`write(fd1, "tmp")`, 1, func(fd int) (string, error) { _, err := unix.Write(fd, []byte("tmp")); return "", err }),
		step(`linkat(fd1, "", AT_FDCWD, "t", AT_EMPTY_PATH)`, func(e *Env) (string, error) {
			fd, err := e.fd(1)
			if err != nil {
				return "", err
			}
			return "", unix.Linkat(fd, "", unix.AT_FDCWD, e.at("t"), unix.AT_EMPTY_PATH)
		}), closeStep(1), lstatStep("t"), contentStep("t")}}}
}

// seekCases: SEEK_DATA and SEEK_HOLE on a file with a hole in the middle.
func seekCases() []Case {
	seek := func(off int64, whence int, text string) Step {
		return fdStep(fmt.Sprintf("lseek(fd1, %d, %s)", off, text), 1, func(fd int) (string, error) {
			n, err := unix.Seek(fd, off, whence)
			return fmt.Sprint(n), err
		})
	}
	return []Case{{Name: "seek/data-hole", Sys: []Step{
		openStep(1, "f", unix.O_RDWR|unix.O_CREAT, "O_RDWR|O_CREAT"),
		fdStep(`pwrite(fd1, 4 KiB, 0); pwrite(fd1, 4 KiB, 1 MiB)`, 1, func(fd int) (string, error) {
			if _, err := unix.Pwrite(fd, pattern(4096), 0); err != nil {
				return "", err
			}
			_, err := unix.Pwrite(fd, pattern(4096), 1<<20)
			return "", err
		}),
		fdStep("fsync(fd1)", 1, func(fd int) (string, error) { return "", unix.Fsync(fd) }),
		seek(0, unix.SEEK_DATA, "SEEK_DATA"), seek(0, unix.SEEK_HOLE, "SEEK_HOLE"),
		seek(65536, unix.SEEK_DATA, "SEEK_DATA"), seek(1<<20+4096, unix.SEEK_DATA, "SEEK_DATA"),
		closeStep(1)}}}
}

// copyCases: copy_file_range between files and within one.
func copyCases() []Case {
	cfr := func(call string, from, to int, offFrom, offTo int64, n int) Step {
		return step(call, func(e *Env) (string, error) {
			a, err := e.fd(from)
			if err != nil {
				return "", err
			}
			b, err := e.fd(to)
			if err != nil {
				return "", err
			}
			in, out := offFrom, offTo // the kernel advances them: fresh for every target
			got, err := unix.CopyFileRange(a, &in, b, &out, n, 0)
			return fmt.Sprintf("n=%d", got), err
		})
	}
	return []Case{
		{Name: "copy/file-range", Sys: []Step{writeStep("a", pattern(100000)),
			openStep(1, "a", unix.O_RDONLY, "O_RDONLY"), openStep(2, "b", unix.O_WRONLY|unix.O_CREAT, "O_WRONLY|O_CREAT"),
			cfr("copy_file_range(fd1, 0, fd2, 0, 100000)", 1, 2, 0, 0, 100000), closeStep(1), closeStep(2), contentStep("b")}},
		{Name: "copy/file-range-overlap", Sys: []Step{writeStep("a", pattern(8192)),
			openStep(1, "a", unix.O_RDWR, "O_RDWR"),
			cfr("copy_file_range(fd1, 0, fd1, 100, 4096)", 1, 1, 0, 100, 4096), closeStep(1), contentStep("a")}},
	}
}

// alignedBuf returns n bytes aligned to a page, for O_DIRECT.
func alignedBuf(n int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, err
	}
	copy(b, pattern(n))
	return b, nil
}

// directCases: O_DIRECT I/O aligned to 4 KiB and unaligned.
func directCases() []Case {
	io := func(call string, write bool, off int64, skip, n int) Step {
		return fdStep(call, 1, func(fd int) (string, error) {
			buf, err := alignedBuf(8192)
			if err != nil {
				return "", err
			}
			defer unix.Munmap(buf)
			var got int
			if write {
				got, err = unix.Pwrite(fd, buf[skip:skip+n], off)
			} else {
				got, err = unix.Pread(fd, buf[skip:skip+n], off)
			}
			return fmt.Sprintf("n=%d", got), err
		})
	}
	return []Case{
		{Name: "odirect/aligned", Sys: []Step{openStep(1, "f", unix.O_RDWR|unix.O_CREAT|unix.O_DIRECT, "O_RDWR|O_CREAT|O_DIRECT"),
			io("pwrite(fd1, aligned 4096 bytes, 0)", true, 0, 0, 4096), io("pread(fd1, aligned 4096 bytes, 0)", false, 0, 0, 4096),
			closeStep(1), contentStep("f")}},
		{Name: "odirect/unaligned", Sys: []Step{openStep(1, "f", unix.O_RDWR|unix.O_CREAT|unix.O_DIRECT, "O_RDWR|O_CREAT|O_DIRECT"),
			io("pwrite(fd1, buf+1, 100, 1)", true, 1, 1, 100), io("pread(fd1, buf+1, 100, 0)", false, 0, 1, 100),
			closeStep(1), lstatStep("f")}},
	}
}

// mmapCases: a shared writable mapping, msync, and the data read back
// through another descriptor.
func mmapCases() []Case {
	var mapped []byte
	return []Case{{Name: "mmap/shared-write-msync", Sys: []Step{
		writeStep("f", make([]byte, 8192)), openStep(1, "f", unix.O_RDWR, "O_RDWR"),
		fdStep("p = mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_SHARED, fd1, 0)", 1, func(fd int) (string, error) {
			m, err := unix.Mmap(fd, 0, 8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err == nil {
				mapped = m
			}
			return "", err
		}),
		step(`memcpy(p+100, "mapped"); memcpy(p+5000, "page two")`, func(*Env) (string, error) {
			if mapped == nil {
				return "", unix.EFAULT
			}
			copy(mapped[100:], "mapped")
			copy(mapped[5000:], "page two")
			return "", nil
		}),
		do("msync(p, 8192, MS_SYNC)", func(*Env) error { return unix.Msync(mapped, unix.MS_SYNC) }),
		do("munmap(p, 8192)", func(*Env) error { m := mapped; mapped = nil; return unix.Munmap(m) }),
		closeStep(1),
		step(`pread("f", 6, 100); pread("f", 8, 5000)`, func(e *Env) (string, error) {
			fd, err := unix.Open(e.at("f"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return "", err
			}
			defer unix.Close(fd)
			a, b := make([]byte, 6), make([]byte, 8)
			if _, err := unix.Pread(fd, a, 100); err != nil {
				return "", err
			}
			_, err = unix.Pread(fd, b, 5000)
			return fmt.Sprintf("%q %q", a, b), err
		})}}}
}

// bigIOCases: one write and one read of 4 MiB, larger than any FUSE
// request (max_write, max_read); the kernel splits them.
func bigIOCases() []Case {
	const n = 4 << 20
	return []Case{{Name: "bigio/write-read-4mib", Sys: []Step{
		openStep(1, "f", unix.O_RDWR|unix.O_CREAT, "O_RDWR|O_CREAT"),
		fdStep("write(fd1, 4 MiB)", 1, func(fd int) (string, error) {
			got, err := unix.Write(fd, pattern(n))
			return fmt.Sprintf("n=%d", got), err
		}),
		fdStep("pread(fd1, 4 MiB + 1, 0)", 1, func(fd int) (string, error) {
			buf := make([]byte, n+1)
			got, err := unix.Pread(fd, buf, 0)
			if err != nil {
				return "", err
			}
			return describeBytes(buf[:got]), nil
		}),
		fdStep("pwrite(fd1, 3 MiB, 1 MiB - 1)", 1, func(fd int) (string, error) {
			got, err := unix.Pwrite(fd, pattern(3<<20), 1<<20-1)
			return fmt.Sprintf("n=%d", got), err
		}),
		closeStep(1), contentStep("f")}}}
}
