package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/internal/contract"
	"github.com/lighthouse-fs/lighthouse/proxyserver"
	"github.com/lighthouse-fs/lighthouse/report"
	"github.com/lighthouse-fs/lighthouse/rollout"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

func reportCmd() *cobra.Command {
	var (
		htmlPath, promURL, admin, window, title string
		since, step                             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "report --html FILE [--prometheus URL] [--since 15m] [--admin URL]",
		Short: "Write an HTML page with the divergence rate, per-backend latency and rollout charts, from Prometheus",
		Long: `Render the key series of a run as one self-contained HTML file (inline SVG,
no script, nothing fetched when it is opened): the divergence ratio over time
with the 0.1% rollback threshold, P50/P99 op latency per backend (bazil,
go-fuse) with the 1 s threshold, and the candidate's serving weight, rollbacks
marked on each. The series come from
the Prometheus server that scrapes the bridges and the proxy (its query_range
API, the last --since), with the same expressions as the Grafana dashboard
(dashboards/). With --admin, the proxy's current rollout status (phase, weight,
last decision) heads the page.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if htmlPath == "" {
				return verdict.Usage(errors.New("--html FILE is required"))
			}
			if since <= 0 {
				return verdict.Usage(errors.New("--since must be positive"))
			}
			if step <= 0 {
				step = max(time.Second, (since / 300).Round(time.Second))
			}
			to := time.Now().UTC()
			opts := report.Options{Title: title, From: to.Add(-since), To: to, Step: step, RateWindow: window}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			if admin != "" {
				st, err := rolloutStatus(ctx, admin)
				if err != nil {
					return err
				}
				opts.Status = st
			}
			r, err := report.Build(ctx, report.Prometheus{URL: promURL, Client: &http.Client{Timeout: 30 * time.Second}}, opts)
			if err != nil {
				return err
			}
			page, err := report.HTML(r)
			if err != nil {
				return err
			}
			if err := os.WriteFile(htmlPath, page, 0o644); err != nil {
				return err
			}
			for _, n := range r.Notes {
				fmt.Fprintln(os.Stderr, "report:", n)
			}
			fmt.Printf("wrote %s: %s to %s from %s\n", htmlPath, opts.From.Format(time.RFC3339), opts.To.Format(time.RFC3339), promURL)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&htmlPath, "html", "", "the HTML file to write")
	fl.StringVar(&promURL, "prometheus", contract.URL(contract.PrometheusAddr), "the Prometheus server that scrapes the bridges and the proxy")
	fl.DurationVar(&since, "since", 15*time.Minute, "how far back the charts go")
	fl.DurationVar(&step, "step", 0, "resolution of the series (default: --since/300, at least 1s)")
	fl.StringVar(&window, "rate-window", "1m", "rate window of the divergence ratio and the latency quantiles (a Prometheus duration; at least 4 scrape intervals)")
	fl.StringVar(&admin, "admin", "", "also show the rollout status of the proxy at this admin URL (e.g. "+contract.URL(contract.AdminAddr)+")")
	fl.StringVar(&title, "title", "", "page title")
	return cmd
}

// rolloutStatus reads the proxy's rollout state as report rows.
func rolloutStatus(ctx context.Context, url string) ([]report.KV, error) {
	var st rollout.AdminStatus
	if err := (proxyserver.AdminClient{URL: url}).Do(ctx, http.MethodGet, "/admin/status", nil, &st); err != nil {
		return nil, err
	}
	return report.RolloutRows(st.Rollout), nil
}
