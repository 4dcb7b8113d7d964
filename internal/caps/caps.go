// Package caps reads this process's effective Linux capabilities, for
// tests that need a privilege root does not always have (in a container,
// root keeps only the capabilities it was given).
package caps

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// Capability numbers (linux/capability.h).
const (
	SysAdmin = 21
	SysNice  = 23
)

// Has reports whether capability c is in this process's effective set.
func Has(c int) bool {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			set, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
			return err == nil && set&(1<<c) != 0
		}
	}
	return false
}
