package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
)

// maxPollErrors is how many reads of a run in a row may fail before watch
// gives up.
const maxPollErrors = 10

func (c *CLI) watchVerb(ctx context.Context, args []string) error {
	pos, err := parse(flags("watch"), args, "RUN")
	if err != nil {
		return err
	}
	return c.watch(ctx, pos[0])
}

// watch follows a run until it ends: on a terminal it redraws a live
// display in place; otherwise it prints one line per change. It returns
// nil when the run completed, an exitError when it ended otherwise or
// when the watch was interrupted (the run goes on).
func (c *CLI) watch(ctx context.Context, id string) error {
	interval := c.PollInterval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	tty := c.isTTY()
	w := &watcher{c: c, id: id, steps: map[string]string{}, color: c.colorOn(), now: c.now, width: c.termWidth()}
	if tty {
		// Hide the cursor while redrawing; show it whatever happens.
		_, _ = io.WriteString(c.Stdout, "\x1b[?25l")
		defer func() { _, _ = io.WriteString(c.Stdout, "\x1b[?25h") }()
	}
	failures := 0
	var last ferry.Run
	for {
		run, err := c.API.GetRun(ctx, id)
		switch {
		case ctx.Err() != nil:
			return w.interrupted(last)
		case apiclient.IsStatus(err, 404), apiclient.IsStatus(err, 401), apiclient.IsStatus(err, 403):
			// No retry mends a missing run or a refused token: say so now.
			return err
		case err != nil:
			failures++
			if failures >= maxPollErrors {
				return err
			}
			fmt.Fprintf(c.Stderr, "ferry watch: %s (retrying)\n", clean(err.Error()))
		default:
			failures = 0
			last = run
			if tty {
				w.redraw(run)
			} else {
				w.lines(run)
			}
			if ferry.RunEnded(run.State) {
				if !tty {
					fmt.Fprintln(c.Stdout, clean(summary(run)))
				}
				if run.State == ferry.RunCompleted {
					return nil
				}
				return &exitError{ExitError}
			}
		}
		select {
		case <-ctx.Done():
			return w.interrupted(last)
		case <-time.After(interval):
		}
	}
}

// interrupted says that the run goes on without the watch (Ctrl-C stops
// watching, never the run).
func (w *watcher) interrupted(last ferry.Run) error {
	state := "still going"
	if last.State != "" {
		state = "still " + last.State
	}
	fmt.Fprintf(w.c.Stderr, "\nStopped watching: run %s is %s and goes on without you.\n"+
		"Watch it again with: ferry watch %s; stop it with: ferry abort %s\n", w.id, state, w.id, w.id)
	return &exitError{ExitError}
}

type watcher struct {
	c     *CLI
	id    string
	steps map[string]string // last printed state of each step
	hint  string            // last printed hint
	drawn int               // lines of the last redraw
	color bool
	now   func() time.Time
	width int // the terminal's columns; 0 when unknown
}

// lines prints what changed since the last poll, one line each.
func (w *watcher) lines(run ferry.Run) {
	width := 0
	for _, s := range run.Steps {
		width = max(width, len(s.Name))
	}
	for _, s := range run.Steps {
		if w.steps[s.Name] == s.State {
			continue
		}
		w.steps[s.Name] = s.State
		if s.State == ferry.StepPending {
			continue // the plan, not news
		}
		line := fmt.Sprintf("%s %-*s  %s", w.clock(stepTime(s)), width, s.Name, s.State)
		if detail := stepDetail(s); detail != "" && s.State != ferry.StepRunning {
			line += ": " + detail
		}
		fmt.Fprintln(w.c.Stdout, clean(line))
	}
	if h := hint(run); h != w.hint {
		w.hint = h
		if h != "" {
			fmt.Fprintln(w.c.Stdout, clean(h))
		}
	}
}

// redraw replaces the last drawn frame with the run's current one.
func (w *watcher) redraw(run ferry.Run) {
	out := w.frame(run, w.width)
	if w.drawn > 0 {
		// Up to the first line of the last drawing, then clear to the end.
		out = fmt.Sprintf("\x1b[%dA\x1b[J", w.drawn) + out
	}
	_, _ = io.WriteString(w.c.Stdout, out)
	w.drawn = strings.Count(out, "\n")
}

