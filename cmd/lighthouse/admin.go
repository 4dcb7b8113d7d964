package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/internal/contract"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/proxyserver"
	"github.com/lighthouse-fs/lighthouse/rollout"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

func adminFlag(cmd *cobra.Command, url *string) {
	cmd.Flags().StringVar(url, "admin", contract.URL(contract.AdminAddr), "the proxy's admin address")
}

// printStatus renders the rollout and mirror state as a table.
func printStatus(w io.Writer, st rollout.Status, px *proxy.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	s := st.State
	fmt.Fprintf(tw, "phase\t%s\n", s.Phase)
	fmt.Fprintf(tw, "candidate weight\t%.0f%%\n", 100*s.Weight)
	fmt.Fprintf(tw, "rolled back\t%v\n", s.RolledBack)
	fmt.Fprintf(tw, "divergence (window)\t%.3f%% of %d compared\t(threshold %.2f%%, cusum %.1f)\n", 100*st.Rates.Divergence, st.Rates.Compared, 100*st.Thresholds.Divergence, st.CUSUM[0])
	fmt.Fprintf(tw, "candidate errors (window)\t%.3f%% of %d ops\t(threshold %.2f%%, cusum %.1f)\n", 100*st.Rates.ErrorRate, st.Rates.CandidateOp, 100*st.Thresholds.ErrorRate, st.CUSUM[1])
	fmt.Fprintf(tw, "candidate ops over %v\t%.3f%%\t(P99 trigger at 1%%, cusum %.1f)\n", st.Thresholds.P99, 100*st.Rates.SlowRate, st.CUSUM[2])
	if d := s.Decision; d != nil {
		fmt.Fprintf(tw, "last decision\t%s %s\t%s -> %.0f%%: %s\n", d.Time.Format(time.RFC3339), d.Action, d.Trigger, 100*d.To, d.Reason)
	}
	if px != nil {
		fmt.Fprintf(tw, "ops / compared / divergent\t%d / %d / %d\n", px.Ops, px.Compared, px.Divergent)
		for _, b := range px.Bridges {
			state := "in step"
			if b.Stale {
				state = "STALE: " + b.StaleReason
			}
			fmt.Fprintf(tw, "bridge %s (%s)\t%s\tqueue %d, lag %.2fs\n", b.Backend, b.Role, state, b.QueueDepth, b.LagSeconds)
		}
	}
	tw.Flush()
}

func statusCmd() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "status [--admin URL]",
		Short: "Show the rollout phase, weight, trigger rates and mirror state of a running proxy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st proxyserver.AdminStatus
			if err := (proxyserver.AdminClient{URL: url}).Do(cmd.Context(), http.MethodGet, "/admin/status", nil, &st); err != nil {
				return err
			}
			printStatus(os.Stdout, st.Rollout, st.Proxy)
			return nil
		},
	}
	adminFlag(cmd, &url)
	return cmd
}

func promoteCmd() *cobra.Command {
	var url, phase, weight, reason string
	cmd := &cobra.Command{
		Use:   "promote --phase shadow|canary|progressive|full | --weight 0..1",
		Short: "Set the candidate's serving weight (an operator's decision; clears a rollback)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := rollout.PromoteRequest{Phase: phase, Reason: reason}
			if weight != "" {
				w, err := strconv.ParseFloat(weight, 64)
				if err != nil {
					return verdict.Usage(fmt.Errorf("--weight %q: %w", weight, err))
				}
				req.Weight = &w
			}
			var st rollout.Status
			if err := (proxyserver.AdminClient{URL: url}).Do(cmd.Context(), http.MethodPost, "/admin/promote", req, &st); err != nil {
				return err
			}
			printStatus(os.Stdout, st, nil)
			return nil
		},
	}
	adminFlag(cmd, &url)
	cmd.Flags().StringVar(&phase, "phase", "", "shadow, canary (10%), progressive (50%), full (100%)")
	cmd.Flags().StringVar(&weight, "weight", "", "candidate weight in [0, 1], e.g. 0.75")
	cmd.Flags().StringVar(&reason, "reason", "", "why (logged and persisted)")
	return cmd
}

func rollbackCmd() *cobra.Command {
	var admin, reason string
	cmd := &cobra.Command{
		Use:   "rollback [--reason TEXT]",
		Short: "Set the candidate's serving weight to 0 now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st rollout.Status
			path := "/admin/rollback?reason=" + url.QueryEscape(reason)
			if err := (proxyserver.AdminClient{URL: admin}).Do(cmd.Context(), http.MethodPost, path, nil, &st); err != nil {
				return err
			}
			printStatus(os.Stdout, st, nil)
			return nil
		},
	}
	adminFlag(cmd, &admin)
	cmd.Flags().StringVar(&reason, "reason", "", "why (logged and persisted)")
	return cmd
}
