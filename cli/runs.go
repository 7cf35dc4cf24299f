package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

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
		fmt.Fprintf(c.Stderr, "ferry failover: %s\nwatch it with: ferry watch %s\n", clean(p.Detail), clean(p.RunID))
		return &exitError{ExitError}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "Run %s started: failover of group %s to site %s (%s)\n", clean(run.ID), clean(name), clean(run.Site), mode)
	if run.TemporalUIURL != "" {
		fmt.Fprintf(c.Stdout, "Temporal UI: %s\n", clean(run.TemporalUIURL))
	}
	if *detach {
		fmt.Fprintf(c.Stdout, "Watch it with: ferry watch %s\n", clean(run.ID))
		return nil
	}
	return c.watch(ctx, run.ID)
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
	fmt.Fprintf(c.Stdout, "Run %s: %s accepted; the run is %s\n", clean(pos[0]), action, clean(run.State))
	return nil
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
