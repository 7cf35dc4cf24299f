package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/server"
)

var reportT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec float64) *time.Time {
	t := reportT0.Add(time.Duration(sec * float64(time.Second)))
	return &t
}

// steeredFailover is a failover that waited for bob's approval, was paused
// by carol and resumed by dave, and completed within its RPO but past its
// RTO objective; one step was never run.
func steeredFailover(id, group string) ferry.Run {
	rpo, rto, lost := 2.5, 95.0, int64(0)
	return ferry.Run{
		ID: id, WorkflowID: "ferry-group-" + group, Kind: ferry.KindFailover, Group: group, Project: "retail",
		Site: "site-b", Mode: ferry.ModePlanned, State: ferry.RunCompleted, RequestedBy: "alice", StartedBy: "ci-token",
		Created: reportT0, Ended: at(95), RPOSeconds: &rpo, RTOSeconds: &rto, WritesLost: &lost,
		Steps: []ferry.Step{
			{Name: "precheck", State: ferry.StepCompleted, Started: at(0.5), Ended: at(2), Attempts: 1},
			{Name: "approval", State: ferry.StepCompleted, Started: at(2), Ended: at(30), Attempts: 1},
			{Name: "promote", State: ferry.StepCompleted, Started: at(30), Ended: at(60), Attempts: 2, Note: "retried once"},
			{Name: "boot_tier_web", State: ferry.StepFailed, Started: at(75), Ended: at(80), Attempts: 1, Error: "nova said no"},
			{Name: "dns", State: ferry.StepSkipped, Started: at(80), Ended: at(80), Attempts: 0, Note: "skipped by operator"},
			{Name: "after_promote:notify", State: ferry.StepPending, Note: "not run"},
		},
		Approvals: []ferry.Approval{{By: "ci-token (bob)", At: *at(30), Comment: "change 42"}},
		Events: []ferry.Event{
			{Action: "approve", By: "ci-token (bob)", At: *at(30), Comment: "change 42"},
			{Action: "pause", By: "carol", At: *at(61), Comment: "checking the array"},
			{Action: "resume", By: "dave", At: *at(74), Comment: "array fine"},
			{Action: "skip", By: "dave", At: *at(80), Step: "dns"},
		},
		Flags:      []string{"skipped:dns"},
		RunDetails: ferry.RunDetails{Touched: []string{"volume shop-db-data", "server shop-web-1"}},
	}
}

func drillRun(id, group string) ferry.Run {
	rto := 12.5
	return ferry.Run{
		ID: id, WorkflowID: "ferry-group-" + group, Kind: ferry.KindDrill, Group: group, Site: "site-b",
		State: ferry.RunCompleted, RequestedBy: "schedule", Created: reportT0, Ended: at(20), RTOSeconds: &rto,
		Steps: []ferry.Step{
			{Name: "precheck", State: ferry.StepCompleted, Started: at(0), Ended: at(1), Attempts: 1},
			{Name: "checks", State: ferry.StepCompleted, Started: at(10), Ended: at(12), Attempts: 1},
			{Name: "cleanup", State: ferry.StepCompleted, Started: at(12), Ended: at(19), Attempts: 1},
		},
		RunDetails: ferry.RunDetails{
			Checks: []ferry.CheckOutcome{
				{Name: "shop-home", Passed: true, Detail: "HTTP 200"},
				{Name: "shop-db-port", Passed: false, Detail: "connection refused"},
			},
			Touched: []string{"bubble drill-1", "clone shop-db-data@drill-1"},
		},
	}
}

// reportEnv is an API over a fresh database with groups shop (RPO 60 s,
// RTO 90 s) and crm (no RTO objective).
func reportEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, nil)
	e.seed("crm")
	g := group("shop")
	g.RTOSeconds = 90
	r := e.do("PUT", "/v1/groups/shop", mustJSON(t, g))
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	return e
}

func (e *env) store1(run ferry.Run) {
	e.t.Helper()
	require.NoError(e.t, e.store.FinishRun(context.Background(), run))
}

func (e *env) report(t *testing.T, id string, headers ...string) (server.Report, response) {
	t.Helper()
	r := e.do("GET", "/v1/runs/"+id+"/report", "", headers...)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var rep server.Report
	require.NoError(t, json.Unmarshal(r.body, &rep), "body: %s", r.body)
	return rep, r
}

