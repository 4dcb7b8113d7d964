package dashboards

import (
	"bytes"
	"encoding/json"
)

// The types below are the subset of Grafana's dashboard JSON model
// (schemaVersion 39) the Lighthouse dashboard uses. Field order is the
// output order, so the generated file is stable.

// Dashboard is a Grafana dashboard.
type Dashboard struct {
	Annotations          AnnotationList `json:"annotations"`
	Description          string         `json:"description,omitempty"`
	Editable             bool           `json:"editable"`
	FiscalYearStartMonth int            `json:"fiscalYearStartMonth"`
	GraphTooltip         int            `json:"graphTooltip"` // 1: shared crosshair
	ID                   *int           `json:"id"`           // null: Grafana assigns one on import
	Links                []Link         `json:"links"`
	Panels               []*Panel       `json:"panels"`
	Refresh              string         `json:"refresh,omitempty"`
	SchemaVersion        int            `json:"schemaVersion"`
	Tags                 []string       `json:"tags"`
	Templating           Templating     `json:"templating"`
	Time                 TimeRange      `json:"time"`
	Timepicker           struct{}       `json:"timepicker"`
	Timezone             string         `json:"timezone"`
	Title                string         `json:"title"`
	UID                  string         `json:"uid"`
	Version              int            `json:"version"`
	WeekStart            string         `json:"weekStart"`
}

// Link is a dashboard link (shown at the top).
type Link struct {
	Title       string `json:"title"`
	Type        string `json:"type"` // "link"
	URL         string `json:"url"`
	Tooltip     string `json:"tooltip,omitempty"`
	TargetBlank bool   `json:"targetBlank"`
	Icon        string `json:"icon,omitempty"`
}

// TimeRange is the default time range.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Datasource references a data source; UID may be a template variable.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// PromDatasource is what every Lighthouse panel, target and annotation
// uses: the data source chosen by the dashboard's datasource variable.
var PromDatasource = &Datasource{Type: "prometheus", UID: "${datasource}"}

// AnnotationList holds the dashboard's annotation queries.
type AnnotationList struct {
	List []*Annotation `json:"list"`
}

// Annotation is an annotation query: Grafana's built-in one, or a
// Prometheus expression whose non-empty steps mark the graphs.
type Annotation struct {
	BuiltIn         int         `json:"builtIn,omitempty"`
	Datasource      *Datasource `json:"datasource"`
	Enable          bool        `json:"enable"`
	Hide            bool        `json:"hide"`
	IconColor       string      `json:"iconColor"`
	Name            string      `json:"name"`
	Type            string      `json:"type,omitempty"`
	Expr            string      `json:"expr,omitempty"`
	Step            string      `json:"step,omitempty"`
	TitleFormat     string      `json:"titleFormat,omitempty"`
	TextFormat      string      `json:"textFormat,omitempty"`
	TagKeys         string      `json:"tagKeys,omitempty"`
	UseValueForTime bool        `json:"useValueForTime"`
}

// Templating holds the dashboard's variables.
type Templating struct {
	List []*Variable `json:"list"`
}

// Variable is a dashboard variable (here only the data source picker).
type Variable struct {
	Current    struct{} `json:"current"`
	Hide       int      `json:"hide"`
	IncludeAll bool     `json:"includeAll"`
	Label      string   `json:"label"`
	Multi      bool     `json:"multi"`
	Name       string   `json:"name"`
	Options    []any    `json:"options"`
	Query      string   `json:"query"`
	Refresh    int      `json:"refresh"`
	Regex      string   `json:"regex"`
	Type       string   `json:"type"`
}

