package report

import (
	"bytes"
	"html/template"
	"time"
)

// KV is one row of the report's status table.
type KV struct {
	Key, Value string
}

// Section is a chart with its heading and a sentence on how to read it.
type Section struct {
	Heading string
	Note    string
	Chart   Chart
}

// Report is one HTML page.
type Report struct {
	Title     string
	Source    string // where the series came from (a Prometheus URL)
	From, To  time.Time
	Generated time.Time
	Status    []KV // the proxy's rollout status, if known
	Sections  []Section
	Notes     []string // warnings: queries that returned nothing, and the like
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"svg":  func(c Chart) template.HTML { return template.HTML(SVG(c)) }, // SVG escapes every text it embeds
	"utc":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"span": func(a, b time.Time) string { return b.Sub(a).Round(time.Second).String() },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px 32px; color: #222; background: #f7f7f7; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 0 0 2px; }
p.meta, p.note { color: #555; font-size: 13px; margin: 2px 0 10px; }
section, table.status { background: #fff; border: 1px solid #ddd; border-radius: 4px; padding: 12px 14px; margin: 0 0 18px; }
table.status { border-collapse: collapse; font-size: 13px; }
table.status td { padding: 2px 14px 2px 0; vertical-align: top; }
table.status td:first-child { color: #555; white-space: nowrap; }
ul.notes { color: #8a5300; font-size: 13px; }
svg.chart { display: block; max-width: 100%; height: auto; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="meta">{{utc .From}} to {{utc .To}} ({{span .From .To}}), from {{.Source}}; generated {{utc .Generated}}.</p>
{{- if .Status}}
<table class="status" id="rollout-status">
{{- range .Status}}
<tr><td>{{.Key}}</td><td>{{.Value}}</td></tr>
{{- end}}
</table>
{{- end}}
{{- if .Notes}}
<ul class="notes">
{{- range .Notes}}
<li>{{.}}</li>
{{- end}}
</ul>
{{- end}}
{{- range .Sections}}
<section>
<h2>{{.Heading}}</h2>
<p class="note">{{.Note}}</p>
{{svg .Chart}}
</section>
{{- end}}
</body>
</html>
`))

// HTML renders r as one self-contained page: inline CSS and SVG, no
// script, nothing fetched.
func HTML(r Report) ([]byte, error) {
	var b bytes.Buffer
	if err := page.Execute(&b, r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
