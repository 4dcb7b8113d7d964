package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// What each mount really negotiated and how it answers, read from its
// library's own debug log while a probe runs fixed syscalls on it: the
// INIT reply, the validity on each reply type, the size of the requests a
// large write or read becomes, whether a listing uses READDIRPLUS, whether
// POLL reaches the library. Nothing here is taken from a constant.

// Settings is one library's negotiated settings.
type Settings struct {
	Protocol  string
	InitFlags []string // the INIT reply's flags, kernel names
	// Init is the rest of the INIT reply as logged (go-fuse only: bazil
	// logs no reply; its flags are read from the connection).
	Init  string
	Steps map[string]StepTraffic
}

// StepTraffic is what reached the library during one probe step.
type StepTraffic struct {
	Requests map[string]int // op -> count
	Sizes    map[string]int // op -> largest READ or WRITE, bytes
	Validity []string       // "entry=1m0s attr=0s" per reply of the step's own op
}

// probe steps, in order; each is preceded by a marker lookup.
var probeSteps = []struct {
	name string
	op   string // the op whose reply validity the step shows
	run  func(dir string) error
}{
	{"mkdir", "MKDIR", func(d string) error { return unix.Mkdir(filepath.Join(d, "d"), 0o755) }},
	{"stat after mkdir", "LOOKUP", statName("d")},
	{"create", "CREATE", func(d string) error { return writeN(filepath.Join(d, "f"), 0) }},
	{"stat after create", "LOOKUP", statName("f")},
	{"symlink", "SYMLINK", func(d string) error { return unix.Symlink("f", filepath.Join(d, "l")) }},
	{"stat after symlink", "LOOKUP", lstatName("l")},
	{"link", "LINK", func(d string) error { return unix.Link(filepath.Join(d, "f"), filepath.Join(d, "h")) }},
	{"stat after link", "LOOKUP", statName("h")},
	{"stat", "LOOKUP", statName("f")},
	{"stat again", "LOOKUP", statName("f")},
	{"chmod", "SETATTR", func(d string) error { return unix.Chmod(filepath.Join(d, "f"), 0o600) }},
	{"write 1 MiB in one write(2)", "", func(d string) error { return writeN(filepath.Join(d, "big"), 1<<20) }},
	{"read 1 MiB in one read(2)", "", func(d string) error { return readN(filepath.Join(d, "big"), 1<<20) }},
	{"ls -l of 20 files", "", listing},
	{"poll a file", "", pollFile},
}

func statName(n string) func(string) error {
	return func(d string) error { var st unix.Stat_t; return unix.Stat(filepath.Join(d, n), &st) }
}

func lstatName(n string) func(string) error {
	return func(d string) error { var st unix.Stat_t; return unix.Lstat(filepath.Join(d, n), &st) }
}

func writeN(p string, n int) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if n > 0 {
		_, err = unix.Write(fd, pattern(n))
	}
	return err
}

func readN(p string, n int) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.Read(fd, make([]byte, n))
	return err
}