// GridPos places a panel on the 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Panel is a row or a visualisation.
type Panel struct {
	Collapsed   *bool        `json:"collapsed,omitempty"` // rows only
	Datasource  *Datasource  `json:"datasource,omitempty"`
	Description string       `json:"description,omitempty"`
	FieldConfig *FieldConfig `json:"fieldConfig,omitempty"`
	GridPos     GridPos      `json:"gridPos"`
	ID          int          `json:"id"`
	Options     any          `json:"options,omitempty"`
	Panels      []*Panel     `json:"panels,omitempty"` // a collapsed row's panels
	Targets     []*Target    `json:"targets,omitempty"`
	Title       string       `json:"title"`
	Type        string       `json:"type"` // row, timeseries, stat, table, state-timeline
}

// Target is one query of a panel.
type Target struct {
	Datasource   *Datasource `json:"datasource"`
	EditorMode   string      `json:"editorMode"`
	Expr         string      `json:"expr"`
	Format       string      `json:"format,omitempty"` // time_series (default) or table
	Instant      bool        `json:"instant"`
	LegendFormat string      `json:"legendFormat,omitempty"`
	Range        bool        `json:"range"`
	RefID        string      `json:"refId"`
}

// FieldConfig is a panel's field defaults and per-series overrides.
type FieldConfig struct {
	Defaults  FieldDefaults `json:"defaults"`
	Overrides []Override    `json:"overrides"`
}

// FieldDefaults are the defaults applied to every field of a panel.
type FieldDefaults struct {
	Color      *FieldColor  `json:"color,omitempty"`
	Custom     *FieldCustom `json:"custom,omitempty"`
	Decimals   *int         `json:"decimals,omitempty"`
	Mappings   []any        `json:"mappings"`
	Max        *float64     `json:"max,omitempty"`
	Min        *float64     `json:"min,omitempty"`
	NoValue    string       `json:"noValue,omitempty"` // shown instead of "No data"
	Thresholds Thresholds   `json:"thresholds"`
	Unit       string       `json:"unit,omitempty"`
}

// FieldColor picks how series are coloured.
type FieldColor struct {
	Mode       string `json:"mode"` // palette-classic, thresholds, fixed
	FixedColor string `json:"fixedColor,omitempty"`
}

// FieldCustom holds the time series options of a field.
type FieldCustom struct {
	DrawStyle         string           `json:"drawStyle,omitempty"` // line, bars, points
	FillOpacity       int              `json:"fillOpacity"`
	LineInterpolation string           `json:"lineInterpolation,omitempty"`
	LineWidth         int              `json:"lineWidth,omitempty"`
	ShowPoints        string           `json:"showPoints,omitempty"`
	SpanNulls         bool             `json:"spanNulls"`
	Stacking          *Stacking        `json:"stacking,omitempty"`
	ScaleDistribution *ScaleDistrib    `json:"scaleDistribution,omitempty"`
	ThresholdsStyle   *ThresholdsStyle `json:"thresholdsStyle,omitempty"`
}

// Stacking stacks series.
type Stacking struct {
	Group string `json:"group"`
	Mode  string `json:"mode"` // none, normal
}

// ScaleDistrib is a linear or logarithmic axis.
type ScaleDistrib struct {
	Type string `json:"type"` // linear, log
	Log  int    `json:"log,omitempty"`
}

// ThresholdsStyle draws the thresholds on a time series panel.
type ThresholdsStyle struct {
	Mode string `json:"mode"` // off, line, dashed, area, line+area
}

// Thresholds are absolute threshold steps; the first step's value is null
// (minus infinity).
type Thresholds struct {
	Mode  string `json:"mode"`
	Steps []Step `json:"steps"`
}

// Step is one threshold step.
type Step struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

// Override changes the properties of the fields a matcher selects.
type Override struct {
	Matcher    Matcher    `json:"matcher"`
	Properties []Property `json:"properties"`
}

// Matcher selects fields, e.g. {"id": "byName", "options": "threshold"}.
type Matcher struct {
	ID      string `json:"id"`
	Options string `json:"options"`
}

// Property is one overridden field property.
type Property struct {
	ID    string `json:"id"`
	Value any    `json:"value"`
}

// Marshal renders d as indented JSON with a final newline: the format of
// the committed file.
func (d *Dashboard) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep PromQL's > and < readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
