// Package fusemount holds what the two FUSE adapters (primary/ on bazil,
// shadow/ on go-fuse) share without importing each other: the kernel cache
// options, the Mount function shape, the translation of store errors to
// errnos (Errno), and the housekeeping around a mount point (cleaning a
// stale mount, aborting a hung connection).
//
// # Same settings, same defaults
//
// The libraries' own defaults differ (bazil caches entries and attributes
// for a minute, go-fuse for a second). A default is not a finding, so both
// adapters take Options and apply every field explicitly.
package fusemount

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/store"
)

// Options are the kernel cache settings of a mount. The zero value is the
// harness default: nothing cached, so every operation reaches the library.
type Options struct {
	// EntryTimeout is how long the kernel may cache a name lookup.
	EntryTimeout time.Duration
	// AttrTimeout is how long the kernel may cache attributes.
	AttrTimeout time.Duration
	// NegativeTimeout is how long the kernel may cache "no such entry".
	// bazil cannot express it (it answers a missing name with ENOENT,
	// which the kernel never caches); see docs/compatibility.md.
	NegativeTimeout time.Duration
	// KeepCache keeps the page cache of a file across opens.
	KeepCache bool
	// DirectIO bypasses the page cache for file data (no mmap).
	DirectIO bool
	// FSName is the source shown in /proc/mounts; empty means "lighthouse".
	FSName string
	// Debug logs every FUSE request the library sees.
	Debug bool
	// OwnerOnly mounts without allow_other: only the mounting user's
	// processes may use the mount (root's too only when root mounted it;
	// the kernel answers everyone else EACCES). The default,
	// allow_other, lets every user's programs reach the filesystem, whose
	// default_permissions has the kernel check their access as on a disk.
	OwnerOnly bool
}

// AllowOther reports whether the mount is open to every user.
func (o Options) AllowOther() bool { return !o.OwnerOnly }

// Caches reports whether the kernel may keep names, attributes or file
// pages past the request that fetched them.
func (o Options) Caches() bool {
	return o.EntryTimeout > 0 || o.AttrTimeout > 0 || o.NegativeTimeout > 0 || o.KeepCache
}

// CheckAllowOther says what to do when a mount cannot be allow_other: a
// user other than root mounts through fusermount3, which refuses
// allow_other unless /etc/fuse.conf says user_allow_other. conf is the
// file to read (FuseConf in production).
func CheckAllowOther(o Options, euid int, conf string) error {
	if !o.AllowOther() || euid == 0 {
		return nil
	}
	b, err := os.ReadFile(conf)
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(line) == "user_allow_other" {
				return nil
			}
		}
	}
	return fmt.Errorf("uid %d cannot mount with allow_other: %s has no user_allow_other line (add it, as root: echo user_allow_other >> %s; or mount for this user only with --allow-other=false)", euid, conf, conf)
}

// FuseConf is fusermount3's configuration file.
const FuseConf = "/etc/fuse.conf"

// Name returns the mount's source name for /proc/mounts.
func (o Options) Name() string {
	if o.FSName == "" {
		return "lighthouse"
	}
	return o.FSName
}

// MountFunc is the shape primary.Mount and shadow.Mount share, so one
// conformance suite runs on both. It serves st on dir until unmount is
// called or the kernel ends the connection; done then receives the serve
// loop's result (nil after a clean unmount) and is closed.
type MountFunc func(dir string, st *store.Store, opts Options) (unmount func() error, done <-chan error, err error)

// Entry is one FUSE mount found in /proc/self/mountinfo.
type Entry struct {
	Dir    string
	Minor  int // the fusectl connection number
	FSType string
	Source string
}

// Mounts lists the FUSE mounts visible to this process.
func Mounts() ([]Entry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// 36 35 0:42 / /mnt/x rw,nosuid - fuse.lighthouse lighthouse rw,...
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+2 >= len(fields) || len(fields) < 5 {
			continue
		}
		fstype := fields[sep+1]
		if fstype != "fuse" && !strings.HasPrefix(fstype, "fuse.") {
			continue
		}
		_, minor, ok := strings.Cut(fields[2], ":")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(minor)
		if err != nil {
			continue
		}
		out = append(out, Entry{Dir: unescape(fields[4]), Minor: n, FSType: fstype, Source: fields[sep+2]})
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Find returns the FUSE mount at dir, if there is one.
func Find(dir string) (Entry, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Entry{}, false
	}
	ms, err := Mounts()
	if err != nil {
		return Entry{}, false
	}
	for i := len(ms) - 1; i >= 0; i-- { // the last mount on a path is the visible one
		if ms[i].Dir == abs {
			return ms[i], true
		}
	}
	return Entry{}, false
}

// ErrNotMounted is returned by Abort when dir carries no FUSE mount.
var ErrNotMounted = errors.New("no FUSE mount")

// Abort ends the FUSE connection behind dir through fusectl, so every
// request waiting on a hung server fails with ENOTCONN instead of hanging.
// It reads only /proc and /sys, never the mount itself.
func Abort(dir string) error {
	e, ok := Find(dir)
	if !ok {
		return fmt.Errorf("abort %s: %w", dir, ErrNotMounted)
	}
	if err := ensureFusectl(); err != nil {
		return fmt.Errorf("abort %s: %w", dir, err)
	}
	p := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", e.Minor)
	if err := os.WriteFile(p, []byte("1"), 0); err != nil {
		return fmt.Errorf("abort %s: %w", dir, err)
	}
	return nil
}

// ensureFusectl mounts the fuse control filesystem if it is missing.
func ensureFusectl() error {
	const ctl = "/sys/fs/fuse/connections"
	if ents, err := os.ReadDir(ctl); err == nil && len(ents) > 0 {
		return nil
	}
	if err := unix.Mount("fusectl", ctl, "fusectl", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount fusectl on %s: %w", ctl, err)
	}
	return nil
}

// Unmount detaches the FUSE mount at dir lazily: the mount disappears from
// the namespace at once, and the connection ends when the last user is
// gone. It works for a live mount and for a stale one whose server died.
func Unmount(dir string) error {
	err := unix.Unmount(dir, unix.MNT_DETACH)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EINVAL) { // not a mount point
		return nil
	}
	// Not root (EPERM, where root gets EINVAL): nothing to do if no FUSE
	// mount is left there, as after an unmount that raced with this one
	// (go-fuse's own, which ends the serve loop); fusermount3 would fail.
	if _, mounted := Find(dir); !mounted {
		return nil
	}
	// Not root: let the setuid helper do it.
	if out, ferr := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput(); ferr != nil {
		return fmt.Errorf("unmount %s: %v; fusermount3: %v: %s", dir, err, ferr, strings.TrimSpace(string(out)))
	}
	return nil
}

// CleanStale prepares dir for a new mount: a FUSE mount still on it (left by
// a crashed process, whose connection then answers ENOTCONN) is aborted and
// detached, and dir is created if missing. It never stats through a live
// mount, so it cannot hang on a dead server.
func CleanStale(dir string) error {
	for i := 0; i < 8; i++ { // mounts can be stacked
		if _, ok := Find(dir); !ok {
			break
		}
		_ = Abort(dir)
		if err := Unmount(dir); err != nil {
			return fmt.Errorf("clean stale mount: %w", err)
		}
	}
	if _, ok := Find(dir); ok {
		return fmt.Errorf("clean stale mount: %s is still mounted", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("clean stale mount: %w", err)
	}
	return nil
}