func TestReportJSONDocument(t *testing.T) {
	e := reportEnv(t)
	e.store1(steeredFailover("run-f", "shop"))

	rep, r := e.report(t, "run-f")
	require.Equal(t, server.ReportVersion, rep.ReportVersion)
	require.Equal(t, "Ferry failover of group shop", rep.Title)
	require.Equal(t, "run-f", rep.ID)
	require.Equal(t, "ci-token", rep.StartedBy, "who started it")
	require.Equal(t, "alice", rep.RequestedBy)
	require.Equal(t, "retail", rep.Project)
	require.Equal(t, 95.0, rep.DurationSeconds)
	require.Equal(t, "Accept", r.header.Get("Vary"))

	// Objectives from the group: RPO 2.5 s within 60 s; RTO 95 s past 90 s.
	o := rep.Objectives
	require.Equal(t, 60, *o.RPO.ObjectiveSeconds)
	require.Equal(t, 2.5, *o.RPO.AchievedSeconds)
	require.True(t, *o.RPO.Met)
	require.Equal(t, 90, *o.RTO.ObjectiveSeconds)
	require.False(t, *o.RTO.Met)
	require.Contains(t, o.Source, "group shop")
	require.Equal(t, server.VerdictFailed, rep.Verdict)
	require.Equal(t, []string{"RTO 95.0 s exceeds the objective of 90 s"}, rep.VerdictReasons)

	// The timeline: offsets from the run's creation, every step in order.
	require.Len(t, rep.Timeline, 6)
	promote := rep.Timeline[2]
	require.Equal(t, "promote", promote.Step)
	require.Equal(t, 30.0, *promote.StartOffsetSeconds)
	require.Equal(t, 60.0, *promote.EndOffsetSeconds)
	require.Equal(t, 30.0, *promote.DurationSeconds)
	require.Equal(t, 2, promote.Attempts)
	require.Equal(t, 0.5, *rep.Timeline[0].StartOffsetSeconds)
	notRun := rep.Timeline[5]
	require.Nil(t, notRun.StartOffsetSeconds, "a step never started has no offset")
	require.Equal(t, ferry.StepPending, notRun.State)

	require.Equal(t, []server.ReportApproval{{By: "ci-token (bob)", At: *at(30), OffsetSeconds: 30, Comment: "change 42"}}, rep.Approvals)
	require.Len(t, rep.Pauses, 1)
	p := rep.Pauses[0]
	require.Equal(t, "carol", p.By)
	require.Equal(t, 61.0, p.FromOffsetSeconds)
	require.Equal(t, 74.0, p.ToOffsetSeconds)
	require.Equal(t, "resume", p.EndedWith)
	require.Equal(t, "dave", p.EndedBy)
	require.Len(t, rep.Events, 4)
	require.Equal(t, "skip", rep.Events[3].Action)
	require.Equal(t, 80.0, rep.Events[3].OffsetSeconds)
	require.Equal(t, []string{"volume shop-db-data", "server shop-web-1"}, rep.Touched)

	// A stable shape: every list is present, even when empty.
	var raw map[string]any
	require.NoError(t, json.Unmarshal(r.body, &raw))
	for _, k := range []string{"timeline", "approvals", "pauses", "events", "checks", "touched", "children", "flags", "verdict_reasons"} {
		require.IsType(t, []any{}, raw[k], "%s must be a list", k)
	}

	// A group without an RTO objective: nothing to miss. A group that is
	// gone: no objectives, and the report says so.
	e.store1(steeredFailover("run-c", "crm"))
	rep, _ = e.report(t, "run-c")
	require.Nil(t, rep.Objectives.RTO.ObjectiveSeconds)
	require.Nil(t, rep.Objectives.RTO.Met)
	require.Equal(t, server.VerdictPassed, rep.Verdict, "%v", rep.VerdictReasons)
	bad := group("crm")
	bad.RTOSeconds = -5
	requireProblem(t, e.do("PUT", "/v1/groups/crm", mustJSON(t, bad)), http.StatusUnprocessableEntity, "rto_seconds")
	e.store1(steeredFailover("run-g", "gone"))
	rep, _ = e.report(t, "run-g")
	require.Contains(t, rep.Objectives.Source, "no longer exists")
	require.Nil(t, rep.Objectives.RPO.Met)
}

