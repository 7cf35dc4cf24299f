package cli

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
)

// runs prints the runs, newest first, or one run with its steps
// (`ferry runs RUN`).
func (c *CLI) runs(ctx context.Context, args []string) error {
	fs := flags("runs")
	var f apiclient.RunFilter
	fs.StringVar(&f.Group, "group", "", "only runs of this group")
	fs.StringVar(&f.Site, "site", "", "only runs targeting this site")
	fs.StringVar(&f.State, "state", "", "only runs in this state")
	fs.StringVar(&f.Kind, "kind", "", "only runs of this kind")
	fs.IntVar(&f.Limit, "limit", 50, "at most this many runs")
	out := c.outputFlag(fs)
	pos, err := parseUpTo(fs, args, "RUN")
	if err != nil {
		return err
	}
	if err := checkOutput("runs", *out); err != nil {
		return err
	}
	if len(pos) == 1 {
		selecting := false
		fs.Visit(func(fl *flag.Flag) { selecting = selecting || (fl.Name != "o" && fl.Name != "output") })
		if selecting {
			return &usageError{"runs", "flags --group, --site, --state, --kind and --limit select runs to list: not with a RUN"}
		}
		return c.showRun(ctx, pos[0], *out)
	}
	if f.Limit < 1 || f.Limit > 1000 {
		return &usageError{"runs", fmt.Sprintf("flag --limit must be 1 to 1000, not %d", f.Limit)}
	}
	page, err := c.API.ListRuns(ctx, f)
	if err != nil {
		return err
	}
	if *out != OutputTable {
		return encode(c.Stdout, *out, page.Items)
	}
	color := c.colorOn()
	var t table
	t.rowText("ID", "KIND", "GROUP", "MODE", "STATE", "CREATED", "RTO")
	for _, r := range page.Items {
		t.row(cell{text: r.ID}, cell{text: r.Kind}, cell{text: dash(r.Group)}, cell{text: dash(r.Mode)},
			cell{r.State, runColor(r.State)}, cell{text: r.Created.In(c.loc()).Format("2006-01-02 15:04:05")},
			cell{text: secs(r.RTOSeconds)})
	}
	return t.write(c.Stdout, color)
}

// showRun prints one run: what watch's last frame shows, once.
func (c *CLI) showRun(ctx context.Context, id, out string) error {
	run, err := c.API.GetRun(ctx, id)
	if err != nil {
		return err
	}
	if out != OutputTable {
		return encode(c.Stdout, out, run)
	}
	w := &watcher{c: c, id: id, color: c.colorOn(), now: c.now}
	_, err = fmt.Fprint(c.Stdout, w.frame(run, c.termWidth()))
	return err
}

// list prints the groups, sites or backends, every page.
func (c *CLI) list(ctx context.Context, what string, args []string) error {
	fs := flags(what)
	out := c.outputFlag(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := checkOutput(what, *out); err != nil {
		return err
	}
	var t table
	var items any
	switch what {
	case "sites":
		sites, err := all(ctx, c.API.ListSites)
		if err != nil {
			return err
		}
		items = sites
		t.rowText("NAME", "DESCRIPTION")
		for _, s := range sites {
			t.rowText(s.Name, dash(s.Description))
		}
	case "backends":
		backends, err := all(ctx, c.API.ListBackends)
		if err != nil {
			return err
		}
		items = backends
		t.rowText("NAME", "SITE", "TYPE", "REPLICATION", "ACTIVE BACKEND", "FROZEN", "MEMBERS")
		for _, b := range backends {
			t.rowText(b.Name, b.Site, b.Type, dash(b.ReplicationStatus), dash(b.ActiveBackendID),
				fmt.Sprint(b.Frozen), fmt.Sprint(len(b.Members)))
		}
	case "groups":
		groups, err := all(ctx, c.API.ListGroups)
		if err != nil {
			return err
		}
		items = groups
		t.rowText("NAME", "PRIMARY", "DR", "ACTIVE", "RPO", "SERVERS", "VOLUMES")
		for _, g := range groups {
			t.rowText(g.Name, g.PrimarySite, g.DRSite, activeSite(g),
				(time.Duration(g.RPOSeconds) * time.Second).String(), fmt.Sprint(len(g.Servers())), fmt.Sprint(len(g.Volumes)))
		}
	}
	if *out != OutputTable {
		return encode(c.Stdout, *out, items)
	}
	return t.write(c.Stdout, c.colorOn())
}

// all reads every page of a collection.
func all[T any](ctx context.Context, list func(context.Context, apiclient.ListOptions) (apiclient.Page[T], error)) ([]T, error) {
	o := apiclient.ListOptions{Limit: 1000}
	items := []T{}
	for {
		p, err := list(ctx, o)
		if err != nil {
			return nil, err
		}
		items = append(items, p.Items...)
		if o.PageToken = p.NextPageToken; o.PageToken == "" {
			return items, nil
		}
	}
}

// activeSite is where a group runs now.
func activeSite(g ferry.Group) string {
	if g.ActiveSite == "" {
		return g.PrimarySite
	}
	return g.ActiveSite
}

// runColor colours a run state: green done, red failed, yellow waiting
// for someone, blue moving.
func runColor(state string) string {
	switch state {
	case ferry.RunCompleted:
		return green
	case ferry.RunFailed, ferry.RunRolledBack, ferry.RunAborted:
		return red
	case ferry.RunWaitingApproval, ferry.RunPaused:
		return yellow
	case ferry.RunRunning, ferry.RunPending:
		return blue
	}
	return ""
}
