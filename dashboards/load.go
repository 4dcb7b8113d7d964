package dashboards

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
)

// JSON is the committed dashboard file (lighthouse-dual-fuse.json).
//
//go:embed lighthouse-dual-fuse.json
var JSON []byte

// Load parses a dashboard JSON file (the committed one, or one exported
// from Grafana after edits).
func Load(b []byte) (*Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("dashboard JSON: %w", err)
	}
	return &d, nil
}

// Query is one PromQL expression of a dashboard: a panel target or an
// annotation.
type Query struct {
	Panel      string // panel title, or "annotation: NAME"
	PanelType  string // timeseries, stat, table; "annotation"
	RefID      string
	Expr       string // as written, Grafana variables included
	Legend     string
	Instant    bool
	Annotation bool
}

// Queries lists every Prometheus expression of d: each target of each
// panel (rows' nested panels included), then each annotation query.
func Queries(d *Dashboard) []Query {
	var out []Query
	var walk func(ps []*Panel)
	walk = func(ps []*Panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				out = append(out, Query{Panel: p.Title, PanelType: p.Type, RefID: t.RefID, Expr: t.Expr, Legend: t.LegendFormat, Instant: t.Instant && !t.Range})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, Query{Panel: "annotation: " + a.Name, PanelType: "annotation", RefID: "Anno", Expr: a.Expr, Annotation: true})
		}
	}
	return out
}

// Expand replaces Grafana's built-in interval variables in expr
// ($__rate_interval, $__interval, $__range, with or without braces) by
// Prometheus durations, so the expression can run outside Grafana.
func Expand(expr, rateInterval, interval, rangeDur string) string {
	return strings.NewReplacer(
		"${__rate_interval}", rateInterval, "$__rate_interval", rateInterval,
		"${__interval}", interval, "$__interval", interval,
		"${__range}", rangeDur, "$__range", rangeDur,
	).Replace(expr)
}
