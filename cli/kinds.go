package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
)

// kindVerb is a verb that starts one kind of run on one scope.
type kindVerb struct {
	kind  string
	scope string // group, site, backend or share: what the argument names
	// modes: whether --unplanned applies.
	modes bool
	// target: what --target names, "" when it does not apply.
	target string
	// prompt, when set, asks for confirmation unless --yes (runs that
	// change production).
	prompt string
}

// kindVerbs are the run kinds a verb of their own starts; `ferry run KIND`
// starts any of them.
var kindVerbs = map[string]kindVerb{
	"protect":          {kind: ferry.KindProtect, scope: "group", prompt: "Establish replication of group %s"},
	"unprotect":        {kind: ferry.KindUnprotect, scope: "group", prompt: "Remove the DR replicas of group %s"},
	"reprotect":        {kind: ferry.KindReprotect, scope: "group", prompt: "Reverse replication of group %s"},
	"failback":         {kind: ferry.KindFailback, scope: "group", prompt: "Fail group %s back to its primary site"},
	"drill":            {kind: ferry.KindDrill, scope: "group"},
	"evacuate":         {kind: ferry.KindEvacuate, scope: "site", modes: true, prompt: "Evacuate site %s: fail over every group that runs there"},
	"backend-failover": {kind: ferry.KindBackendFailover, scope: "backend", target: "replication target id, or default to fail back", prompt: "Fail backend %s over"},
	"share-promote":    {kind: ferry.KindSharePromote, scope: "share", target: "site of the replica to promote", prompt: "Promote a replica of share %s"},
}

func init() {
	names := make([]string, 0, len(kindVerbs))
	for name := range kindVerbs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		kv := kindVerbs[name]
		Verbs = append(Verbs, name)
		u := name + " " + strings.ToUpper(kv.scope)
		if kv.modes {
			u += " [--unplanned]"
		}
		if kv.target != "" {
			u += " [--target T]"
		}
		if kv.kind == ferry.KindDrill {
			u += " [--hold 30m]"
		}
		if kv.kind == ferry.KindEvacuate {
			u += " [--concurrency N]"
		}
		if kv.scope == "group" || kv.kind == ferry.KindEvacuate {
			u += " [--skip-approval]"
		}
		usages[name] = u + " [--dry-run] [--yes] [--detach]"
	}
	Verbs = append(Verbs, "run", "replication")
	usages["run"] = "run KIND [--group G | --site S | --backend B | --share SH] [--mode planned|unplanned] [--target T] [--hold D] [--concurrency N] [--dry-run] [--yes] [--detach]"
	usages["replication"] = "replication show GROUP [-o table|json|yaml] | ferry replication suspend|resume GROUP [--dry-run] [--yes] [--detach]"
}

// startFlags are the flags every run-starting verb takes.
type startFlags struct {
	unplanned, yes, detach, dryRun, skipApproval bool
	target                                       string
	hold                                         time.Duration
	concurrency                                  int
}

func (sf *startFlags) register(verb string, withModes bool) *flag.FlagSet {
	fs := flags(verb)
	if withModes {
		fs.BoolVar(&sf.unplanned, "unplanned", false, "the site is gone: fence and force-promote")
	}
	fs.BoolVar(&sf.yes, "yes", false, "do not ask for confirmation")
	fs.BoolVar(&sf.detach, "detach", false, "start the run and return without watching it")
	fs.BoolVar(&sf.dryRun, "dry-run", false, "show the steps, what would be touched and the preconditions; start nothing")
	fs.BoolVar(&sf.skipApproval, "skip-approval", false, "do not wait for an approval the group's policy asks for")
	fs.StringVar(&sf.target, "target", "", "the run's target")
	fs.DurationVar(&sf.hold, "hold", 0, "keep a drill's bubble open this long for manual testing")
	fs.IntVar(&sf.concurrency, "concurrency", 0, "groups an evacuation fails over at once")
	return fs
}

func (c *CLI) kindVerb(ctx context.Context, verb string, args []string) error {
	kv := kindVerbs[verb]
	var sf startFlags
	fs := sf.register(verb, kv.modes)
	pos, err := parse(fs, args, strings.ToUpper(kv.scope))
	if err != nil {
		return err
	}
	if err := sf.check(verb, kv.kind, kv.target != ""); err != nil {
		return err
	}
	req := apiclient.StartRunRequest{Kind: kv.kind, Target: sf.target, RequestedBy: c.User}
	setScope(&req, kv.scope, pos[0])
	return c.start(ctx, verb, req, sf, kv.prompt, pos[0])
}

