package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ferrydr/ferry/apiclient"
)

func init() {
	Verbs = append(Verbs, "drill-schedule", "schedules")
	usages["drill-schedule"] = `drill-schedule GROUP CRON [--hold D] [--paused] | drill-schedule GROUP --delete   (CRON: 5 fields, e.g. "0 3 * * 1")`
	usages["schedules"] = "schedules [-o table|json|yaml]"
}

// drillSchedule sets, pauses or deletes a group's weekly drill.
func (c *CLI) drillSchedule(ctx context.Context, args []string) error {
	fs := flags("drill-schedule")
	del := fs.Bool("delete", false, "remove the group's drill schedule")
	hold := fs.Duration("hold", -1, "keep each drill's bubble open this long")
	paused := fs.Bool("paused", false, "create or keep the schedule paused")
	var pos []string
	var err error
	if len(args) > 0 && hasFlag(args, "delete") {
		pos, err = parse(fs, args, "GROUP")
	} else {
		pos, err = parse(fs, args, "GROUP", "CRON")
	}
	if err != nil {
		return err
	}
	if *del {
		if err := c.API.DeleteDrillSchedule(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "drill schedule of group %s deleted\n", pos[0])
		return nil
	}
	body := apiclient.DrillSchedule{Cron: pos[1]}
	if *hold >= 0 {
		secs := int(*hold / time.Second)
		body.HoldSeconds = &secs
	}
	if hasFlag(args, "paused") {
		body.Paused = paused
	}
	s, created, err := c.API.PutDrillSchedule(ctx, pos[0], body)
	if err != nil {
		return err
	}
	verb := "updated"
	if created {
		verb = "created"
	}
	fmt.Fprintf(c.Stdout, "drill schedule of group %s %s: %q", clean(s.Group), verb, s.Cron)
	if len(s.NextRuns) > 0 {
		fmt.Fprintf(c.Stdout, ", next drill %s", s.NextRuns[0].In(c.loc()).Format("2006-01-02 15:04 MST"))
	}
	fmt.Fprintln(c.Stdout)
	return nil
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// schedules lists every drill schedule with its next and last drills.
func (c *CLI) schedules(ctx context.Context, args []string) error {
	fs := flags("schedules")
	out := c.outputFlag(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := checkOutput("schedules", *out); err != nil {
		return err
	}
	page, err := c.API.ListSchedules(ctx)
	if err != nil {
		return err
	}
	if *out != OutputTable {
		if page.Items == nil {
			page.Items = []apiclient.Schedule{}
		}
		return encode(c.Stdout, *out, page.Items)
	}
	var t table
	t.rowText("GROUP", "CRON", "PAUSED", "NEXT", "LAST", "LAST STATE", "SKIPPED")
	for _, s := range page.Items {
		next, last, state := "-", "-", "-"
		if len(s.NextRuns) > 0 {
			next = s.NextRuns[0].In(c.loc()).Format("2006-01-02 15:04")
		}
		if n := len(s.RecentRuns); n > 0 {
			r := s.RecentRuns[n-1]
			last, state = r.StartedAt.In(c.loc()).Format("2006-01-02 15:04"), dash(r.State)
		}
		t.row(cell{text: s.Group}, cell{text: s.Cron}, cell{text: fmt.Sprint(s.Paused)}, cell{text: next}, cell{text: last},
			cell{state, runColor(state)}, cell{text: fmt.Sprint(s.SkippedOverlap)})
	}
	return t.write(c.Stdout, c.colorOn())
}
