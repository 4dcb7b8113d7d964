package conformance

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// SettingsMarkdown renders the "Defaults and negotiated settings" section
// of docs/compatibility.md from two libraries' probed settings.
func SettingsMarkdown(a, b string, sa, sb Settings) string {
	var s strings.Builder
	s.WriteString("## Defaults and negotiated settings\n\n")
	s.WriteString("Read from each library's own debug log while a fixed probe ran on a mount made with the harness's settings " +
		"(`conformance.Probe`): the INIT reply (bazil logs none, so its flags are read from its connection after INIT), " +
		"the validity each reply carried, and the requests each step sent. Zero cache times are the harness's default " +
		"(`fusemount.Options`), so every operation reaches the library unless a library cannot express that.\n\n")
	fmt.Fprintf(&s, "| setting | %s | %s | what it means to an application |\n|---|---|---|---|\n", a, b)
	row := func(name, va, vb, meaning string) {
		fmt.Fprintf(&s, "| %s | %s | %s | %s |\n", name, va, vb, meaning)
	}
	row("FUSE protocol", sa.Protocol, sb.Protocol, "the minor version each library speaks; the kernel uses the lower of its own and the library's")
	onlyA, onlyB, both := splitFlags(sa.InitFlags, sb.InitFlags)
	row("INIT flags, both", strings.Join(both, " "), strings.Join(both, " "), "features both kernels were allowed to use")
	row("INIT flags, one only", orNone(onlyA), orNone(onlyB), "ASYNC_DIO: O_DIRECT reads and writes may be split and sent in parallel; "+
		"SETXATTR_EXT: setxattr carries the caller's flags; NO_OPEN_SUPPORT, PASSTHROUGH, INIT_EXT: offered only, unused while the adapter opens every file itself and registers no backing file")
	row("rest of the INIT reply", orNotLogged(sa.Init), orNotLogged(sb.Init), "max_readahead, max_background/congestion, max_write (Wr), max_pages (32 pages = 128 KiB when MAX_PAGES is off)")
	for _, st := range probeSteps {
		ta, tb := sa.Steps[st.name], sb.Steps[st.name]
		if st.op != "" {
			row(st.name+": "+st.op+" replies", validityText(ta.Validity), validityText(tb.Validity), stepMeaning(st.name))
			if st.op == "LOOKUP" {
				row(st.name+": requests", requestsText(ta), requestsText(tb), "a stat that sends no LOOKUP was answered from the kernel's cache")
			}
			continue
		}
		row(st.name, requestsText(ta), requestsText(tb), stepMeaning(st.name))
	}
	s.WriteString("\nWhat the adapters set the same way, and where they cannot: ")
	s.WriteString("max write is 128 KiB on both (bazil has no option for it; go-fuse is set to match, it could go to 1 MiB); " +
		"go-fuse's MAX_PAGES, READDIRPLUS and AUTO_INVAL_DATA are switched off because bazil never offers them (with them, go-fuse " +
		"takes names up to 4095 bytes, see names/create-1025, and lists a directory with its attributes in one request); " +
		"max_readahead is 128 KiB on both; both mount with default_permissions, so the kernel checks mode bits; " +
		"go-fuse's NullPermissions is set, so a mode without permission bits stays 0 as on bazil (attr/chmod-zero). " +
		"What bazil cannot express: the entry validity of MKDIR, SYMLINK and LINK replies (a fixed minute: " +
		"fs.NodeMkdirer, NodeSymlinker and NodeLinker have no response to set it on), the negative-entry timeout, " +
		"RENAME2, and POLL, which it answers with a default mask (go-fuse switches POLL off at mount time through its " +
		"reserved name, see reserved/go-fuse-epoll-hack).\n\n")
	return s.String()
}

func splitFlags(a, b []string) (onlyA, onlyB, both []string) {
	for _, f := range a {
		if slices.Contains(b, f) {
			both = append(both, f)
		} else {
			onlyA = append(onlyA, f)
		}
	}
	for _, f := range b {
		if !slices.Contains(a, f) {
			onlyB = append(onlyB, f)
		}
	}
	return onlyA, onlyB, both
}

func orNone(fs []string) string {
	if len(fs) == 0 {
		return "none"
	}
	return strings.Join(fs, " ")
}

func orNotLogged(s string) string {
	if s == "" {
		return "not logged"
	}
	return strings.ReplaceAll(s, "|", `\|`)
}

func validityText(vs []string) string {
	if len(vs) == 0 {
		return "no such reply"
	}
	vs = slices.Compact(slices.Clone(vs))
	return strings.Join(vs, "; ")
}

// requestsText lists the requests a step sent, with READ and WRITE sizes.
func requestsText(t StepTraffic) string {
	var ops []string
	for op := range t.Requests {
		if op != "GETATTR" && op != "FLUSH" && op != "RELEASE" && op != "OPEN" && op != "GETXATTR" {
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	var parts []string
	for _, op := range ops {
		p := fmt.Sprintf("%s×%d", op, t.Requests[op])
		if n := t.Sizes[op]; n > 0 {
			p += fmt.Sprintf(" (largest %d KiB)", n>>10)
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func stepMeaning(name string) string {
	switch name {
	case "mkdir", "create", "symlink", "link":
		return "how long the kernel may reuse the new entry and its attributes without asking"
	case "stat", "stat again":
		return "a lookup's own validity"
	case "chmod":
		return "how long the attributes a SETATTR returned are trusted"
	case "write 1 MiB in one write(2)":
		return "one write(2) becomes this many requests: fewer, larger requests cost fewer round trips"
	case "read 1 MiB in one read(2)":
		return "the same for reads, readahead included"
	case "ls -l of 20 files":
		return "READDIRPLUS returns the attributes with the names; without it each entry's stat is a LOOKUP"
	case "poll a file":
		return "whether poll(2) reaches the library or is answered by the kernel's default mask"
	}
	return ""
}
