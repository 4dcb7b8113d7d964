// Package portowner says which process listens on a TCP port, from
// /proc/net/tcp{,6} and the processes' fds (what `ss -ltnp` shows), so a
// command that finds its port taken can name who took it.
package portowner

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Process is a listener's owner.
type Process struct {
	PID     int
	Command string // its command line, arguments joined by spaces
}

func (p Process) String() string { return fmt.Sprintf("pid %d (%s)", p.PID, p.Command) }

// Of returns the process listening on addr's port ("host:port"); false
// when it cannot tell (no /proc, a socket of another user's namespace,
// nobody listening).
func Of(addr string) (Process, bool) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Process{}, false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return Process{}, false
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		listeners(f, uint16(n), inodes)
	}
	if len(inodes) == 0 {
		return Process{}, false
	}
	return owner(inodes)
}

// listeners adds the inodes of the sockets listening on port in a
// /proc/net/tcp table.
func listeners(table string, port uint16, inodes map[string]bool) {
	fh, err := os.Open(table)
	if err != nil {
		return
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Scan() // the header
	want := fmt.Sprintf(":%04X", port)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) >= 10 && strings.HasSuffix(f[1], want) && f[3] == "0A" { // 0A: LISTEN
			inodes[f[9]] = true
		}
	}
}

// owner finds the process with an fd on one of the socket inodes.
func owner(inodes map[string]bool) (Process, bool) {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range procs {
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				pid, _ := strconv.Atoi(filepath.Base(dir))
				return Process{PID: pid, Command: command(dir)}, true
			}
		}
	}
	return Process{}, false
}

func command(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil || len(b) == 0 {
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		return strings.TrimSpace(string(comm))
	}
	s := strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