// frame draws a run: a header with its state and elapsed time, a progress
// bar, a table of steps with a symbol each, and what it waits for or how
// it ended. Lines are cut to width (when known) so that none wraps and the
// next redraw lands where this one began.
func (w *watcher) frame(run ferry.Run, width int) string {
	var b strings.Builder
	title := run.Kind
	if run.Group != "" {
		title += " of group " + run.Group
	}
	if run.Site != "" {
		title += " to site " + run.Site
	}
	if run.Mode != "" {
		title += " (" + run.Mode + ")"
	}
	state := strings.ToUpper(clean(run.State))
	header := fmt.Sprintf("Run %s: %s: %s", run.ID, title, state)
	if e := w.elapsed(run); e != "" {
		header += "  elapsed " + e
	}
	header = cut(clean(header), width)
	if w.color {
		if i := strings.LastIndex(header, ": "+state); i >= 0 {
			header = header[:i+2] + paint(true, bold+";"+runColor(run.State), state) + header[i+2+len(state):]
		}
	}
	b.WriteString(header + "\n")

	done := 0
	for _, s := range run.Steps {
		switch s.State {
		case ferry.StepCompleted, ferry.StepSkipped, ferry.StepCompensated:
			done++
		}
	}
	b.WriteString(w.bar(done, len(run.Steps)) + "\n\n")

	var t table
	t.rowText("", "STEP", "STATE", "STARTED", "DURATION", "ATTEMPTS", "ERROR/NOTE")
	for _, s := range run.Steps {
		started := "-"
		if s.Started != nil {
			started = w.clock(*s.Started)
		}
		sym, color := stepSymbol(s.State)
		t.row(cell{sym, color}, cell{text: s.Name}, cell{s.State, color}, cell{text: started},
			cell{text: w.duration(s)}, cell{text: fmt.Sprint(s.Attempts)}, cell{text: stepDetail(s)})
	}
	// The note column takes what the others leave of the width.
	room := 60
	if width > 0 {
		used := 0
		for col := 0; col < 6; col++ {
			wd := 0
			for _, r := range t.rows {
				wd = max(wd, len([]rune(r[col].text)))
			}
			used += wd + 2
		}
		room = min(room, width-used-1)
	}
	for i, r := range t.rows[1:] {
		if r[6].text != "" && run.Steps[i].Error != "" {
			r[6].color = red
		}
		r[6].text = dash(oneLine(r[6].text, max(room, 1)))
	}
	_ = t.write(&b, w.color)

	if ferry.RunEnded(run.State) {
		fmt.Fprintf(&b, "\n%s\n", paint(w.color, runColor(run.State), cut(clean(summary(run)), width)))
	} else if h := hint(run); h != "" {
		fmt.Fprintf(&b, "\n%s\n", paint(w.color, bold+";"+yellow, cut(clean(h), width)))
	}
	return b.String()
}

// bar is a progress bar of steps done out of total.
func (w *watcher) bar(done, total int) string {
	const size = 30
	filled := 0
	if total > 0 {
		filled = done * size / total
	}
	return "[" + paint(w.color, green, strings.Repeat("█", filled)) + paint(w.color, faint, strings.Repeat("░", size-filled)) +
		fmt.Sprintf("] %d/%d steps", done, total)
}

// elapsed is how long the run has taken so far, or took.
func (w *watcher) elapsed(run ferry.Run) string {
	if run.Created.IsZero() {
		return ""
	}
	end := w.now()
	if run.Ended != nil {
		end = *run.Ended
	}
	return end.Sub(run.Created).Round(time.Second).String()
}

// duration is a step's duration, live for the running one.
func (w *watcher) duration(s ferry.Step) string {
	switch {
	case s.Started == nil:
		return "-"
	case s.Ended == nil:
		return w.now().Sub(*s.Started).Round(time.Second).String()
	}
	return s.Ended.Sub(*s.Started).Round(100 * time.Millisecond).String()
}

// stepSymbol is a step state's mark and colour.
func stepSymbol(state string) (string, string) {
	switch state {
	case ferry.StepCompleted:
		return "✓", green
	case ferry.StepRunning:
		return "▶", blue
	case ferry.StepFailed:
		return "✗", red
	case ferry.StepSkipped:
		return "↷", yellow
	case ferry.StepCompensated:
		return "↺", yellow
	}
	return "·", faint
}

// cut shortens s to less than width runes, ending it with "…" (no limit
// when width is 0). It cuts between runes, never inside one.
func cut(s string, width int) string {
	r := []rune(s)
	if width <= 0 || len(r) < width {
		return s
	}
	if width < 2 {
		return "…"
	}
	return string(r[:width-2]) + "…"
}

func (w *watcher) clock(t time.Time) string {
	return t.In(w.c.loc()).Format("15:04:05")
}

// stepTime is when a step reached its state, as far as the run tells.
func stepTime(s ferry.Step) time.Time {
	switch {
	case s.Ended != nil && s.State != ferry.StepRunning:
		return *s.Ended
	case s.Started != nil:
		return *s.Started
	}
	return time.Now()
}

func stepDetail(s ferry.Step) string {
	switch {
	case s.Error != "" && s.Note != "":
		return s.Error + "; " + s.Note
	case s.Error != "":
		return s.Error
	}
	return s.Note
}

// oneLine cleans s, folds its whitespace and keeps at most n runes of it,
// ending a shortened one with "…" (a cut never splits a UTF-8 character).
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(clean(s)), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:max(n-1, 0)]) + "…"
	}
	return s
}

// hint says what a run waits for and which command moves it on.
func hint(run ferry.Run) string {
	switch run.State {
	case ferry.RunWaitingApproval:
		return fmt.Sprintf("run is waiting for approval: ferry approve %s (or ferry abort %s)", run.ID, run.ID)
	case ferry.RunPaused:
		if n := len(run.Events); n > 0 && run.Events[n-1].Action == "pause" {
			return fmt.Sprintf("run was paused by %s: ferry resume %s", dash(run.Events[n-1].By), run.ID)
		}
		step := ""
		for _, s := range run.Steps {
			if s.State == ferry.StepFailed {
				step = " at step " + s.Name
			}
		}
		return fmt.Sprintf("run is paused%s: ferry retry %s, ferry skip %s or ferry abort %s", step, run.ID, run.ID, run.ID)
	}
	return ""
}

// summary is the last line of a watch.
func summary(run ferry.Run) string {
	lost := "-"
	if run.WritesLost != nil {
		if *run.WritesLost < 0 {
			lost = "unknown"
		} else {
			lost = fmt.Sprint(*run.WritesLost)
		}
	}
	s := fmt.Sprintf("run %s %s: RPO %s, RTO %s, writes lost %s", run.ID, run.State, secs(run.RPOSeconds), secs(run.RTOSeconds), lost)
	if run.Message != "" {
		s += " (" + oneLine(run.Message, 200) + ")"
	}
	return s
}
