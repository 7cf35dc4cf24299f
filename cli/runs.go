package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
)

// failover starts a failover of a group, after asking unless --yes, and
// watches it unless --detach.
func (c *CLI) failover(ctx context.Context, args []string) error {
	fs := flags("failover")
	unplanned := fs.Bool("unplanned", false, "the primary site is gone: fence it and force-promote")
	target := fs.String("target", "", "target site (default: the group's DR site)")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	detach := fs.Bool("detach", false, "start the run and return without watching it")
	skipApproval := fs.Bool("skip-approval", false, "do not wait for an approval the group's policy asks for")
	quiesce := fs.String("quiesce-policy", "", "abort or continue when guests cannot be quiesced")
	dryRun := fs.Bool("dry-run", false, "show the steps, what would be touched and the preconditions; start nothing")
	fenced := fs.String("fenced-out-of-band", "", "with --unplanned: how the old primary was cut off outside Ferry, for storage that cannot fence (recorded in the run)")
	pos, err := parse(fs, args, "GROUP")
	if err != nil {
		return err
	}
	if *fenced != "" && !*unplanned {
		return &usageError{"failover", "flag --fenced-out-of-band needs --unplanned"}
	}
	switch *quiesce {
	case "", ferry.QuiesceAbort, ferry.QuiesceContinue:
	default:
		return &usageError{"failover", fmt.Sprintf("flag --quiesce-policy must be abort or continue, not %q", *quiesce)}
	}
	name := pos[0]
	mode := ferry.ModePlanned
	if *unplanned {
		mode = ferry.ModeUnplanned
	}
	if *dryRun {
		d, err := c.API.DryRun(ctx, apiclient.StartRunRequest{
			Kind: ferry.KindFailover, Group: name, Mode: mode, Target: *target,
			Options: apiclient.RunOptions{QuiescePolicy: *quiesce, SkipApproval: *skipApproval, FencedOutOfBand: *fenced}, RequestedBy: c.User,
		})
		if err != nil {
			return err
		}
		return printDryRun(c, d)
	}
	to := *target
	if to == "" {
		g, err := c.API.GetGroup(ctx, name)
		if err != nil {
			return err
		}
		to = g.DRSite
		if g.ActiveSite == g.DRSite {
			to = g.PrimarySite
		}
	}
	if !*yes {
		fmt.Fprintf(c.Stdout, "Fail over group %s to site %s (%s)? [y/N] ", name, to, mode)
		answer, _ := bufio.NewReader(c.Stdin).ReadString('\n')
		switch strings.ToLower(strings.TrimSpace(answer)) {
		case "y", "yes":
		default:
			fmt.Fprintln(c.Stdout, "Not failing over: nothing was started.")
			return &exitError{ExitError}
		}
	}
	run, err := c.API.StartRun(ctx, apiclient.StartRunRequest{
		Kind:        ferry.KindFailover,
		Group:       name,
		Mode:        mode,
		Target:      *target,
		Options:     apiclient.RunOptions{QuiescePolicy: *quiesce, SkipApproval: *skipApproval, FencedOutOfBand: *fenced},
		RequestedBy: c.User,
	})
	var p *apiclient.ProblemError
	if errors.As(err, &p) && p.Status == 409 && p.RunID != "" {
		fmt.Fprintf(c.Stderr, "ferry failover: %s\nwatch it with: ferry watch %s\n", p.Detail, p.RunID)
		return &exitError{ExitError}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "Run %s started: failover of group %s to site %s (%s)\n", run.ID, name, run.Site, mode)
	if run.TemporalUIURL != "" {
		fmt.Fprintf(c.Stdout, "Temporal UI: %s\n", run.TemporalUIURL)
	}
	if *detach {
		fmt.Fprintf(c.Stdout, "Watch it with: ferry watch %s\n", run.ID)
		return nil
	}
	return c.watch(ctx, run.ID)
}

// runs prints a table of runs, newest first.
func (c *CLI) runs(ctx context.Context, args []string) error {
	fs := flags("runs")
	var f apiclient.RunFilter
	fs.StringVar(&f.Group, "group", "", "only runs of this group")
	fs.StringVar(&f.Site, "site", "", "only runs targeting this site")
	fs.StringVar(&f.State, "state", "", "only runs in this state")
	fs.StringVar(&f.Kind, "kind", "", "only runs of this kind")
	fs.IntVar(&f.Limit, "limit", 50, "at most this many runs")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if f.Limit < 1 || f.Limit > 1000 {
		return &usageError{"runs", fmt.Sprintf("flag --limit must be 1 to 1000, not %d", f.Limit)}
	}
	page, err := c.API.ListRuns(ctx, f)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tGROUP\tMODE\tSTATE\tCREATED\tRTO")
	for _, r := range page.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Kind, dash(r.Group), dash(r.Mode), r.State,
			r.Created.In(c.loc()).Format("2006-01-02 15:04:05"), secs(r.RTOSeconds))
	}
	return tw.Flush()
}

// steer sends a steering action to a run.
func (c *CLI) steer(ctx context.Context, action string, args []string) error {
	fs := flags(action)
	comment := fs.String("comment", "", "a comment kept in the run's record")
	pos, err := parse(fs, args, "RUN")
	if err != nil {
		return err
	}
	run, err := c.API.Steer(ctx, pos[0], action, apiclient.SteerRequest{By: c.User, Comment: *comment})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "Run %s: %s accepted; the run is %s\n", pos[0], action, run.State)
	return nil
}

// list prints the groups, sites or backends, every page.
func (c *CLI) list(ctx context.Context, what string, args []string) error {
	if _, err := parse(flags(what), args); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	o := apiclient.ListOptions{Limit: 1000}
	switch what {
	case "sites":
		fmt.Fprintln(tw, "NAME\tDESCRIPTION")
		for {
			p, err := c.API.ListSites(ctx, o)
			if err != nil {
				return err
			}
			for _, s := range p.Items {
				fmt.Fprintf(tw, "%s\t%s\n", s.Name, dash(s.Description))
			}
			if o.PageToken = p.NextPageToken; o.PageToken == "" {
				break
			}
		}
	case "backends":
		fmt.Fprintln(tw, "NAME\tSITE\tTYPE\tREPLICATION\tACTIVE BACKEND\tFROZEN\tMEMBERS")
		for {
			p, err := c.API.ListBackends(ctx, o)
			if err != nil {
				return err
			}
			for _, b := range p.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%t\t%d\n", b.Name, b.Site, b.Type,
					dash(b.ReplicationStatus), dash(b.ActiveBackendID), b.Frozen, len(b.Members))
			}
			if o.PageToken = p.NextPageToken; o.PageToken == "" {
				break
			}
		}
	case "groups":
		fmt.Fprintln(tw, "NAME\tPRIMARY\tDR\tACTIVE\tRPO\tSERVERS\tVOLUMES")
		for {
			p, err := c.API.ListGroups(ctx, o)
			if err != nil {
				return err
			}
			for _, g := range p.Items {
				active := g.ActiveSite
				if active == "" {
					active = g.PrimarySite
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", g.Name, g.PrimarySite, g.DRSite, active,
					time.Duration(g.RPOSeconds)*time.Second, len(g.Servers()), len(g.Volumes))
			}
			if o.PageToken = p.NextPageToken; o.PageToken == "" {
				break
			}
		}
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func secs(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1fs", *v)
}
