package server

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/ferrydr/ferry"
)

// wantsMarkdown reports whether the request's Accept header asks for
// text/markdown.
func wantsMarkdown(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == "text/markdown" {
			return true
		}
	}
	return false
}

// markdownReport renders a run as the report an operator files after a
// failover or a drill.
func markdownReport(run ferry.Run) string {
	var b strings.Builder
	title := run.Kind
	if run.Group != "" {
		title += " of group " + run.Group
	}
	fmt.Fprintf(&b, "# Ferry %s: %s\n\n", title, run.State)

	b.WriteString("| | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "| %s | %s |\n", k, cell(v))
		}
	}
	row("Run", run.ID)
	row("Workflow", run.WorkflowID)
	row("Kind", run.Kind)
	row("Group", run.Group)
	row("Project", run.Project)
	row("Target site", run.Site)
	row("Backend", run.Backend)
	row("Mode", run.Mode)
	row("State", run.State)
	row("Started by (token)", run.StartedBy)
	row("Requested by", run.RequestedBy)
	row("Created", stamp(&run.Created))
	row("Ended", stamp(run.Ended))
	row("RPO (data-loss window)", seconds(run.RPOSeconds))
	row("RTO (start to verified service)", seconds(run.RTOSeconds))
	row("Writes lost", writesLost(run.WritesLost))
	row("Writes discarded by resync", writesLost(run.WritesDiscarded))
	row("Share", run.Share)
	b.WriteString("\n")

	if run.Message != "" {
		fmt.Fprintf(&b, "%s\n\n", run.Message)
	}

	b.WriteString("## Approvals\n\n")
	if len(run.Approvals) == 0 {
		b.WriteString("None.\n\n")
	} else {
		for _, a := range run.Approvals {
			fmt.Fprintf(&b, "- %s at %s", a.By, stamp(&a.At))
			if a.Comment != "" {
				fmt.Fprintf(&b, ": %s", oneLine(a.Comment))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}

	b.WriteString("## Steps\n\n")
	if len(run.Steps) == 0 {
		b.WriteString("No steps recorded.\n\n")
	} else {
		b.WriteString("| Step | State | Started | Duration | Attempts | Error / note |\n")
		b.WriteString("|---|---|---|---|---|---|\n")
		for _, st := range run.Steps {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %s |\n",
				cell(st.Name), cell(st.State), stamp(st.Started), duration(st.Started, st.Ended),
				st.Attempts, cell(joinNonEmpty(st.Error, st.Note)))
		}
		b.WriteString("\n")
	}

	if len(run.Children) > 0 {
		b.WriteString("## Groups\n\n| Group | Priority | State | RTO | Writes lost | Run | Message |\n|---|---|---|---|---|---|---|\n")
		for _, c := range run.Children {
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s |\n", cell(c.Group), c.Priority, cell(c.State),
				seconds(c.RTOSeconds), writesLost(c.WritesLost), cell(c.RunID), cell(c.Message))
		}
		b.WriteString("\n")
	}
	if len(run.Checks) > 0 {
		b.WriteString("## Checks\n\n| Check | Result | Detail |\n|---|---|---|\n")
		for _, c := range run.Checks {
			result := "passed"
			if !c.Passed {
				result = "FAILED"
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", cell(c.Name), result, cell(c.Detail))
		}
		b.WriteString("\n")
	}
	for _, st := range run.Steps {
		if st.Output == "" {
			continue
		}
		// Indented, so the output is a code block whatever it holds.
		fmt.Fprintf(&b, "## Output of %s\n\n", st.Name)
		for _, line := range strings.Split(strings.TrimRight(st.Output, "\n"), "\n") {
			fmt.Fprintf(&b, "    %s\n", line)
		}
		b.WriteString("\n")
	}
	if len(run.Touched) > 0 {
		b.WriteString("## Resources touched\n\n")
		for _, t := range run.Touched {
			fmt.Fprintf(&b, "- %s\n", oneLine(t))
		}
		b.WriteString("\n")
	}
	if len(run.Flags) > 0 {
		b.WriteString("## Flags\n\n")
		for _, f := range run.Flags {
			fmt.Fprintf(&b, "- %s\n", oneLine(f))
		}
		b.WriteString("\n")
	}
	if len(run.Events) > 0 {
		b.WriteString("## Events\n\n")
		for _, e := range run.Events {
			fmt.Fprintf(&b, "- %s: %s by %s", stamp(&e.At), e.Action, e.By)
			if e.Step != "" {
				fmt.Fprintf(&b, " (step %s)", e.Step)
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

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(oneLine(s), "|", `\|`)
}
