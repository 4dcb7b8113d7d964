// Package dashboards generates Lighthouse's Grafana dashboard
// (lighthouse-dual-fuse.json, beside this file) from Go, and loads it back.
//
// The dashboard is built by Lighthouse() from the small typed model in
// builder.go and committed as JSON so that Grafana (UI import or file
// provisioning, deploy/grafana/) can use it without Go. The tests keep the
// two in step and check every query against the running system:
//
//   - TestCommittedJSON: the committed file is exactly what Lighthouse()
//     generates (regenerate with `go generate ./dashboards`, which runs the
//     test with -update);
//   - TestPromQLParses: every expression of the dashboard and of
//     deploy/prometheus/rules.yml passes `promtool check rules`;
//   - TestMetricNamesRegistered: every metric name those expressions use is
//     one the bridge, the proxy and the rollout controller register;
//   - TestPanelsEndToEnd: real bridges, the proxy and Prometheus, a workload,
//     and every panel query must return series.
//
// The expression helpers (DivergenceRatio, LatencyQuantile) are shared with
// `lighthouse report` (package report), so the HTML report and the
// dashboard plot the same numbers.
package dashboards

//go:generate go test -count=1 -run ^TestCommittedJSON$ -update .
