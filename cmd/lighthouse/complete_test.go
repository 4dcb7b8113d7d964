package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCompletion: the shell's completion request (cobra's hidden
// __complete command) answers the values of enumerated flags.
func TestCompletion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := lighthouseBin(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mount", "--backend", ""}, "bazil\ngofuse\n"},
		{[]string{"bridge", "--sync", ""}, "always\nbatch\nnone\n"},
		{[]string{"up", "--phase", ""}, "shadow\ncanary\nprogressive\nfull\n"},
		{[]string{"promote", "--phase", ""}, "shadow\ncanary\nprogressive\nfull\n"},
		{[]string{"replay", "f", "--pace", ""}, "fast\nrecorded\n"},
		{[]string{"up", "--aa", ""}, "bazil\ngofuse\n"},
	} {
		out, err := exec.Command(bin, append([]string{"__complete"}, tc.args...)...).Output()
		if err != nil || !strings.HasPrefix(string(out), tc.want) {
			t.Errorf("completion of %v: %v, got %q, want %q first", tc.args, err, out, tc.want)
		}
	}
}
