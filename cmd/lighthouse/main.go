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
		Use:           "lighthouse",
		Short:         "Prove a FUSE library migration safe: serve one store through bazil and go-fuse and compare them",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(mountCmd(), compatCmd(), bridgeCmd(), validateCmd(), proxyCmd(), replayCmd(), upCmd())
	root.AddCommand(statusCmd(), promoteCmd(), rollbackCmd())
	root.AddCommand(reportCmd())
	root.AddCommand(benchCmd(), workloadCmd())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "lighthouse:", err)
		os.Exit(1)
	}
}
