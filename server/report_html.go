package server

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/workflows"
)

// The HTML report is one self-contained page: inline CSS, an inline SVG
// timeline, no script, no font, no image, no link to fetch. html/template
// escapes every value, so a hostile step name or error stays text.
//
//go:embed report.html.tmpl
var reportTemplateText string

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"stamp":    func(t *time.Time) string { return stamp(t) },
	"stampv":   func(t time.Time) string { return stamp(&t) },
	"secs":     seconds,
	"dur":      secondsDuration,
	"offset":   offsetText,
	"offsetp":  func(v *float64) string { return orDash(offsetPtr(v)) },
	"durp":     func(v *float64) string { return orDash(durPtr(v)) },
	"lost":     writesLost,
	"target":   objectiveTarget,
	"met":      metWord,
	"metClass": metClass,
	"pauseEnd": pauseEnd,
	"xml":      xmlText,
	"short":    func(s string) string { return xmlText(truncate(s, 30)) },
	"join":     joinNonEmpty,
	"dash":     orDash,
	"sub":      func(a, b float64) float64 { return a - b },
}).Parse(reportTemplateText))

// htmlReport renders a report as a printable HTML page.
func htmlReport(rep Report) ([]byte, error) {
	view := struct {
		Report
		Gantt   gantt
		IsDrill bool
	}{Report: rep, Gantt: newGantt(rep), IsDrill: rep.Kind == ferry.KindDrill}
	var b bytes.Buffer
	if err := reportTemplate.Execute(&b, view); err != nil {
		return nil, fmt.Errorf("render html report: %w", err)
	}
	return b.Bytes(), nil
}

// Gantt geometry, in SVG user units.
const (
	ganttWidth  = 960
	ganttLabelW = 210 // step names, right-aligned before the chart
	ganttRight  = 20
	ganttAxisY  = 26 // the time axis' baseline; labels above it
	ganttRowH   = 22
	ganttBarH   = 14
	ganttLegend = 40
)

// stateColors colour a step's bar by its state; the legend lists them.
var stateColors = []struct{ State, Color string }{
	{ferry.StepCompleted, "#2e7d32"},
	{ferry.StepRunning, "#1565c0"},
	{ferry.StepFailed, "#c62828"},
	{ferry.StepCompensated, "#ef6c00"},
	{ferry.StepSkipped, "#9e9e9e"},
	{ferry.StepPending, "#e0e0e0"},
}

func stateColor(state string) string {
	for _, c := range stateColors {
		if c.State == state {
			return c.Color
		}
	}
	return "#212121" // a state this page does not know: visible, never hidden
}

// gantt is the timeline's drawing: one bar per step on the run's clock,
// operator pauses as bands, approvals and other steering as markers.
type gantt struct {
	Width, Height                              int
	ChartX, ChartW, AxisY, RowsBottom, LegendY string
	Span                                       string
	LaneLabelX, LaneLabelY                     string
	Ticks                                      []ganttTick
	Rows                                       []ganttRow
	Pauses                                     []ganttBand
	Marks                                      []ganttMark
	Legend                                     []ganttLegendItem
}

type ganttTick struct{ X, Label string }

type ganttRow struct {
	Step, State, Color, Title string
	LabelX, LabelY            string
	X, Y, W, H                string
	NotRun                    bool
}

type ganttBand struct{ X, Y, W, H, Title, Label, LabelX, LabelY string }

type ganttMark struct {
	Class, Title   string
	X, Y1, Y2, Tip string // Tip is the marker's triangle path
	Label          string
	LabelX, LabelY string
}

type ganttLegendItem struct{ X, Y, TextX, TextY, Color, Label, Class string }

