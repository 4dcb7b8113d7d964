package front_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/fusemount"
)

type execFunc = func(context.Context, *fsop.Op) (fsop.Result, error)

// withDOff gives the entries of run's readdir results the d_off of mode
// (envDOff): "bazil", the byte offsets bazil.org/fuse gives; "none", 0;
// anything else leaves the store's (index+1).
func withDOff(run execFunc, mode string) execFunc {
	if mode != "bazil" && mode != "none" {
		return run
	}
	return func(ctx context.Context, op *fsop.Op) (fsop.Result, error) {
		res, err := run(ctx, op)
		if op.Kind == fsop.Readdir {
			names := make([]string, len(res.Entries))
			for i, e := range res.Entries {
				names[i] = e.Name
			}
			offs := bazilOffsets(names)
			for i := range res.Entries {
				res.Entries[i].Off = 0
				if mode == "bazil" {
					res.Entries[i].Off = offs[i]
				}
			}
		}
		return res, err
	}
}

// bazilOffsets are the d_off bazil.org/fuse gives a listing of names: the
// byte offset of the next record in its buffer (fuse.AppendDirent: a
// 24-byte header and the name, padded to 8).
func bazilOffsets(names []string) []uint64 {
	out := make([]uint64, len(names))
	var end uint64
	for i, n := range names {
		end += (24 + uint64(len(n)) + 7) &^ 7
		out[i] = end
	}
	return out
}

// TestDirOffsets: getdents through the front shows the serving bridge's
// d_off (the primary's byte offsets), or index+1 for a listing from a
// bridge that reports none; seeking to any entry's cookie, including
// backwards (where go-fuse asks Seekdir rather than replay its last
// READDIR) resumes right after that entry; a value between two cookies at
// the next entry; 0 at the start.
func TestDirOffsets(t *testing.T) {
	for _, mode := range []string{"bazil", "none"} {
		t.Run(mode, func(t *testing.T) {
			m := startFront(t, fusemount.Options{}, false, envDOff+"="+mode)
			m.guard(t, time.Minute, func() { checkDirOffsets(t, m.dir, mode) })
		})
	}
}

func checkDirOffsets(t *testing.T, root, mode string) {
	for i := range 10 {
		must(t, "create", os.WriteFile(filepath.Join(root, fmt.Sprintf("file-%d%s", i, strings.Repeat("x", i))), nil, 0o644))
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, "open", err)
	defer unix.Close(fd)
	all := readDir(t, fd)
	if len(all) != 12 {
		t.Fatalf("listing %v, want 12 entries", all)
	}
	names := make([]string, len(all))
	offs := make([]uint64, len(all))
	for i, d := range all {
		names[i], offs[i] = d.Name, d.Off
	}
	want := bazilOffsets(names)
	if mode == "none" {
		for i := range want {
			want[i] = uint64(i + 1)
		}
	}
	if !slices.Equal(offs, want) {
		t.Fatalf("d_off %v, want %v", offs, want)
	}
	for i := len(all) - 1; i >= 0; i-- {
		if got := readFrom(t, fd, int64(all[i].Off)); !slices.Equal(got, all[i+1:]) {
			t.Errorf("after seeking to %s's cookie %d: %v, want %v", all[i].Name, all[i].Off, got, all[i+1:])
		}
	}
	if mode == "bazil" {
		if got := readFrom(t, fd, int64(all[4].Off+3)); !slices.Equal(got, all[5:]) {
			t.Errorf("after seeking between cookies: %v, want %v", got, all[5:])
		}
	}
	if got := readFrom(t, fd, 0); !slices.Equal(got, all) {
		t.Errorf("after rewinding: %v, want %v", got, all)
	}
}

// readFrom seeks fd to off and reads it to the end.
func readFrom(t *testing.T, fd int, off int64) []fsop.Dirent {
	t.Helper()
	_, err := unix.Seek(fd, off, 0)
	must(t, "lseek", err)
	return readDir(t, fd)
}

// readDir reads fd to the end with getdents64: name and d_off per entry.
func readDir(t *testing.T, fd int) []fsop.Dirent {
	t.Helper()
	var out []fsop.Dirent
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		must(t, "getdents", err)
		if n == 0 {
			return out
		}
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			name, _, _ := strings.Cut(string(b[19:reclen]), "\x00")
			out = append(out, fsop.Dirent{Name: name, Off: binary.NativeEndian.Uint64(b[8:])})
			b = b[reclen:]
		}
	}
}
