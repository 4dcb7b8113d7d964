// Command lighthouse is the dual-FUSE shadow harness: one binary whose
// subcommands serve a store through bazil.org/fuse or go-fuse and compare
// the two. Subcommands only parse flags and wire packages together.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/bridge"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	bridge.RunExecutorIfChild() // a bridge's executor process never returns from here
	// A closed stdout or stderr (a log pipe whose reader went away) must not
	// kill a process that serves a mount before it unmounts: writes fail
	// with EPIPE instead of raising SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:   "lighthouse",
		Short: "Prove a FUSE library migration safe: serve one store through bazil and go-fuse and compare them",
		Long: "Prove a FUSE library migration safe: serve one store through bazil and go-fuse and compare them.\n\n" +
			verdict.Help(),
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(mountCmd(), compatCmd(), bridgeCmd(), validateCmd(), proxyCmd(), replayCmd(), upCmd())
	root.AddCommand(statusCmd(), promoteCmd(), rollbackCmd())
	root.AddCommand(reportCmd())
	root.AddCommand(benchCmd(), workloadCmd(), storeCmd())
	registerCompletions(root)
	ran := markUsageErrors(root)
	err := root.ExecuteContext(ctx)
	if err != nil && !*ran {
		err = verdict.Usage(err) // cobra refused the command line before any command ran
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lighthouse:", err)
	}
	stop()
	os.Exit(verdict.Status(err))
}

// markUsageErrors makes every command note when it starts running: an
// error returned before that (an unknown command or flag, a bad flag
// value, a wrong number of arguments) is a usage error, exit status 2.
func markUsageErrors(root *cobra.Command) *bool {
	ran := new(bool)
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				*ran = true
				return run(cmd, args)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return ran
}
