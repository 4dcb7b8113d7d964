package conformance_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/lighthouse-fs/lighthouse/conformance"
	"github.com/lighthouse-fs/lighthouse/fsop"
)

// errnoExec answers every op with one errno.
type errnoExec string

func (e errnoExec) Exec(*fsop.Op) (fsop.Result, error) { return fsop.Result{Errno: string(e)}, nil }
func (errnoExec) Close() error                         { return nil }

func errnoTarget(name, errno, heldTo string) conformance.Target {
	return conformance.Target{Name: name, HeldTo: heldTo, NewCase: func(string) (conformance.Executor, error) { return errnoExec(errno), nil }}
}

// TestHeldTo: a target held to another (the front, held to bazil) is
// judged against that target, not the reference: it passes where it
// answers as its baseline does, however wrong, and fails where it does
// not; its expected differences and stale entries are counted the same way.
func TestHeldTo(t *testing.T) {
	cases, err := conformance.Select(conformance.Cases(), []string{"create/new-file", "unlink/missing"})
	if err != nil {
		t.Fatal(err)
	}
	ts := []conformance.Target{
		conformance.StoreTarget(conformance.Reference),
		errnoTarget("lib", "EIO", ""),
		errnoTarget("same", "EIO", "lib"),    // as wrong as lib: no difference
		errnoTarget("other", "EPERM", "lib"), // differs from lib everywhere
	}
	rep, err := conformance.Run(cases, ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rep.Unexpected(conformance.Expectations{}), []string{
		"create/new-file on lib", "create/new-file on other", "unlink/missing on lib", "unlink/missing on other"}; !slices.Equal(got, want) {
		t.Errorf("unexpected differences %q, want %q", got, want)
	}
	ex := conformance.Expectations{
		"create/new-file": {"lib": "r", "other": "r", "same": "r"},
		"unlink/missing":  {"lib": "r", "other": "r"},
	}
	if got := rep.Unexpected(ex); len(got) != 0 {
		t.Errorf("unexpected differences %q with every one listed", got)
	}
	if got, want := rep.Stale(ex), []string{"create/new-file on same"}; !slices.Equal(got, want) {
		t.Errorf("stale entries %q, want %q", got, want)
	}
	if got, want := rep.Summary(), "lib 0/2 same as reference, same 2/2 same as lib, other 0/2 same as lib"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	md := rep.Markdown("lib", "reference", ex)
	for _, want := range []string{"| same ≠ lib | other ≠ lib |", "## other vs lib", "other answers 0 of 2 cases exactly as lib", "same answers 2 of 2 cases exactly as lib. It differs nowhere."} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}