func TestReportFormatNegotiation(t *testing.T) {
	e := reportEnv(t)
	e.store1(steeredFailover("run-f", "shop"))
	path := "/v1/runs/run-f/report"

	for _, c := range []struct {
		name, query string
		headers     []string
		want        string
	}{
		{"no Accept", "", nil, "application/json"},
		{"any", "", []string{"Accept", "*/*"}, "application/json"},
		{"json", "", []string{"Accept", "application/json"}, "application/json"},
		{"markdown", "", []string{"Accept", "text/markdown"}, "text/markdown; charset=utf-8"},
		{"html", "", []string{"Accept", "text/html"}, "text/html; charset=utf-8"},
		{"browser", "", []string{"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, "text/html; charset=utf-8"},
		{"by q", "", []string{"Accept", "text/html;q=0.4, text/markdown;q=0.9"}, "text/markdown; charset=utf-8"},
		{"query json", "?format=json", []string{"Accept", "text/html"}, "application/json"},
		{"query wins", "?format=html", []string{"Accept", "application/json"}, "text/html; charset=utf-8"},
		{"query markdown", "?format=markdown", nil, "text/markdown; charset=utf-8"},
		{"query md", "?format=md", nil, "text/markdown; charset=utf-8"},
		{"query case", "?format=HTML", nil, "text/html; charset=utf-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("GET", path+c.query, "", c.headers...)
			require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
			require.Equal(t, c.want, r.header.Get("Content-Type"))
		})
	}

	p := requireProblem(t, e.do("GET", path+"?format=pdf", ""), http.StatusBadRequest, "format")
	require.Contains(t, p["detail"], `"pdf"`)
	requireProblem(t, e.do("GET", path+"?format=", "", "Accept", "text/html"), http.StatusBadRequest, "format")
	p = requireProblem(t, e.do("GET", path, "", "Accept", "image/png"), http.StatusNotAcceptable, "")
	require.Contains(t, p["detail"], "format=json|markdown|html")
	// The format is checked first; a missing run is still a 404.
	requireProblem(t, e.do("GET", "/v1/runs/nope/report?format=html", ""), http.StatusNotFound, "")
}

func TestReportMarkdown(t *testing.T) {
	e := reportEnv(t)
	e.store1(steeredFailover("run-f", "shop"))
	r := e.do("GET", "/v1/runs/run-f/report?format=markdown", "")
	md := string(r.body)
	for _, want := range []string{
		"# Ferry failover of group shop: completed",
		"| Verdict | failed |",
		"| Started by (token) | ci-token |",
		"| Duration | 1m35s |",
		"## Verdict: failed\n\n- RTO 95.0 s exceeds the objective of 90 s",
		"| RPO (data-loss window) | 60 s | 2.5 s | yes |",
		"| RTO (start to verified service) | 90 s | 95.0 s | NO |",
		"- ci-token (bob) at 2025-03-01T12:00:30Z: change 42",
		"| promote | completed | 2025-03-01T12:00:30Z | 30s | 2 | retried once |",
		"| boot_tier_web | failed | 2025-03-01T12:01:15Z | 5s | 1 | nova said no |",
		"| carol | 2025-03-01T12:01:01Z | 2025-03-01T12:01:14Z | 13s | resumed by dave |",
		"- 2025-03-01T12:01:20Z: skip by dave (step dns)",
		"- volume shop-db-data",
	} {
		require.Contains(t, md, want)
	}
}

func TestDrillReportHasEveryCheckInEveryFormat(t *testing.T) {
	e := reportEnv(t)
	e.store1(drillRun("run-d", "shop"))

	rep, _ := e.report(t, "run-d")
	require.Equal(t, []server.ReportCheck{
		{Name: "shop-home", Passed: true, Result: "passed", Detail: "HTTP 200"},
		{Name: "shop-db-port", Passed: false, Result: "failed", Detail: "connection refused"},
	}, rep.Checks)
	require.Equal(t, server.VerdictFailed, rep.Verdict)
	require.Equal(t, []string{"check shop-db-port failed; connection refused"}, rep.VerdictReasons)
	require.True(t, *rep.Objectives.RTO.Met, "12.5 s within 90 s")

	md := string(e.do("GET", "/v1/runs/run-d/report", "", "Accept", "text/markdown").body)
	require.Contains(t, md, "## Checks\n\n| Check | Result | Detail |\n|---|---|---|\n| shop-home | passed | HTTP 200 |\n| shop-db-port | FAILED | connection refused |")
	require.Contains(t, md, "- clone shop-db-data@drill-1")

	page := e.do("GET", "/v1/runs/run-d/report", "", "Accept", "text/html").body
	doc := parseHTML(t, page)
	rows := tableRows(find(doc, "section", "id", "checks"))
	require.Equal(t, [][]string{
		{"Check", "Result", "Detail"},
		{"shop-home", "passed", "HTTP 200"},
		{"shop-db-port", "failed", "connection refused"},
	}, rows)
	require.Equal(t, "Verdict: failed", text(find(doc, "span", "id", "verdict")))
	require.Contains(t, text(find(doc, "section", "id", "touched")), "bubble drill-1")
}

func TestHTMLReportTimeline(t *testing.T) {
	e := reportEnv(t)
	run := steeredFailover("run-f", "shop")
	e.store1(run)
	page := e.do("GET", "/v1/runs/run-f/report?format=html", "").body
	doc := parseHTML(t, page)

	// Printable: the title, group, project, who started it, when, verdict.
	require.Equal(t, "Ferry failover of group shop", text(find(doc, "h1")))
	summary := map[string]string{}
	for _, row := range tableRows(find(doc, "table", "class", "summary")) {
		summary[row[0]] = row[1]
	}
	require.Equal(t, "shop", summary["Group"])
	require.Equal(t, "retail", summary["Project"])
	require.Equal(t, "ci-token", summary["Started by (token)"])
	require.Equal(t, "alice", summary["Requested by"])
	require.Equal(t, "2025-03-01T12:00:00Z", summary["Created"])
	require.Equal(t, "Verdict: failed", text(find(doc, "span", "id", "verdict")))
	require.Equal(t, [][]string{
		{"Approved by", "At", "Offset", "Comment"},
		{"ci-token (bob)", "2025-03-01T12:00:30Z", "+30s", "change 42"},
	}, tableRows(find(doc, "section", "id", "approvals")))
	require.Contains(t, text(find(doc, "section", "id", "pauses")), "resumed by dave")
	require.Contains(t, text(find(doc, "section", "id", "objectives")), "90 s")

	svg := parseSVG(t, page)
	bars := svg.bars()
	require.Len(t, bars, len(run.Steps), "one bar per step")
	for i, st := range run.Steps {
		require.Equal(t, st.Name, bars[i].attr("data-step"))
		require.Equal(t, st.State, bars[i].attr("data-state"))
		require.NotEmpty(t, bars[i].attr("fill"))
	}
	require.NotEqual(t, bars[2].attr("fill"), bars[3].attr("fill"), "completed and failed differ in colour")
	// promote runs from +30s to +60s of 95 s: its bar starts further right
	// than precheck's and is wider than the failed boot's.
	require.Greater(t, bars[2].num(t, "x"), bars[0].num(t, "x"))
	require.Greater(t, bars[2].num(t, "width"), bars[3].num(t, "width"))
	require.Len(t, svg.byClass("pause"), 1, "carol's pause is marked")
	require.Len(t, svg.byClass("approval"), 1, "bob's approval is marked")
	require.Contains(t, svg.byClass("approval")[0].Title, "approved by ci-token (bob)")
	require.Len(t, svg.byClass("event"), 1, "the skip is marked")
	require.GreaterOrEqual(t, len(svg.byClass("tick")), 3, "a time axis")
}

func TestHTMLReportEscapesHostileText(t *testing.T) {
	e := reportEnv(t)
	run := steeredFailover("run-x", "shop")
	hostileName := `<script>alert("step")</script>]]><!--`
	hostileErr := `"><img src=x onerror=alert(1)><a href="https://evil.example/">x</a>` + "\x01\x7f"
	run.Steps[3].Name = hostileName
	run.Steps[3].Error = hostileErr
	run.Steps[3].Output = "</pre><script>alert('out')</script>"
	run.Approvals[0].By = `</title><script>alert('by')</script>`
	run.Events[1].Comment = `<style>body{background:url(https://evil.example/x)}</style>`
	run.Touched = append(run.Touched, `<iframe src="https://evil.example/"></iframe>`)
	run.Message = "rolled back & <b>bold</b>"
	e.store1(run)

	page := e.do("GET", "/v1/runs/run-x/report?format=html", "").body
	doc := parseHTML(t, page)
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "script", "img", "iframe", "a", "b":
			t.Errorf("hostile text became a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") || a.Key == "src" || a.Key == "href" {
				t.Errorf("hostile text became attribute %s=%q on <%s>", a.Key, a.Val, n.Data)
			}
		}
	})
	require.Len(t, findAll(doc, "style"), 1, "only the page's own style")
	require.NotContains(t, text(findAll(doc, "style")[0]), "evil")
	// The hostile strings are there, as text.
	require.Contains(t, text(find(doc, "section", "id", "steps")), hostileName)
	require.Contains(t, text(find(doc, "section", "id", "steps")), `"><img src=x onerror=alert(1)>`)
	require.Contains(t, text(find(doc, "section", "id", "approvals")), `</title><script>alert('by')</script>`)

	svg := parseSVG(t, page)
	bars := svg.bars()
	require.Len(t, bars, len(run.Steps))
	require.Equal(t, hostileName, bars[3].attr("data-step"), "the name survives, escaped, in the SVG")

	md := string(e.do("GET", "/v1/runs/run-x/report?format=markdown", "").body)
	require.Contains(t, md, `| &lt;script&gt;alert("step")&lt;/script&gt;]]&gt;&lt;!-- | failed |`, "Markdown keeps the row on one line, its HTML as text")
	require.NotContains(t, md, "<img", "no raw HTML for a renderer that passes it through")
}