// runVerb starts any kind: ferry run KIND --group G ...
func (c *CLI) runVerb(ctx context.Context, args []string) error {
	var sf startFlags
	fs := sf.register("run", false)
	var group, site, backend, share, mode string
	fs.StringVar(&group, "group", "", "the group of a group run")
	fs.StringVar(&site, "site", "", "the site of an evacuation")
	fs.StringVar(&backend, "backend", "", "the backend of a backend-failover")
	fs.StringVar(&share, "share", "", "the share of a share-promote")
	fs.StringVar(&mode, "mode", "", "planned or unplanned")
	pos, err := parse(fs, args, "KIND")
	if err != nil {
		return err
	}
	if err := sf.check("run", pos[0], true); err != nil {
		return err
	}
	req := apiclient.StartRunRequest{Kind: pos[0], Group: group, Site: site, Backend: backend, Share: share,
		Mode: mode, Target: sf.target, RequestedBy: c.User}
	prompt := ""
	if pos[0] != ferry.KindDrill {
		// Every other kind changes production (or its protection).
		prompt = "Start a " + pos[0] + " run on %s"
	}
	return c.start(ctx, "run", req, sf, prompt, strings.Trim(strings.Join([]string{group, site, backend, share}, " "), " "))
}

// check refuses flags that mean nothing for the kind, instead of ignoring
// them.
func (sf startFlags) check(verb, kind string, targets bool) error {
	switch {
	case sf.hold != 0 && kind != ferry.KindDrill:
		return &usageError{verb, "flag --hold applies to drills only"}
	case sf.hold > 0 && sf.hold < time.Second:
		return &usageError{verb, "flag --hold is counted in whole seconds: give at least 1s"}
	case sf.skipApproval && (kind == ferry.KindBackendFailover || kind == ferry.KindSharePromote):
		return &usageError{verb, "flag --skip-approval does not apply to " + kind + " runs: they ask for no approval"}
	case sf.concurrency != 0 && kind != ferry.KindEvacuate:
		return &usageError{verb, "flag --concurrency applies to evacuations only"}
	case sf.target != "" && !targets:
		return &usageError{verb, "flag --target does not apply to " + kind + " runs"}
	}
	return nil
}

// replicationVerb shows a group's replication or suspends and resumes it.
func (c *CLI) replicationVerb(ctx context.Context, args []string) error {
	var sf startFlags
	fs := sf.register("replication", false)
	out := c.outputFlag(fs)
	pos, err := parse(fs, args, "show|suspend|resume", "GROUP")
	if err != nil {
		return err
	}
	if err := checkOutput("replication", *out); err != nil {
		return err
	}
	switch pos[0] {
	case "show":
		rep, err := c.API.GroupReplication(ctx, pos[1])
		if err != nil {
			return err
		}
		if *out != OutputTable {
			if rep.Items == nil {
				rep.Items = []apiclient.ReplicaStatus{}
			}
			if rep.Events == nil {
				rep.Events = []ferry.ReplicationEvent{}
			}
			return encode(c.Stdout, *out, rep)
		}
		var t table
		t.rowText("RESOURCE", "KIND", "SITE", "BACKEND", "STATE", "SEQ", "LAG", "RPO OK", "OBSERVED")
		for _, r := range rep.Items {
			ok, okColor := "yes", green
			if !r.RPOCompliant {
				ok, okColor = "no", red
			}
			t.row(cell{text: r.Resource}, cell{text: r.Kind}, cell{text: r.Site}, cell{text: r.Backend}, cell{text: r.State},
				cell{text: fmt.Sprint(r.Seq)}, cell{text: seconds(r.LagSecs)}, cell{ok, okColor}, cell{text: c.when(&r.Observed)})
		}
		color := c.colorOn()
		fmt.Fprintf(c.Stdout, "Group %s, RPO %s\n\n", clean(rep.Group), seconds(float64(rep.RPOSeconds)))
		if err := t.write(c.Stdout, color); err != nil {
			return err
		}
		if len(rep.Events) > 0 {
			var ev table
			ev.rowText("AT", "SEVERITY", "RESOURCE", "SITE", "MESSAGE")
			for _, e := range rep.Events[:min(len(rep.Events), 10)] {
				sevColor := yellow
				switch e.Severity {
				case ferry.SeverityCritical:
					sevColor = red
				case ferry.SeverityResolved:
					sevColor = green
				}
				ev.row(cell{text: c.when(&e.At)}, cell{e.Severity, sevColor}, cell{text: e.Resource}, cell{text: e.Site}, cell{text: e.Message})
			}
			fmt.Fprintln(c.Stdout, "\nRecent events:")
			return ev.write(c.Stdout, color)
		}
		return nil
	case "suspend":
		return c.start(ctx, "replication", apiclient.StartRunRequest{Kind: ferry.KindSuspend, Group: pos[1], RequestedBy: c.User},
			sf, "Suspend replication of group %s (its DR replicas will go stale)", pos[1])
	case "resume":
		return c.start(ctx, "replication", apiclient.StartRunRequest{Kind: ferry.KindResume, Group: pos[1], RequestedBy: c.User},
			sf, "", pos[1])
	}
	return &usageError{"replication", fmt.Sprintf("unknown action %q: want show, suspend or resume", pos[0])}
}

