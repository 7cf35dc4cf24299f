package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Row is one figure of the results table: its median, every run's value,
// the goal and whether the median meets it.
type Row struct {
	Figure string
	Median string
	Runs   string
	Goal   string
	Met    string // "yes", "no" or "" when the figure has no goal
}

// Section is one benchmark's rows and what the reader must know about it.
type Section struct {
	Title string
	Rows  []Row
	Notes []string
}

// Report is the whole table.
type Report struct {
	Title    string
	Header   [][2]string // machine, date, commit, settings
	Sections []*Section
	Failures []string
}

// Section adds a section and returns it.
func (r *Report) Section(title string) *Section {
	s := &Section{Title: title}
	r.Sections = append(r.Sections, s)
	return s
}

// Add adds a row.
func (s *Section) Add(row Row) { s.Rows = append(s.Rows, row) }

// Note adds a note under the section's table.
func (s *Section) Note(format string, args ...any) {
	s.Notes = append(s.Notes, fmt.Sprintf(format, args...))
}

// Markdown writes the report.
func (r *Report) Markdown(w io.Writer) {
	fmt.Fprintf(w, "# %s\n\n", r.Title)
	for _, h := range r.Header {
		fmt.Fprintf(w, "- **%s**: %s\n", h[0], h[1])
	}
	for _, s := range r.Sections {
		fmt.Fprintf(w, "\n## %s\n\n", s.Title)
		if len(s.Rows) > 0 {
			fmt.Fprintln(w, "| Figure | Median | Runs | Goal | Met |")
			fmt.Fprintln(w, "| --- | --- | --- | --- | --- |")
			for _, row := range s.Rows {
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", cell(row.Figure), cell(row.Median), cell(row.Runs), cell(row.Goal), cell(row.Met))
			}
		}
		for _, n := range s.Notes {
			fmt.Fprintf(w, "\n%s\n", n)
		}
	}
	if len(r.Failures) > 0 {
		fmt.Fprintf(w, "\n## Failures\n\n")
		for _, f := range r.Failures {
			fmt.Fprintf(w, "- %s\n", f)
		}
	}
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// Secs formats a duration in seconds with three decimals.
func Secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

// Millis formats a duration in milliseconds with one decimal.
func Millis(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// MiB formats bytes in MiB.
func MiB(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// JoinDurations lists every run's value.
func JoinDurations(ds []time.Duration, f func(time.Duration) string) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = f(d)
	}
	return strings.Join(parts, ", ")
}

// JoinFloats lists every run's value with a format.
func JoinFloats(xs []float64, format string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, ", ")
}

// Verdict says whether value meets a goal of at most limit.
func Verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}