func TestHTMLReportLoadsNothing(t *testing.T) {
	e := reportEnv(t)
	e.store1(steeredFailover("run-f", "shop"))
	e.store1(drillRun("run-d", "shop"))
	for _, id := range []string{"run-f", "run-d"} {
		r := e.do("GET", "/v1/runs/"+id+"/report", "", "Accept", "text/html")
		require.Equal(t, http.StatusOK, r.status)
		require.Contains(t, r.header.Get("Content-Security-Policy"), "default-src 'none'")
		// No URL at all: nothing to fetch, nothing to follow, even the SVG
		// namespace is left implicit (HTML5 inline SVG needs none).
		require.NotRegexp(t, regexp.MustCompile(`(?i)(https?:|//[a-z0-9]|url\(|@import|<script|<link|<img|<iframe|<object|<embed|\bsrc=|\bhref=)`), string(r.body))
	}
}

// HTML helpers.

func parseHTML(t *testing.T, page []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	require.NoError(t, err)
	return doc
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func findAll(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	walk(n, func(c *html.Node) {
		if c.Type == html.ElementNode && c.Data == tag {
			out = append(out, c)
		}
	})
	return out
}

// find returns the first element tag, with attribute key = val when key is
// given; a missing one is nil, and text(nil) is "".
func find(n *html.Node, tag string, kv ...string) *html.Node {
	for _, c := range findAll(n, tag) {
		if len(kv) < 2 || kv[0] == "" || attr(c, kv[0]) == kv[1] {
			return c
		}
	}
	return nil
}

func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return strings.Join(strings.Fields(b.String()), " ")
}

