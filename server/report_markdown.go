package server

import (
	"fmt"
	"strings"
	"time"
)

// markdownReport renders a report as Markdown: what an operator pastes
// into a ticket. Every value goes through cell or oneLine, so a hostile
// step error cannot break the tables; outputs are indented code blocks.
func markdownReport(rep Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: %s\n\n", oneLine(rep.Title), rep.State)

	b.WriteString("| | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "| %s | %s |\n", k, cell(v))
		}
	}
	row("Verdict", rep.Verdict)
	row("Run", rep.ID)
	row("Workflow", rep.WorkflowID)
	row("Kind", rep.Kind)
	row("Group", rep.Group)
	row("Project", rep.Project)
	row("Target site", rep.Site)
	row("Backend", rep.Backend)
	row("Mode", rep.Mode)
	row("State", rep.State)
	row("Started by (token)", rep.StartedBy)
	row("Requested by", rep.RequestedBy)
	row("Created", stamp(&rep.Created))
	row("Ended", stamp(rep.Ended))
	row("Duration", secondsDuration(rep.DurationSeconds))
	row("RPO (data-loss window)", seconds(rep.Objectives.RPO.AchievedSeconds))
	row("RTO (start to verified service)", seconds(rep.Objectives.RTO.AchievedSeconds))
	row("Writes lost", writesLost(rep.Objectives.WritesLost))
	row("Writes discarded by resync", writesLost(rep.Objectives.WritesDiscarded))
	row("Share", rep.Share)
	row("Report generated", stamp(&rep.Generated))
	b.WriteString("\n")

	if rep.Message != "" {
		fmt.Fprintf(&b, "%s\n\n", oneLine(rep.Message))
	}

	fmt.Fprintf(&b, "## Verdict: %s\n\n", rep.Verdict)
	if len(rep.VerdictReasons) == 0 {
		b.WriteString("The run completed; every check passed and every objective set was met.\n\n")
	} else {
		for _, r := range rep.VerdictReasons {
			fmt.Fprintf(&b, "- %s\n", oneLine(r))
		}
		b.WriteString("\n")
	}

	b.WriteString("## Objectives\n\n| Objective | Target | Achieved | Met |\n|---|---|---|---|\n")
	for _, o := range []struct {
		name string
		obj  ReportObjective
	}{{"RPO (data-loss window)", rep.Objectives.RPO}, {"RTO (start to verified service)", rep.Objectives.RTO}} {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", o.name, objectiveTarget(o.obj), orDash(seconds(o.obj.AchievedSeconds)), metWord(o.obj))
	}
	fmt.Fprintf(&b, "\nObjectives: %s.\n\n", oneLine(rep.Objectives.Source))

	b.WriteString("## Approvals\n\n")
	if len(rep.Approvals) == 0 {
		b.WriteString("None.\n\n")
	} else {
		for _, a := range rep.Approvals {
			fmt.Fprintf(&b, "- %s at %s", oneLine(a.By), stamp(&a.At))
			if a.Comment != "" {
				fmt.Fprintf(&b, ": %s", oneLine(a.Comment))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}

	b.WriteString("## Steps\n\n")
	if len(rep.Timeline) == 0 {
		b.WriteString("No steps recorded.\n\n")
	} else {
		b.WriteString("| Step | State | Started | Duration | Attempts | Error / note |\n")
		b.WriteString("|---|---|---|---|---|---|\n")
		for _, st := range rep.Timeline {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %s |\n",
				cell(st.Step), cell(st.State), stamp(st.Started), duration(st.Started, st.Ended),
				st.Attempts, cell(joinNonEmpty(st.Error, st.Note)))
		}
		b.WriteString("\n")
	}

	if len(rep.Pauses) > 0 {
		b.WriteString("## Pauses\n\n| Paused by | From | Until | Length | Ended by |\n|---|---|---|---|---|\n")
		for _, p := range rep.Pauses {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cell(p.By), stamp(&p.From), orDash(stamp(p.To)),
				secondsDuration(p.ToOffsetSeconds-p.FromOffsetSeconds), cell(pauseEnd(p)))
		}
		b.WriteString("\n")
	}

	if len(rep.Children) > 0 {
		b.WriteString("## Groups\n\n| Group | Priority | State | RTO | Writes lost | Run | Message |\n|---|---|---|---|---|---|---|\n")
		for _, c := range rep.Children {
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s |\n", cell(c.Group), c.Priority, cell(c.State),
				seconds(c.RTOSeconds), writesLost(c.WritesLost), cell(c.RunID), cell(c.Message))
		}
		b.WriteString("\n")
	}
	if len(rep.Checks) > 0 {
		b.WriteString("## Checks\n\n| Check | Result | Detail |\n|---|---|---|\n")
		for _, c := range rep.Checks {
			result := "passed"
			if !c.Passed {
				result = "FAILED"
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", cell(c.Name), result, cell(c.Detail))
		}
		b.WriteString("\n")
	}
	for _, st := range rep.Timeline {
		if st.Output == "" {
			continue
		}
		// Indented, so the output is a code block whatever it holds.
		fmt.Fprintf(&b, "## Output of %s\n\n", oneLine(st.Step))
		for _, line := range strings.Split(strings.TrimRight(st.Output, "\n"), "\n") {
			fmt.Fprintf(&b, "    %s\n", line)
		}
		b.WriteString("\n")
	}
	if len(rep.Touched) > 0 {
		b.WriteString("## Resources touched\n\n")
		for _, t := range rep.Touched {
			fmt.Fprintf(&b, "- %s\n", oneLine(t))
		}
		b.WriteString("\n")
	}
	if len(rep.Flags) > 0 {
		b.WriteString("## Flags\n\n")
		for _, f := range rep.Flags {
			fmt.Fprintf(&b, "- %s\n", oneLine(f))
		}
		b.WriteString("\n")
	}
	if len(rep.Events) > 0 {
		b.WriteString("## Events\n\n")
		for _, e := range rep.Events {
			fmt.Fprintf(&b, "- %s: %s by %s", stamp(&e.At), oneLine(e.Action), oneLine(e.By))
			if e.Step != "" {
				fmt.Fprintf(&b, " (step %s)", oneLine(e.Step))
			}
			if e.Comment != "" {
				fmt.Fprintf(&b, ": %s", oneLine(e.Comment))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func objectiveTarget(o ReportObjective) string {
	if o.ObjectiveSeconds == nil {
		return "none set"
	}
	return fmt.Sprintf("%d s", *o.ObjectiveSeconds)
}

func metWord(o ReportObjective) string {
	switch {
	case o.Met == nil && o.ObjectiveSeconds == nil:
		return "no objective"
	case o.Met == nil:
		return "not measured"
	case *o.Met:
		return "yes"
	}
	return "NO"
}

func pauseEnd(p ReportPause) string {
	switch p.EndedWith {
	case "run_end":
		return "still paused"
	case "resume":
		return "resumed by " + p.EndedBy
	}
	return p.EndedWith + " by " + p.EndedBy
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// secondsDuration shows a number of seconds as a duration (1m30s).
func secondsDuration(v float64) string {
	return time.Duration(v * float64(time.Second)).Round(100 * time.Millisecond).String()
}

func stamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func duration(start, end *time.Time) string {
	if start == nil || end == nil {
		return ""
	}
	return end.Sub(*start).Round(100 * time.Millisecond).String()
}

func seconds(v *float64) string {
	if v == nil {
		return ""
	}
	return fmt.Sprintf("%.1f s", *v)
}

func writesLost(v *int64) string {
	switch {
	case v == nil:
		return ""
	case *v < 0:
		return "unknown (the storage cannot tell)"
	}
	return fmt.Sprint(*v)
}

func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// cellEscaper makes text safe inside a Markdown table cell: a pipe would
// end the cell, and many renderers (ticket systems, wikis) pass raw HTML in
// Markdown through, so a step error like <img onerror=...> must stay text.
var cellEscaper = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "&", "&amp;")

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	return cellEscaper.Replace(oneLine(s))
}
