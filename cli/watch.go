package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
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

// watch follows a run until it ends: on a terminal it redraws a table of
// steps in place; otherwise it prints one line per change. It returns nil
// when the run completed, an exitError when it ended otherwise.
func (c *CLI) watch(ctx context.Context, id string) error {
	interval := c.PollInterval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	tty := c.isTTY()
	w := &watcher{c: c, id: id, steps: map[string]string{}}
	failures := 0
	for {
		run, err := c.API.GetRun(ctx, id)
		switch {
		case apiclient.IsStatus(err, 404):
			return err
		case err != nil:
			failures++
			if failures >= maxPollErrors || ctx.Err() != nil {
				return err
			}
			fmt.Fprintf(c.Stderr, "ferry watch: %v (retrying)\n", err)
		default:
			failures = 0
			if tty {
				w.redraw(run)
			} else {
				w.lines(run)
			}
			if ferry.RunEnded(run.State) {
				if !tty {
					fmt.Fprintln(c.Stdout, summary(run))
				}
				if run.State == ferry.RunCompleted {
					return nil
				}
				return &exitError{ExitError}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

type watcher struct {
	c     *CLI
	id    string
	steps map[string]string // last printed state of each step
	hint  string            // last printed hint
	drawn int               // lines of the last redraw
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
		fmt.Fprintln(w.c.Stdout, line)
	}
	if h := hint(run); h != w.hint {
		w.hint = h
		if h != "" {
			fmt.Fprintln(w.c.Stdout, h)
		}
	}
}

// redraw replaces the last drawn table with the run's current one.
func (w *watcher) redraw(run ferry.Run) {
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
	fmt.Fprintf(&b, "Run %s: %s: %s\n\n", run.ID, title, strings.ToUpper(run.State))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATE\tSTARTED\tDURATION\tATTEMPTS\tERROR/NOTE")
	for _, s := range run.Steps {
		started := "-"
		if s.Started != nil {
			started = w.clock(*s.Started)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.State, started, stepDuration(s), s.Attempts, dash(oneLine(stepDetail(s), 60)))
	}
	_ = tw.Flush()
	if ferry.RunEnded(run.State) {
		fmt.Fprintf(&b, "\n%s\n", summary(run))
	} else if h := hint(run); h != "" {
		fmt.Fprintf(&b, "\n%s\n", h)
	}
	out := b.String()
	if w.drawn > 0 {
		// Up to the first line of the last drawing, then clear to the end.
		fmt.Fprintf(w.c.Stdout, "\x1b[%dA\x1b[J", w.drawn)
	}
	_, _ = io.WriteString(w.c.Stdout, out)
	w.drawn = strings.Count(out, "\n")
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

func stepDuration(s ferry.Step) string {
	switch {
	case s.Started == nil:
		return "-"
	case s.Ended == nil:
		return time.Since(*s.Started).Round(time.Second).String()
	}
	return s.Ended.Sub(*s.Started).Round(100 * time.Millisecond).String()
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

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n-1] + "…"
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
