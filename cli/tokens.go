package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
)

// BootstrapFunc creates the first admin token of an install directly in
// its database (the API needs a token to make one). cmd/ferry provides it.
type BootstrapFunc func(ctx context.Context, name string, force bool) (ferry.Token, string, error)

// tokenVerb is `ferry token create|list|revoke|bootstrap`.
func (c *CLI) tokenVerb(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return &usageError{"token", "a subcommand is required: create, list, revoke or bootstrap"}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "create":
		return c.tokenCreate(ctx, rest)
	case "list":
		return c.tokenList(ctx, rest)
	case "revoke":
		return c.tokenRevoke(ctx, rest)
	case "bootstrap":
		return c.tokenBootstrap(ctx, rest)
	case "-h", "--help", "help":
		return flag.ErrHelp
	}
	return &usageError{"token", fmt.Sprintf("unknown subcommand %q (create, list, revoke or bootstrap)", sub)}
}

func (c *CLI) tokenCreate(ctx context.Context, args []string) error {
	fs := flags("token")
	name := fs.String("name", "", "the token's name (who or what uses it)")
	role := fs.String("role", "", "viewer, operator or admin")
	project := fs.String("project", "", "scope the token to one project's groups")
	expires := fs.Duration("expires", 0, "how long the token lives, e.g. 720h (default: until revoked)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *name == "":
		return &usageError{"token", "--name is required"}
	case *role == "":
		return &usageError{"token", "--role is required (" + strings.Join(ferry.Roles, ", ") + ")"}
	case *expires < 0:
		return &usageError{"token", "--expires must be positive"}
	case *expires > 0 && *expires < time.Second:
		return &usageError{"token", "--expires must be at least 1s"}
	}
	t, err := c.API.CreateToken(ctx, apiclient.CreateTokenRequest{
		Name: *name, Role: *role, Project: *project, ExpiresInSeconds: int64(*expires / time.Second),
	})
	if err != nil {
		return err
	}
	c.printSecret(t.Token, t.Secret)
	return nil
}

// printSecret shows a new token's secret, alone on stdout so that a script
// can take it (export FERRY_TOKEN=$(ferry token create ...)), and what it
// is on stderr.
func (c *CLI) printSecret(t ferry.Token, secret string) {
	fmt.Fprintln(c.Stdout, secret)
	what := t.Role
	if t.Project != "" {
		what += ", project " + t.Project
	}
	if t.ExpiresAt != nil {
		what += ", expires " + t.ExpiresAt.In(c.loc()).Format("2006-01-02 15:04 MST")
	}
	fmt.Fprintf(c.Stderr, "token %s %q (%s) created. This is the only time its secret is shown: keep it.\n"+
		"Use it with: export FERRY_TOKEN=<the line above>\n", clean(t.ID), t.Name, clean(what))
}

func (c *CLI) tokenList(ctx context.Context, args []string) error {
	fs := flags("token")
	out := c.outputFlag(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := checkOutput("token", *out); err != nil {
		return err
	}
	tokens, err := all(ctx, c.API.ListTokens)
	if err != nil {
		return err
	}
	if *out != OutputTable {
		return encode(c.Stdout, *out, tokens)
	}
	var tb table
	tb.rowText("ID", "NAME", "ROLE", "PROJECT", "STATE", "CREATED", "BY", "EXPIRES", "LAST USED")
	now := time.Now()
	{
		for _, t := range tokens {
			state := "active"
			switch {
			case t.RevokedAt != nil:
				state = "revoked"
			case !t.Active(now):
				state = "expired"
			}
			stateColor := green
			if state != "active" {
				stateColor = faint
			}
			tb.row(cell{text: t.ID}, cell{text: t.Name}, cell{text: t.Role}, cell{text: dash(t.Project)}, cell{state, stateColor},
				cell{text: c.when(&t.CreatedAt)}, cell{text: dash(t.CreatedBy)}, cell{text: c.when(t.ExpiresAt)}, cell{text: c.when(t.LastUsedAt)})
		}
	}
	return tb.write(c.Stdout, c.colorOn())
}

func (c *CLI) tokenRevoke(ctx context.Context, args []string) error {
	pos, err := parse(flags("token"), args, "ID")
	if err != nil {
		return err
	}
	t, err := c.API.RevokeToken(ctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "token %s %q revoked at %s\n", clean(t.ID), t.Name, c.when(t.RevokedAt))
	return nil
}

func (c *CLI) tokenBootstrap(ctx context.Context, args []string) error {
	fs := flags("token")
	name := fs.String("name", "admin", "the admin token's name")
	force := fs.Bool("force", false, "create it even though an active admin token exists")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if c.Bootstrap == nil {
		return fmt.Errorf("bootstrap writes to the database directly and is not available here")
	}
	t, secret, err := c.Bootstrap(ctx, *name, *force)
	if err != nil {
		return err
	}
	c.printSecret(t, secret)
	return nil
}

// when formats an optional time, "-" for none.
func (c *CLI) when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.In(c.loc()).Format("2006-01-02 15:04:05")
}
