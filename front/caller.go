package front

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// self is the front's own user: its requests need no Caller.
var self = fsop.Caller{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}

// caller is the user a request was made by, for the op that carries it to
// the bridges (fsop.Op.Caller): the request's uid and gid, and the
// supplementary groups of the thread that made it, which FUSE does not
// send (read from /proc/PID/status; none if it has gone). nil for the
// front's own user, whose ops the bridges' executors make as before.
func caller(ctx context.Context) *fsop.Caller {
	if ctx.Value(kernelCheckedKey{}) != nil {
		return nil
	}
	c, ok := fuse.FromContext(ctx)
	if !ok || (c.Uid == self.UID && c.Gid == self.GID) {
		return nil
	}
	return &fsop.Caller{UID: c.Uid, GID: c.Gid, Groups: groupsOf(c.Pid)}
}

// groupsOf reads the Groups line of /proc/PID/status.
func groupsOf(pid uint32) []uint32 {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/status")
	if err != nil {
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("Groups:"))
		if !ok {
			continue
		}
		var out []uint32
		for _, f := range bytes.Fields(rest) {
			if g, err := strconv.ParseUint(string(f), 10, 32); err == nil {
				out = append(out, uint32(g))
			}
		}
		return out
	}
	return nil
}

type kernelCheckedKey struct{}

// kernelChecked marks ctx's request as one the kernel has checked against
// its caller and that creates nothing: its ops are made as the front's
// own user. SETATTR is such a request: with default_permissions the
// kernel applies chmod's, chown's and utimensat's rules (setattr_prepare)
// before sending it, and sends on its own the set-id bits' removal on a
// write or truncate and the times of utimensat(NULL) by a user with write
// permission, as a mode and as times that the caller could not set
// explicitly (the bridge's kernel would refuse them, EPERM).
func kernelChecked(ctx context.Context) context.Context {
	return context.WithValue(ctx, kernelCheckedKey{}, true)
}