func setScope(req *apiclient.StartRunRequest, scope, value string) {
	switch scope {
	case "group":
		req.Group = value
	case "site":
		req.Site = value
	case "backend":
		req.Backend = value
	case "share":
		req.Share = value
	}
}

// start asks for confirmation where the run changes production, starts
// the run (or its dry run), and watches it unless detached.
func (c *CLI) start(ctx context.Context, verb string, req apiclient.StartRunRequest, sf startFlags, prompt, subject string) error {
	if sf.unplanned {
		req.Mode = ferry.ModeUnplanned
	}
	if sf.hold < 0 {
		return &usageError{verb, "flag --hold must not be negative"}
	}
	if sf.concurrency < 0 {
		return &usageError{verb, "flag --concurrency must not be negative"}
	}
	req.Options = apiclient.RunOptions{SkipApproval: sf.skipApproval, HoldSeconds: int(sf.hold / time.Second), Concurrency: sf.concurrency}
	if sf.dryRun {
		req.DryRun = true
		raw, err := c.API.DryRun(ctx, req)
		if err != nil {
			return err
		}
		return printDryRun(c, raw)
	}
	if prompt != "" && !sf.yes {
		fmt.Fprintf(c.Stdout, prompt+"? [y/N] ", subject)
		answer, _ := bufio.NewReader(c.Stdin).ReadString('\n')
		switch strings.ToLower(strings.TrimSpace(answer)) {
		case "y", "yes":
		default:
			fmt.Fprintln(c.Stdout, "Nothing was started.")
			return &exitError{ExitError}
		}
	}
	run, err := c.API.StartRun(ctx, req)
	var p *apiclient.ProblemError
	if errors.As(err, &p) && p.Status == 409 && p.RunID != "" {
		fmt.Fprintf(c.Stderr, "ferry %s: %s\nwatch it with: ferry watch %s\n", verb, clean(p.Detail), clean(p.RunID))
		return &exitError{ExitError}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "Run %s started: %s", clean(run.ID), clean(req.Kind))
	for _, s := range []string{req.Group, req.Site, req.Backend, req.Share} {
		if s != "" {
			fmt.Fprintf(c.Stdout, " of %s", clean(s))
		}
	}
	fmt.Fprintln(c.Stdout)
	if run.TemporalUIURL != "" {
		fmt.Fprintf(c.Stdout, "Temporal UI: %s\n", clean(run.TemporalUIURL))
	}
	if sf.detach {
		fmt.Fprintf(c.Stdout, "Watch it with: ferry watch %s\n", clean(run.ID))
		return nil
	}
	return c.watch(ctx, run.ID)
}

// printDryRun shows a dry run for a person.
func printDryRun(c *CLI, d apiclient.DryRunResponse) error {
	fmt.Fprintf(c.Stdout, "Dry run of %s: nothing was started.\n\nSteps:\n", clean(d.Kind))
	for i, s := range d.Steps {
		fmt.Fprintf(c.Stdout, "  %2d. %s\n", i+1, clean(s))
	}
	fmt.Fprintln(c.Stdout, "\nWould touch:")
	for _, t := range d.Touches {
		fmt.Fprintf(c.Stdout, "  - %s\n", clean(t))
	}
	fmt.Fprintln(c.Stdout, "\nPreconditions:")
	for _, p := range d.Preconditions {
		mark := "ok  "
		if !p.Passed {
			mark = "FAIL"
		}
		fmt.Fprintf(c.Stdout, "  [%s] %s", mark, clean(p.Name))
		if p.Detail != "" {
			fmt.Fprintf(c.Stdout, ": %s", clean(p.Detail))
		}
		fmt.Fprintln(c.Stdout)
	}
	for _, w := range d.Warnings {
		fmt.Fprintf(c.Stdout, "  warning: %s\n", clean(w))
	}
	if d.RTOEstimateSeconds != nil {
		fmt.Fprintf(c.Stdout, "\nRTO estimate: %.1fs (%s)\n", *d.RTOEstimateSeconds, clean(d.RTOBasis))
	} else {
		fmt.Fprintf(c.Stdout, "\nRTO estimate: none (%s)\n", clean(d.RTOBasis))
	}
	if !d.Ready {
		fmt.Fprintln(c.Stdout, "Not ready: a precondition failed.")
		return &exitError{ExitError}
	}
	return nil
}
