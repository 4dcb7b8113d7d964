package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/replay"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

func replayCmd() *cobra.Command {
	var f replay.Config
	cmd := &cobra.Command{
		Use:   "replay FILE [--primary URL --shadow URL] [--pace fast|recorded] [--dir DIR]",
		Short: "Replay a --record trace or a divergence log through the proxy's comparison and report what diverges",
		Long: `Replay FILE, JSON lines written by 'lighthouse proxy': --record lines (one op
each) and --divergence-log lines (one divergence each), through an in-process
proxy with the same comparison, read-back and allowlist as 'lighthouse proxy'.

Record lines are replayed in admission order (their seq), one op at a time, as
one stream. Each divergence line is replayed on its own, from the state the
bridges had when the replay started: its recent ops, then its op; the report
says whether the same class of divergence reproduces on that op.

Without --primary and --shadow, two fresh bridges are started as child
processes (bazil primary, gofuse shadow) on free ports, with their mounts and
stores under --dir (default: a temporary directory, removed afterwards), and
stopped at the end. With them, the shadow is first made equal to the primary
(a snapshot of the primary is installed on it) and, for divergence lines,
both are reset to that snapshot before each line: use scratch bridges.

--minimize shrinks each divergence line instead: delta debugging over its
recent ops (the op itself always last), each candidate replayed on the
bridges reset to their starting state, keeping those whose last op still
diverges with the same op kind and class. It prints the smallest sequence
and the line to append to conformance/traffic-cases.jsonl (then make
compat). Exit status 1 if a line does not reproduce at all.

--pace recorded keeps the time gaps between record lines (ops still run one
at a time); fast (the default) runs them back to back.

Exit status 1 if any divergence not in the allowlist occurred (a CI
compatibility job), 2 for a bad flag or a FILE that cannot be replayed, 4
when the bridges could not be started or reached; 0 otherwise.

` + verdict.Help(),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			f.Exe, f.Out = exe, os.Stdout
			return replay.Run(cmd.Context(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.PrimaryURL, "primary", "", "primary bridge URL (default: start a fresh bazil bridge)")
	fl.StringVar(&f.ShadowURL, "shadow", "", "shadow bridge URL (default: start a fresh gofuse bridge)")
	fl.StringVar(&f.Pace, "pace", "fast", "fast: ops back to back; recorded: keep the recorded gaps between record lines")
	fl.StringVar(&f.Dir, "dir", "", "working directory of the fresh bridges: mounts, stores, logs (default: a temporary directory)")
	fl.StringVar(&f.Allowlist, "allowlist", "", "known differences (YAML); default: the built-in compare/allowlist.yaml")
	fl.BoolVar(&f.Minimize, "minimize", false, "shrink each divergence line to the fewest ops that still diverge the same way, printed as a conformance case")
	fl.BoolVar(&f.JSON, "json", false, "print the summary as JSON (schema lighthouse.replay/v1, docs/json.md) instead of the table")
	fl.StringVar(&f.DivergenceLog, "divergence-log", "", "also write every divergence the replay finds (JSON lines) to this file")
	return cmd
}
