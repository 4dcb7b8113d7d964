package store

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test runs a writer in a child process (this test binary,
// re-executed), kills it with SIGKILL at a random moment, reopens the store
// and checks that the recovered tree is exactly the model after the
// acknowledged mutations, or after one more (the one in flight). Then the
// next round restarts the writer on the same directory.

const (
	envCrashDir    = "LIGHTHOUSE_CRASH_DIR"
	envCrashStart  = "LIGHTHOUSE_CRASH_START"
	envCrashPolicy = "LIGHTHOUSE_CRASH_POLICY"
	envCrashRounds = "LIGHTHOUSE_CRASH_ROUNDS"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envCrashDir); dir != "" {
		os.Exit(crashWriter(dir))
	}
	os.Exit(m.Run())
}

// mutation k of the workload: a pure function of k, applied to whatever the
// tree is. Errors (EEXIST, ENOENT...) are part of the workload.
func mutation(s *Store, k int) error {
	r := rand.New(rand.NewPCG(uint64(k), 42))
	name := func() string { return "n" + strconv.Itoa(r.IntN(24)) }
	lookup := func(n string) (uint64, bool) {
		a, err := s.Lookup(RootIno, n)
		return a.Ino, err == nil
	}
	switch r.IntN(12) {
	case 0, 1:
		_, err := s.Create(RootIno, name(), 0o644, 0, 0)
		return err
	case 2, 3, 4:
		if ino, ok := lookup(name()); ok {
			data := make([]byte, 1+r.IntN(20000))
			for i := range data {
				data[i] = byte(k + i)
			}
			_, err := s.WriteAt(ino, data, int64(r.IntN(100000)))
			return err
		}
	case 5:
		if ino, ok := lookup(name()); ok {
			_, err := s.Setattr(ino, SetAttr{Valid: SetSize | SetMode, Size: int64(r.IntN(50000)), Mode: uint32(0o600 + r.IntN(0o100))})
			return err
		}
	case 6:
		return s.Rename(RootIno, name(), RootIno, name(), 0)
	case 7:
		if ino, ok := lookup(name()); ok {
			_, err := s.Link(ino, RootIno, name())
			return err
		}
	case 8:
		return s.Unlink(RootIno, name())
	case 9:
		if ino, ok := lookup(name()); ok {
			return s.Setxattr(ino, "user.k", []byte(strconv.Itoa(k)), 0)
		}
	case 10:
		if _, ok := lookup("d"); !ok {
			_, err := s.Mkdir(RootIno, "d", 0o755, 0, 0)
			return err
		}
		return s.RestoreSubtree("d", subtreeOf(r, k))
	case 11:
		data := make([]byte, 1+r.IntN(40000))
		for i := range data {
			data[i] = byte(k*3 + i)
		}
		return writeFile(s, name(), data)
	}
	return nil
}

// writeFile does what a write_file through the mount does to the store,
// in a group as the bridge runs it: create the file or truncate it, then
// write it in pieces of the kernel's 8 KiB (here), each its own event.
func writeFile(s *Store, name string, data []byte) error {
	g := s.BeginGroup(name)
	a, err := s.Lookup(RootIno, name)
	switch {
	case err == nil && a.Mode&syscall.S_IFMT == syscall.S_IFREG:
		_, err = s.Setattr(a.Ino, SetAttr{Valid: SetSize})
	case err == nil:
		err = syscall.EISDIR
	default:
		a, err = s.Create(RootIno, name, 0o644, 0, 0)
	}
	for off := 0; err == nil && off < len(data); off += 8 << 10 {
		_, err = s.WriteAt(a.Ino, data[off:min(off+8<<10, len(data))], int64(off))
	}
	if eerr := g.End(); err == nil {
		err = eerr
	}
	return err
}

