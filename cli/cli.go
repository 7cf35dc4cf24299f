// Package cli holds the client verbs of the ferry command (apply, failover,
// runs, watch, approve ... report, groups, sites, backends). Each verb talks
// to the API through apiclient and writes to the given streams, so tests
// run them without a terminal.
package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ferrydr/ferry/apiclient"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // the API refused, a run ended otherwise than completed
	ExitUsage = 2 // bad arguments
)

// Verbs lists the verbs Run knows, for the ferry command to route.
var Verbs = []string{
	"apply", "failover", "runs", "watch",
	"approve", "pause", "resume", "abort", "retry", "skip",
	"report", "groups", "sites", "backends", "token", "audit",
}

// Usage lists every verb with its arguments, one a line, for ferry --help.
func Usage() string {
	var b strings.Builder
	for _, v := range Verbs {
		fmt.Fprintf(&b, "  %s\n", usage(v))
	}
	return b.String()
}

// IsVerb reports whether name is one of Verbs.
func IsVerb(name string) bool { return slices.Contains(Verbs, name) }

// CLI runs verbs against one API.
type CLI struct {
	API    *apiclient.Client
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// User is who asks: requested_by of runs, by of steering actions.
	User string
	// PollInterval is how often watch reads the run (default 500 ms).
	PollInterval time.Duration
	// TTY overrides terminal detection of Stdout when not nil.
	TTY *bool
	// Location is the time zone of printed times (default local).
	Location *time.Location
	// Bootstrap creates an install's first admin token in its database
	// (`ferry token bootstrap`); nil where there is no database to reach.
	Bootstrap BootstrapFunc
}

// Options say how Main reaches the API.
type Options struct {
	// APIURL is the API's base URL (FERRY_API_URL).
	APIURL string
	// Token is the bearer sent with every request (FERRY_TOKEN).
	Token string
	// CAFile is a PEM bundle of the certificate authorities that signed
	// the API's TLS certificate (FERRY_API_CA); empty means the system's.
	CAFile    string
	Bootstrap BootstrapFunc
}

// Main runs one verb (args[0]) with its arguments against the API and
// returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, o Options) int {
	hc, err := httpClient(o.CAFile)
	if err != nil {
		fmt.Fprintln(stderr, "ferry:", err)
		return ExitUsage
	}
	c := &CLI{
		API:       apiclient.New(o.APIURL, hc, apiclient.WithToken(o.Token)),
		Stdin:     stdin,
		Stdout:    stdout,
		Stderr:    stderr,
		User:      userFromEnv(),
		Bootstrap: o.Bootstrap,
	}
	return c.Run(ctx, args)
}