func tableRows(n *html.Node) [][]string {
	var rows [][]string
	if n == nil {
		return nil
	}
	for _, tr := range findAll(n, "tr") {
		var row []string
		for c := tr.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") {
				row = append(row, text(c))
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// SVG helpers: the timeline is cut out of the page and parsed as XML, so
// it must be well-formed on its own.

type svgNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Title   string     `xml:"title"`
	Nodes   []svgNode  `xml:",any"`
}

func (n svgNode) attr(key string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == key {
			return a.Value
		}
	}
	return ""
}

func (n svgNode) num(t *testing.T, key string) float64 {
	t.Helper()
	var v float64
	require.NoError(t, json.Unmarshal([]byte(n.attr(key)), &v), "%s=%q", key, n.attr(key))
	return v
}

func (n svgNode) all(fn func(svgNode) bool) []svgNode {
	var out []svgNode
	if fn(n) {
		out = append(out, n)
	}
	for _, c := range n.Nodes {
		out = append(out, c.all(fn)...)
	}
	return out
}

func (n svgNode) byClass(class string) []svgNode {
	return n.all(func(c svgNode) bool { return slicesContains(strings.Fields(c.attr("class")), class) })
}

func (n svgNode) bars() []svgNode {
	return n.all(func(c svgNode) bool {
		return c.XMLName.Local == "rect" && slicesContains(strings.Fields(c.attr("class")), "bar")
	})
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func parseSVG(t *testing.T, page []byte) svgNode {
	t.Helper()
	s := string(page)
	start, end := strings.Index(s, "<svg"), strings.LastIndex(s, "</svg>")
	require.True(t, start >= 0 && end > start, "no <svg> in the page")
	require.Equal(t, 1, strings.Count(s, "<svg"), "one timeline")
	frag := s[start : end+len("</svg>")]
	// Strict XML: every element closed, every attribute quoted, only
	// XML's entities.
	d := xml.NewDecoder(strings.NewReader(frag))
	d.Strict = true
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "the SVG is not well-formed XML:\n%s", frag)
	}
	var root svgNode
	require.NoError(t, xml.Unmarshal([]byte(frag), &root))
	require.Equal(t, "svg", root.XMLName.Local)
	return root
}