// subtreeOf makes a subtree snapshot from r: a few files of up to 12 KB
// (so that some go over the writer's subtreeRecordMax), maybe a
// subdirectory with a hard link.
func subtreeOf(r *rand.Rand, k int) []byte {
	m := OpenMemory(Options{})
	d, _ := m.Mkdir(RootIno, "d", 0o700+uint32(r.IntN(0o100)), 0, 0)
	var first uint64
	for i := range 1 + r.IntN(4) {
		f, _ := m.Create(d.Ino, "f"+strconv.Itoa(i), 0o644, 0, 0)
		m.WriteAt(f.Ino, bytes.Repeat([]byte{byte(k + i)}, 1+r.IntN(12000)), int64(r.IntN(100)))
		first = f.Ino
	}
	if r.IntN(2) == 0 {
		sub, _ := m.Mkdir(d.Ino, "sub", 0o755, 0, 0)
		m.Link(first, sub.Ino, "link")
		m.Setxattr(sub.Ino, "user.k", []byte(strconv.Itoa(k)), 0)
	}
	snap, err := m.SnapshotSubtree("d")
	if err != nil {
		panic(err)
	}
	return snap
}

// crashWriter is the child: apply mutations from START on, print each
// acknowledged index, until killed.
func crashWriter(dir string) int {
	start, _ := strconv.Atoi(os.Getenv(envCrashStart))
	subtreeRecordMax = 8 << 10 // larger subtree restores go through a whole-store snapshot
	s, err := Open(dir, Options{Sync: SyncPolicy(os.Getenv(envCrashPolicy)), CompactBytes: 256 << 10, Logf: func(string, ...any) {}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w := bufio.NewWriter(os.Stdout)
	for k := start; ; k++ {
		mutation(s, k)
		fmt.Fprintf(w, "%d\n", k)
		w.Flush() // the ack leaves the process only after the store returned
	}
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test in -short mode")
	}
	rounds := 24
	if v, err := strconv.Atoi(os.Getenv(envCrashRounds)); err == nil {
		rounds = v
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	policies := []SyncPolicy{SyncAlways, SyncBatch, SyncNone}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	m := OpenMemory(Options{}) // the model, kept at mutation next
	next := 0                  // first mutation the writer runs
	totalAcked, inFlightKept := 0, 0
	for round := 0; round < rounds; round++ {
		policy := policies[round%len(policies)]
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashStart+"="+strconv.Itoa(next), envCrashPolicy+"="+string(policy))
		cmd.Stderr = os.Stderr
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 1 + rng.IntN(400)
		sc := bufio.NewScanner(out)
		last := next - 1
		for sc.Scan() {
			last, _ = strconv.Atoi(strings.TrimSpace(sc.Text()))
			if last-next+1 >= killAfter {
				time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
				break
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() { // acks printed before the kill but not yet read
			last, _ = strconv.Atoi(strings.TrimSpace(sc.Text()))
		}
		cmd.Wait()
		acked := last + 1 // mutations [0, acked) were acknowledged
		totalAcked += acked - next

		s := mustOpen(t, dir, Options{Sync: policy, Logf: func(string, ...any) {}})
		got := dump(t, s)
		s.Close()
		for ; next < acked; next++ {
			mutation(m, next)
		}
		wantAcked, snap := dump(t, m), m.Snapshot()
		mutation(m, acked)
		switch wantInFlight := dump(t, m); got {
		case wantAcked:
			if err := m.Restore(snap); err != nil {
				t.Fatal(err)
			}
		case wantInFlight:
			next = acked + 1 // the in-flight mutation reached the log first
			inFlightKept++
		default:
			t.Fatalf("round %d (%s): recovered tree is neither the model after %d acknowledged mutations nor after %d\n got:\n%s\nwant:\n%s",
				round, policy, acked, acked+1, got, wantAcked)
		}
	}
	t.Logf("%d kill/restart rounds, %d acknowledged mutations, 0 lost; in-flight mutation kept in %d rounds", rounds, totalAcked, inFlightKept)
}