// httpClient trusts the certificate authorities in caFile, when set, for
// an API served with a private CA's certificate.
func httpClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("FERRY_API_CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("FERRY_API_CA: %s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

func userFromEnv() string {
	for _, k := range []string{"FERRY_USER", "USER", "USERNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// usageError is a bad argument: exit code 2.
type usageError struct {
	verb, msg string
}

func (e *usageError) Error() string { return e.msg }

// exitError carries an exit code without a message of its own (the verb
// has already said why).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

var usages = map[string]string{
	"apply":    "apply -f FILE",
	"failover": "failover GROUP [--unplanned] [--target SITE] [--dry-run] [--yes] [--detach] [--skip-approval] [--quiesce-policy abort|continue] [--fenced-out-of-band TEXT]",
	"runs":     "runs [--group G] [--site S] [--state S] [--kind K] [--limit N]",
	"watch":    "watch RUN",
	"report":   "report RUN [-o FILE.html|.md|.json] [--format json|markdown|html]",
	"token": "token create --name N --role viewer|operator|admin [--project P] [--expires 720h]\n" +
		"  ferry token list | ferry token revoke ID | ferry token bootstrap [--name N] [--force]",
	"audit":    "audit [--since 24h|TIME] [--token ID|NAME] [--limit N]",
	"groups":   "groups",
	"sites":    "sites",
	"backends": "backends",
}

func usage(verb string) string {
	if u, ok := usages[verb]; ok {
		return "ferry " + u
	}
	return "ferry " + verb + " RUN [--comment C]"
}

// Run runs the verb args[0] and returns the exit code.
func (c *CLI) Run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(c.Stderr, "ferry: a verb is required (one of %s)\n", strings.Join(Verbs, ", "))
		return ExitUsage
	}
	verb, rest := args[0], args[1:]
	var err error
	switch verb {
	case "apply":
		err = c.apply(ctx, rest)
	case "failover":
		err = c.failover(ctx, rest)
	case "runs":
		err = c.runs(ctx, rest)
	case "watch":
		err = c.watchVerb(ctx, rest)
	case "approve", "pause", "resume", "abort", "retry", "skip":
		err = c.steer(ctx, verb, rest)
	case "report":
		err = c.report(ctx, rest)
	case "groups", "sites", "backends":
		err = c.list(ctx, verb, rest)
	case "run":
		err = c.runVerb(ctx, rest)
	case "drill-schedule":
		err = c.drillSchedule(ctx, rest)
	case "schedules":
		err = c.schedules(ctx, rest)
	case "replication":
		err = c.replicationVerb(ctx, rest)
	case "token":
		err = c.tokenVerb(ctx, rest)
	case "audit":
		err = c.audit(ctx, rest)
	default:
		if _, ok := kindVerbs[verb]; ok {
			err = c.kindVerb(ctx, verb, rest)
			break
		}
		fmt.Fprintf(c.Stderr, "ferry: unknown verb %q (one of %s)\n", verb, strings.Join(Verbs, ", "))
		return ExitUsage
	}
	var (
		ue *usageError
		ee *exitError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(c.Stdout, "usage: %s\n", usage(verb))
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.Stderr, "ferry %s: %s\nusage: %s\n", verb, ue.msg, usage(verb))
		return ExitUsage
	case errors.As(err, &ee):
		return ee.code
	}
	fmt.Fprintf(c.Stderr, "ferry %s: %v\n", verb, err)
	if hint := c.authHint(err); hint != "" {
		fmt.Fprintln(c.Stderr, hint)
	}
	return ExitError
}

// authHint says what to do when the API refused the request's token.
func (c *CLI) authHint(err error) string {
	switch {
	case apiclient.IsStatus(err, http.StatusUnauthorized) && !c.API.HasToken():
		return "FERRY_TOKEN is not set: export FERRY_TOKEN=<an API token> (an admin makes one with `ferry token create`;\n" +
			"a new install gets its first with `ferry token bootstrap`; `ferry dev` prints one)"
	case apiclient.IsStatus(err, http.StatusUnauthorized):
		return "the API refused the token in FERRY_TOKEN: ask an admin for a valid one"
	case apiclient.IsStatus(err, http.StatusForbidden):
		return "the token in FERRY_TOKEN may not do this: ask an admin for a token with the role named above"
	}
	return ""
}

// flags is a verb's flag set that reports errors instead of printing them.
func flags(verb string) *flag.FlagSet {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses flags and positional arguments in any order, and checks
// that there are exactly n positional arguments, named by what.
func parse(fs *flag.FlagSet, args []string, what ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{fs.Name(), err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	switch {
	case len(pos) < len(what):
		return nil, &usageError{fs.Name(), fmt.Sprintf("missing argument %s", what[len(pos)])}
	case len(pos) > len(what):
		return nil, &usageError{fs.Name(), fmt.Sprintf("unexpected argument %q", pos[len(what)])}
	}
	for i, p := range pos {
		if strings.TrimSpace(p) == "" {
			return nil, &usageError{fs.Name(), fmt.Sprintf("argument %s is empty", what[i])}
		}
	}
	return pos, nil
}

func (c *CLI) loc() *time.Location {
	if c.Location != nil {
		return c.Location
	}
	return time.Local
}

// isTTY reports whether Stdout is a terminal.
func (c *CLI) isTTY() bool {
	if c.TTY != nil {
		return *c.TTY
	}
	f, ok := c.Stdout.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
