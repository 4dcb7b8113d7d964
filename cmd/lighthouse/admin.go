package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/internal/contract"
	"github.com/lighthouse-fs/lighthouse/proxyserver"
	"github.com/lighthouse-fs/lighthouse/report"
	"github.com/lighthouse-fs/lighthouse/rollout"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

func adminFlag(cmd *cobra.Command, url *string) {
	cmd.Flags().StringVar(url, "admin", contract.URL(contract.AdminAddr), "the proxy's admin address")
}

func statusCmd() *cobra.Command {
	var url string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--admin URL] [--json]",
		Short: "Show the rollout phase, weight, trigger rates and mirror state of a running proxy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st proxyserver.AdminStatus
			if err := (proxyserver.AdminClient{URL: url}).Do(cmd.Context(), http.MethodGet, "/admin/status", nil, &st); err != nil {
				return err
			}
			if asJSON {
				return verdict.WriteJSON(os.Stdout, report.StatusJSON{Schema: report.SchemaStatus, Rollout: st.Rollout, Proxy: st.Proxy, AdminAuth: st.Auth})
			}
			report.WriteStatus(os.Stdout, st.Rollout, st.Proxy)
			if st.Auth == "none" {
				fmt.Fprintf(os.Stdout, "WARNING: the admin API at %s has no token: anyone who reaches it can promote or roll back (set %s on the proxy)\n", url, rollout.EnvAdminToken)
			}
			return nil
		},
	}
	adminFlag(cmd, &url)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON (schema lighthouse.status/v1, docs/json.md)")
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
			report.WriteStatus(os.Stdout, st, nil)
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
			report.WriteStatus(os.Stdout, st, nil)
			return nil
		},
	}
	adminFlag(cmd, &admin)
	cmd.Flags().StringVar(&reason, "reason", "", "why (logged and persisted)")
	return cmd
}