// listing makes 20 files, then reads the directory and stats each entry,
// as ls -l does (the files are made before the step's marker).
func listing(d string) error {
	ents, err := os.ReadDir(filepath.Join(d, "many"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if _, err := e.Info(); err != nil {
			return err
		}
	}
	return nil
}

func pollFile(d string) error {
	fd, err := unix.Open(filepath.Join(d, "f"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
	return err
}

const markerPrefix = "lighthouse-probe-step-"

// Probe runs the probe steps in dir, the root of a fresh mount whose
// library logs every request (fusemount.Options.Debug), so that no path
// lookup but the step's own reaches the library. Parse its log afterwards
// with ParseSettings.
func Probe(dir string) error {
	many := filepath.Join(dir, "many")
	if err := os.Mkdir(many, 0o755); err != nil {
		return err
	}
	for i := 0; i < 20; i++ {
		if err := writeN(filepath.Join(many, fmt.Sprintf("f%02d", i)), 0); err != nil {
			return err
		}
	}
	for i, s := range probeSteps {
		marker(dir, i)
		if err := s.run(dir); err != nil {
			return fmt.Errorf("probe step %q: %w", s.name, err)
		}
	}
	marker(dir, len(probeSteps))
	return nil
}

// marker makes a LOOKUP of a name that does not exist: it shows in the
// log where step i begins.
func marker(dir string, i int) {
	var st unix.Stat_t
	_ = unix.Lstat(filepath.Join(dir, markerPrefix+strconv.Itoa(i)), &st)
}

// logLine is one request or reply in a library's debug log.
type logLine struct {
	id, op, text string
	reply        bool
}

var (
	goFuseRx   = regexp.MustCompile(`rx (\d+): (\w+) (.*)`)
	goFuseTx   = regexp.MustCompile(`tx (\d+):\s+(.*)`)
	bazilRx    = regexp.MustCompile(`<- (\w+) \[ID=(0x[0-9a-f]+)[^\]]*\] ?(.*)`)
	bazilTx    = regexp.MustCompile(`-> \[ID=(0x[0-9a-f]+)\] (.*)`)
	bazilInit  = regexp.MustCompile(`INIT negotiated protocol (\S+) flags (0x[0-9a-f]+)`)
	goFuseIni  = regexp.MustCompile(`OK, \{(\d+\.\d+) Ra (\d+) ([A-Z_,0-9]+) (.*)\}`)
	sizeRe     = regexp.MustCompile(`\+(\d+)\)|0x[0-9a-f]+ (\d+) @`)
	entryRe    = regexp.MustCompile(`tE=(\S+) tA=(\S+)|valid=(\S+) attr=\{valid=(\S+)`)
	errnoReply = regexp.MustCompile(`^\d+=`)
	attrRe     = regexp.MustCompile(`^OK, \{tA=(\S+)|^\w+ valid=(\S+)`)
)

func parseLines(log string) []logLine {
	var out []logLine
	for _, l := range strings.Split(log, "\n") {
		if m := goFuseRx.FindStringSubmatch(l); m != nil {
			out = append(out, logLine{id: m[1], op: m[2], text: m[3]})
		} else if m := goFuseTx.FindStringSubmatch(l); m != nil {
			out = append(out, logLine{id: m[1], text: m[2], reply: true})
		} else if m := bazilRx.FindStringSubmatch(l); m != nil {
			out = append(out, logLine{id: m[2], op: strings.ToUpper(m[1]), text: m[3]})
		} else if m := bazilTx.FindStringSubmatch(l); m != nil {
			out = append(out, logLine{id: m[1], text: m[2], reply: true})
		}
	}
	return out
}

// ParseSettings reads a library's debug log written while Probe ran.
func ParseSettings(log string) (Settings, error) {
	s := Settings{Steps: map[string]StepTraffic{}}
	if m := bazilInit.FindStringSubmatch(log); m != nil {
		flags, _ := strconv.ParseUint(m[2], 0, 32)
		s.Protocol, s.InitFlags = m[1], initFlagNames(flags)
	} else if m := goFuseIni.FindStringSubmatch(log); m != nil {
		s.Protocol, s.InitFlags = m[1], strings.Split(m[3], ",")
		s.Init = "max_readahead " + m[2] + ", " + m[4]
	} else {
		return s, fmt.Errorf("no INIT reply in the log")
	}
	lines := parseLines(log)
	ops := map[string]string{} // request id -> op
	step := -1
	for _, l := range lines {
		if l.op == "INTERRUPT" {
			// The kernel's answer to a signal reaching the thread that
			// waits for a reply (the Go runtime's preemption signal, more
			// often on a loaded machine), not traffic the step caused: it
			// would make the generated page differ from run to run.
			continue
		}
		if !l.reply {
			ops[l.id] = l.op
			if i := strings.Index(l.text, markerPrefix); i >= 0 && l.op == "LOOKUP" {
				rest := l.text[i+len(markerPrefix):]
				step, _ = strconv.Atoi(rest[:countDigits(rest)])
				ops[l.id] = "marker"
				continue
			}
		}
		if ops[l.id] == "marker" {
			continue
		}
		if step < 0 || step >= len(probeSteps) {
			continue
		}
		name := probeSteps[step].name
		st := s.Steps[name]
		if st.Requests == nil {
			st.Requests, st.Sizes = map[string]int{}, map[string]int{}
		}
		op := ops[l.id]
		if !l.reply {
			st.Requests[op]++
			if op == "READ" || op == "WRITE" {
				if m := sizeRe.FindStringSubmatch(l.text); m != nil {
					n, _ := strconv.Atoi(m[1] + m[2])
					st.Sizes[op] = max(st.Sizes[op], n)
				}
			}
		} else if op == probeSteps[step].op {
			st.Validity = append(st.Validity, validity(l.text))
		}
		s.Steps[name] = st
	}
	if len(s.Steps) == 0 {
		return s, fmt.Errorf("no probe markers in the log: was it written while Probe ran?")
	}
	return s, nil
}

func countDigits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// validity reads the entry and attribute validity off one reply.
func validity(text string) string {
	if strings.Contains(text, "error=") || errnoReply.MatchString(text) {
		return "error"
	}
	if m := entryRe.FindStringSubmatch(text); m != nil {
		return fmt.Sprintf("entry %s, attr %s", durationText(m[1]+m[3]), durationText(m[2]+m[4]))
	}
	if m := attrRe.FindStringSubmatch(text); m != nil {
		return "attr " + durationText(m[1]+m[2])
	}
	return "not logged"
}

// durationText prints go-fuse's "0s"/"1.5s" and bazil's "1m0s" alike.
func durationText(s string) string {
	if s == "0s" {
		return "0"
	}
	return s
}

// initFlagNames names the bits of an INIT flags word as the kernel does.
func initFlagNames(f uint64) []string {
	names := []string{"ASYNC_READ", "POSIX_LOCKS", "FILE_OPS", "ATOMIC_O_TRUNC", "EXPORT_SUPPORT", "BIG_WRITES",
		"DONT_MASK", "SPLICE_WRITE", "SPLICE_MOVE", "SPLICE_READ", "FLOCK_LOCKS", "IOCTL_DIR", "AUTO_INVAL_DATA",
		"READDIRPLUS", "READDIRPLUS_AUTO", "ASYNC_DIO", "WRITEBACK_CACHE", "NO_OPEN_SUPPORT", "PARALLEL_DIROPS",
		"HANDLE_KILLPRIV", "POSIX_ACL", "ABORT_ERROR", "MAX_PAGES", "CACHE_SYMLINKS", "NO_OPENDIR_SUPPORT",
		"EXPLICIT_INVAL_DATA", "MAP_ALIGNMENT", "SUBMOUNTS", "HANDLE_KILLPRIV_V2", "SETXATTR_EXT", "INIT_EXT", "INIT_RESERVED"}
	var out []string
	for i, n := range names {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}
