package conformance

import (
	"os/exec"
	"testing"
)

// TestHoldProcess stops a real process and continues it, as the interrupt
// family does with the server of a mount.
func TestHoldProcess(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	if !waitFor(holdWait, func() bool { return processState(pid) == "S" }) {
		t.Fatalf("sleep's state is %q, never S (asleep)", processState(pid))
	}
	release, err := HoldProcess(pid)()
	if err != nil {
		t.Fatal(err)
	}
	if st := processState(pid); st != "T" {
		t.Errorf("state %q while held, want T (stopped)", st)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(holdWait, func() bool { return processState(pid) == "S" }) {
		t.Errorf("state %q after release, want S", processState(pid))
	}
	if _, err := HoldProcess(1 << 30)(); err == nil {
		t.Error("holding a process that does not exist succeeded")
	}
}
