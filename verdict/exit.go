package verdict

import (
	"errors"
	"fmt"
	"strings"
)

// The exit statuses of the lighthouse command: one table, used by main,
// printed by --help (Help) and copied in the README.
const (
	ExitPass         = 0 // the run passed, or the command did what was asked
	ExitFail         = 1 // FAIL: divergences beyond the allowlist, client-visible errors, a failed check
	ExitUsage        = 2 // a bad flag, a missing or bad argument
	ExitInconclusive = 3 // INCONCLUSIVE: too few ops were compared to judge
	ExitInfra        = 4 // the harness failed: a bridge did not start, a port is taken, a child died, the mirror never drained
)

// Statuses describes each exit status, in order.
var Statuses = []struct {
	Code    int
	Meaning string
}{
	{ExitPass, "pass: no divergence beyond the allowlist (or the command did what was asked)"},
	{ExitFail, "FAIL: divergences beyond the allowlist, client-visible errors, a failed check"},
	{ExitUsage, "usage error: a bad flag, a missing or bad argument"},
	{ExitInconclusive, "INCONCLUSIVE: the share of ops compared is below --min-coverage"},
	{ExitInfra, "infrastructure failure: a bridge did not start, a port is taken, a child died, the mirror never drained"},
}

// Help renders Statuses for a command's --help.
func Help() string {
	var b strings.Builder
	b.WriteString("Exit status:\n")
	for _, s := range Statuses {
		fmt.Fprintf(&b, "  %d  %s\n", s.Code, s.Meaning)
	}
	return b.String()
}

// statusError is an error that decides the exit status.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// WithStatus makes err end the command with exit status code. A nil err
// stays nil; an error already marked keeps its status (a usage error found
// deep in a check stays a usage error).
func WithStatus(code int, err error) error {
	var se *statusError
	if err == nil || errors.As(err, &se) {
		return err
	}
	return &statusError{code: code, err: err}
}

// Usage marks err as a usage error (exit status 2).
func Usage(err error) error { return WithStatus(ExitUsage, err) }

// Failed marks err as a failed check (exit status 1).
func Failed(err error) error { return WithStatus(ExitFail, err) }

// Status is the exit status for the error a command returned: 0 for nil,
// the status an error was marked with, otherwise 4 (an error nobody
// judged is the harness failing, not the filesystem).
func Status(err error) int {
	if err == nil {
		return ExitPass
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.code
	}
	return ExitInfra
}
