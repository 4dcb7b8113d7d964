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
	Status    []KV        // the proxy's rollout status, if known
	Run       *RunSummary // a harness run's verdict and counts (up --html)
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
div.verdict { font-size: 16px; font-weight: 600; padding: 10px 14px; border-radius: 4px; margin: 0 0 14px; border: 1px solid; }
div.verdict.pass { background: #e6f4ea; border-color: #56a64b; color: #1e5b1e; }
div.verdict.fail { background: #fdecea; border-color: #d62728; color: #8b1a1a; }
div.verdict.inconclusive, div.verdict.none { background: #fff4e0; border-color: #e0a000; color: #6b4a00; }
div.verdict p { font-size: 13px; font-weight: normal; margin: 4px 0 0; }
table.divergences { border-collapse: collapse; font-size: 13px; }
table.divergences td, table.divergences th { padding: 2px 14px 2px 0; text-align: left; vertical-align: top; }
code { font-size: 12px; }
ul.entries { font-size: 13px; margin: 4px 0 12px; padding-left: 18px; }
svg.chart { display: block; max-width: 100%; height: auto; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="meta">{{utc .From}} to {{utc .To}} ({{span .From .To}}), from {{.Source}}; generated {{utc .Generated}}.</p>
{{- with .Run}}
<div class="verdict {{.VerdictClass}}" id="verdict">
{{- if .Judged}}{{.Verdict.Line}}{{else}}no verdict{{end}}
{{- if .VerdictNote}}<p>{{.VerdictNote}}</p>{{end}}
</div>
<table class="status" id="counts">
{{- range .Counts}}
<tr><td>{{.Key}}</td><td>{{.Value}}</td></tr>
{{- end}}
</table>
<section id="divergences">
<h2>Divergences by class</h2>
{{- if .Classes}}
<p class="note">Counted by the proxy; the first of each class with its line in {{.DivergenceLog}} (one JSON object a line: the op, both answers, the diff, the ops before it).</p>
<table class="divergences">
<tr><th>class</th><th>count</th><th>in the log</th><th></th></tr>
{{- range .Classes}}
<tr><td><a href="#{{.Anchor}}">{{.Class}}</a></td><td>{{.Count}}</td><td>{{.Logged}}</td><td>{{.Note}}</td></tr>
{{- end}}
</table>
{{- range .Classes}}
<h3 id="{{.Anchor}}">{{.Class}}</h3>
<ul class="entries">
{{- range .Entries}}
<li><code>{{.Ref}}</code> {{.Op}}: {{.Diff}}{{if .Fault}} (blames {{.Fault}}){{end}}{{if .Reason}} (allowed: {{.Reason}}){{end}}</li>
{{- else}}
<li>none in the log (it may have fallen behind: lighthouse_proxy_log_dropped_total)</li>
{{- end}}
</ul>
{{- end}}
{{- else}}
<p class="note">None.</p>
{{- end}}
</section>
{{- end}}
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