func newGantt(rep Report) gantt {
	chartX := float64(ganttLabelW)
	chartW := float64(ganttWidth - ganttLabelW - ganttRight)
	rows := len(rep.Timeline)
	rowsTop := float64(ganttAxisY + 6)
	stepsBottom := rowsTop + float64(rows*ganttRowH)
	// Below the steps, a lane names the approvals, pauses and steering, so
	// the printed page says what the markers are.
	rowsBottom := stepsBottom + 2*ganttRowH
	g := gantt{Width: ganttWidth, Height: int(rowsBottom) + ganttLegend}

	span := rep.DurationSeconds
	for _, e := range rep.Timeline {
		if e.EndOffsetSeconds != nil && *e.EndOffsetSeconds > span {
			span = *e.EndOffsetSeconds
		}
	}
	for _, p := range rep.Pauses {
		span = max(span, p.ToOffsetSeconds)
	}
	for _, e := range rep.Events {
		span = max(span, e.OffsetSeconds)
	}
	if span < 1 {
		span = 1
	}
	x := func(sec float64) float64 { return chartX + max(0, min(sec, span))/span*chartW }
	f := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	g.ChartX, g.ChartW, g.AxisY, g.RowsBottom, g.LegendY = f(chartX), f(chartW), f(ganttAxisY), f(rowsBottom), f(rowsBottom+22)
	g.LaneLabelX, g.LaneLabelY = f(chartX-8), f(stepsBottom+ganttBarH)
	g.Span = secondsDuration(span)

	step := tickStep(span)
	for t := 0.0; t <= span+1e-9; t += step {
		g.Ticks = append(g.Ticks, ganttTick{X: f(x(t)), Label: offsetText(t)})
	}
	for i, e := range rep.Timeline {
		y := rowsTop + float64(i*ganttRowH)
		r := ganttRow{Step: e.Step, State: e.State, Color: stateColor(e.State),
			LabelX: f(chartX - 8), LabelY: f(y + ganttBarH - 2), Y: f(y + 2), H: f(ganttBarH)}
		if e.StartOffsetSeconds == nil {
			// Never started: a hollow sliver where the run began, so every
			// step still has its bar.
			r.X, r.W, r.NotRun = f(chartX), "3.0", true
			r.Title = fmt.Sprintf("%s: %s, not started", e.Step, e.State)
		} else {
			from, to := x(*e.StartOffsetSeconds), x(*e.EndOffsetSeconds)
			r.X, r.W = f(from), f(max(to-from, 2))
			r.Title = fmt.Sprintf("%s: %s, +%s to +%s (%s), %d attempt(s)", e.Step, e.State,
				offsetText(*e.StartOffsetSeconds), offsetText(*e.EndOffsetSeconds), durPtr(e.DurationSeconds), e.Attempts)
		}
		g.Rows = append(g.Rows, r)
	}
	// Lane labels alternate between two lines, so neighbours rarely meet.
	lane := 0
	laneY := func() string {
		y := stepsBottom + ganttBarH + float64(lane%2*ganttRowH)
		lane++
		return f(y)
	}
	for _, p := range rep.Pauses {
		from, to := x(p.FromOffsetSeconds), x(p.ToOffsetSeconds)
		g.Pauses = append(g.Pauses, ganttBand{X: f(from), Y: f(ganttAxisY), W: f(max(to-from, 2)), H: f(rowsBottom - ganttAxisY),
			Title: fmt.Sprintf("paused by %s at +%s, %s", p.By, offsetText(p.FromOffsetSeconds), pauseEnd(p)),
			Label: truncate("paused by "+p.By, 28), LabelX: f(from + 3), LabelY: laneY()})
	}
	mark := func(class, title, label string, sec float64) {
		mx := x(sec)
		g.Marks = append(g.Marks, ganttMark{Class: class, Title: title, X: f(mx), Y1: f(ganttAxisY), Y2: f(rowsBottom),
			Tip:   fmt.Sprintf("M %s %s l -5 -8 h 10 z", f(mx), f(ganttAxisY)),
			Label: truncate(label, 28), LabelX: f(mx + 3), LabelY: laneY()})
	}
	for _, a := range rep.Approvals {
		mark("approval", fmt.Sprintf("approved by %s at %s (+%s)", a.By, stamp(&a.At), offsetText(a.OffsetSeconds)),
			"approved by "+a.By, a.OffsetSeconds)
	}
	for _, e := range rep.Events {
		switch e.Action {
		case workflows.UpdateApprove, workflows.UpdatePause, workflows.UpdateResume:
			continue // drawn as the approval's marker and the pause's band
		}
		title := fmt.Sprintf("%s by %s at %s (+%s)", e.Action, e.By, stamp(&e.At), offsetText(e.OffsetSeconds))
		if e.Step != "" {
			title += ", step " + e.Step
		}
		mark("event", title, e.Action+" by "+e.By, e.OffsetSeconds)
	}

	lx, ly := chartX, rowsBottom+14
	for _, c := range stateColors {
		g.Legend = append(g.Legend, ganttLegendItem{X: f(lx), Y: f(ly), TextX: f(lx + 14), TextY: f(ly + 9), Color: c.Color, Label: c.State, Class: "swatch"})
		lx += 100
	}
	g.Legend = append(g.Legend,
		ganttLegendItem{X: f(chartX), Y: f(ly + 16), TextX: f(chartX + 14), TextY: f(ly + 25), Color: "#fbc02d", Label: "operator pause", Class: "swatch pause-swatch"},
		ganttLegendItem{X: f(chartX + 140), Y: f(ly + 16), TextX: f(chartX + 154), TextY: f(ly + 25), Color: "#6a1b9a", Label: "approval", Class: "swatch"},
		ganttLegendItem{X: f(chartX + 240), Y: f(ly + 16), TextX: f(chartX + 254), TextY: f(ly + 25), Color: "#455a64", Label: "retry, skip, abort, failed undo", Class: "swatch"},
	)
	g.Height += 16
	return g
}

// tickStep is a round interval that puts at most about eight ticks on the
// axis.
func tickStep(span float64) float64 {
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400} {
		if span/s <= 8 {
			return s
		}
	}
	return span / 8
}

// offsetText shows an offset from the run's start: 0s, 1.5s, 45s, 1m30s,
// 2m, 1h5m.
func offsetText(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	if d < 10*time.Second && d > -10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func offsetPtr(v *float64) string {
	if v == nil {
		return ""
	}
	return "+" + offsetText(*v)
}

func durPtr(v *float64) string {
	if v == nil {
		return ""
	}
	return secondsDuration(*v)
}

func metClass(o ReportObjective) string {
	switch {
	case o.Met == nil:
		return "unknown"
	case *o.Met:
		return "met"
	}
	return "missed"
}

// xmlText keeps only what XML 1.0 allows in text, so the SVG stays
// well-formed whatever a step name holds (html/template escapes the rest).
func xmlText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return -1
		case unicode.Is(unicode.Cc, r) && r >= 0x7F && r <= 0x9F:
			return -1
		}
		return r
	}, s)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
