package report

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

// ClassEntries are the divergences of one class and where the first of
// them are in the divergence log.
type ClassEntries struct {
	Class   string
	Count   int64      // what the proxy counted
	Logged  int        // the lines of this class in the log
	Entries []LogEntry // the first few
}

// Anchor is the id of the class's part of the page.
func (c ClassEntries) Anchor() string { return "class-" + c.Class }

// Note says how the class counts in the verdict.
func (c ClassEntries) Note() string {
	switch c.Class {
	case compare.ClassAllowed:
		return "allowlisted: not counted"
	case compare.ClassShadowError:
		return "only the mirror failed: counted in the verdict, not in the rollout's ratio"
	}
	return ""
}

// LogEntry is one divergence of the log.
type LogEntry struct {
	Ref    string // "PATH:LINE"
	Op     string
	Diff   string
	Fault  string // the backend the evidence blames, if it tells
	Reason string // the allowlist's, for an allowed one
}

// DivergenceClasses lists each class of byClass (the proxy's counts) with
// its first perClass entries in the divergence log at path, shown as
// shown (the path people read on the page): the log's lines whose time is
// not before since (an earlier run's lines, kept by --keep, are skipped;
// line numbers still count them). A missing log is no error: the proxy
// writes none without a divergence.
func DivergenceClasses(path, shown string, since time.Time, byClass map[string]int64, perClass int) ([]ClassEntries, error) {
	idx := map[string]*ClassEntries{}
	for c, n := range byClass {
		if n > 0 {
			idx[c] = &ClassEntries{Class: c, Count: n}
		}
	}
	err := scanLog(path, func(line int, d *proxy.Divergence) {
		if d.Time.Before(since) {
			return
		}
		ce := idx[d.Class]
		if ce == nil {
			ce = &ClassEntries{Class: d.Class}
			idx[d.Class] = ce
		}
		ce.Logged++
		if len(ce.Entries) < perClass {
			ce.Entries = append(ce.Entries, LogEntry{Ref: fmt.Sprintf("%s:%d", shown, line), Op: DescribeOp(&d.Op),
				Diff: ShortDiff(*d), Fault: d.Fault, Reason: d.Allowed})
		}
	})
	out := make([]ClassEntries, 0, len(idx))
	for _, ce := range idx {
		out = append(out, *ce)
	}
	slices.SortFunc(out, func(a, b ClassEntries) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(b.Logged, a.Logged), cmp.Compare(a.Class, b.Class))
	})
	return out, err
}

// scanLog calls f with each divergence of the log at path and its line
// number (from 1). Lines may be long (a divergence carries the ops before
// it), so they are read whole, one at a time.
func scanLog(path string, f func(line int, d *proxy.Divergence)) error {
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer fh.Close()
	r := bufio.NewReaderSize(fh, 64<<10)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 {
			var d proxy.Divergence
			if jerr := json.Unmarshal(b, &d); jerr == nil {
				f(line, &d)
			} else if err == nil { // a torn last line is a log being written
				return fmt.Errorf("%s:%d: %w", path, line, jerr)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
