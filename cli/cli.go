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
	ExitUsage = 2 // bad arguments or configuration
	// ExitRPO is `ferry status`'s answer when a group is past twice its
	// RPO (WARN) or three times / a replica in error (CRIT), for scripts
	// and probes. A lag between one and two RPOs is OK, as the monitor
	// judges it.
	ExitRPO = 3
)

// Verbs lists the verbs Run knows, for the ferry command to route.
var Verbs = []string{
	"apply", "failover", "runs", "watch",
	"approve", "pause", "resume", "abort", "retry", "skip",
	"report", "status", "groups", "sites", "backends", "token", "audit", "completion",
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
	// Output is the read verbs' default -o (config file or FERRY_OUTPUT);
	// empty means a table.
	Output string
	// NoColor turns colours off even on a terminal (as NO_COLOR does).
	NoColor bool
	// Services are the ferry command's other verbs (server, worker ...),
	// for shell completion.
	Services []string
	// Now is the clock of watch's elapsed times (default time.Now).
	Now func() time.Time
	// TokenFrom says where the token came from, for the hint when the API
	// refuses it (default FERRY_TOKEN).
	TokenFrom string
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
	// LookupEnv reads the environment (os.LookupEnv in the ferry
	// command): FERRY_API_URL, FERRY_TOKEN, FERRY_TOKEN_FILE, FERRY_API_CA,
	// FERRY_OUTPUT, FERRY_CONFIG, and XDG_CONFIG_HOME or HOME to find the
	// config file. Nil reads no environment and no default config file;
	// the fields above then stand for it.
	LookupEnv func(string) (string, bool)
	// Services are the ferry command's other verbs, for completion.
	Services []string
}

// Main runs one verb (args[0]) with its arguments against the API and
// returns the process exit code.
// Global flags (--config, --api-url, --api-ca, --token-file) may stand
// anywhere; the config file, the environment and the flags are layered as
// docs/cli.md says.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, o Options) int {
	global, args, err := splitGlobal(args)
	if err != nil {
		fmt.Fprintln(stderr, "ferry:", err)
		return ExitUsage
	}
	s, err := resolve(o, global)
	if err != nil {
		fmt.Fprintln(stderr, "ferry:", err)
		return ExitUsage
	}
	hc, err := httpClient(s.CAFile)
	if err != nil {
		fmt.Fprintln(stderr, "ferry:", err)
		return ExitUsage
	}
	c := &CLI{
		API:       apiclient.New(s.APIURL, hc, apiclient.WithToken(s.Token)),
		Stdin:     stdin,
		Stdout:    stdout,
		Stderr:    stderr,
		User:      userFromEnv(),
		Bootstrap: o.Bootstrap,
		Output:    s.Output,
		TokenFrom: s.TokenFrom,
		Services:  o.Services,
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
		return nil, fmt.Errorf("api_ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("api_ca: %s holds no PEM certificate", caFile)
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
	"runs":     "runs [--group G] [--site S] [--state S] [--kind K] [--limit N] [-o table|json|yaml] | ferry runs RUN [-o table|json|yaml]",
	"watch":    "watch RUN",
	"report":   "report RUN [-o FILE.html|.md|.json] [--format json|markdown|html]",
	"token": "token create --name N --role viewer|operator|admin [--project P] [--expires 720h]\n" +
		"  ferry token list [-o table|json|yaml] | ferry token revoke ID | ferry token bootstrap [--name N] [--force]",
	"audit":      "audit [--since 24h|TIME] [--token ID|NAME] [--limit N] [-o table|json|yaml]",
	"status":     "status [GROUP] [-o table|json|yaml]   (exit 3 when a group is past twice its RPO (WARN) or three times / a replica in error (CRIT))",
	"groups":     "groups [-o table|json|yaml]",
	"sites":      "sites [-o table|json|yaml]",
	"backends":   "backends [-o table|json|yaml]",
	"completion": "completion bash|zsh|fish",
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
	err := c.dispatch(ctx, verb, rest)
	var (
		ue *usageError
		ee *exitError
		he *helpError
		uv *unknownVerb
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &uv):
		fmt.Fprintf(c.Stderr, "ferry: unknown verb %q (one of %s)\n", verb, strings.Join(Verbs, ", "))
		return ExitUsage
	case errors.As(err, &he):
		fmt.Fprintf(c.Stdout, "usage: %s\n", usage(verb))
		if flags := flagHelp(he.fs); flags != "" {
			fmt.Fprintf(c.Stdout, "\nflags:\n%s", flags)
		}
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(c.Stdout, "usage: %s\n", usage(verb))
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.Stderr, "ferry %s: %s\nusage: %s\n", verb, clean(ue.msg), usage(verb))
		return ExitUsage
	case errors.As(err, &ee):
		return ee.code
	}
	// The error may carry the API's problem detail: clean it.
	fmt.Fprintf(c.Stderr, "ferry %s: %s\n", verb, clean(err.Error()))
	if hint := c.authHint(err); hint != "" {
		fmt.Fprintln(c.Stderr, clean(hint))
	}
	return ExitError
}

// unknownVerb is a verb Run does not know.
type unknownVerb struct{ verb string }

func (e *unknownVerb) Error() string { return "unknown verb " + e.verb }

// dispatch runs one verb and returns its error, as Run reads them.
func (c *CLI) dispatch(ctx context.Context, verb string, rest []string) error {
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
	case "status":
		err = c.status(ctx, rest)
	case "completion":
		err = c.completion(ctx, rest)
	default:
		if _, ok := kindVerbs[verb]; ok {
			err = c.kindVerb(ctx, verb, rest)
			break
		}
		return &unknownVerb{verb}
	}
	return err
}

// helpError is --help on a verb: Run prints its usage and flags.
type helpError struct{ fs *flag.FlagSet }

func (e *helpError) Error() string { return flag.ErrHelp.Error() }
func (e *helpError) Unwrap() error { return flag.ErrHelp }

// flagHelp lists a verb's flags, one a line, -o and --output together.
func flagHelp(fs *flag.FlagSet) string {
	var b strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "o" {
			return // shown with --output
		}
		name := "--" + f.Name
		if len(f.Name) == 1 {
			name = "-" + f.Name
		}
		if f.Name == "output" {
			name = "-o, --output"
		}
		arg, usage := flag.UnquoteUsage(f)
		if arg != "" {
			name += " " + arg
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(&b, "  %-28s %s%s\n", name, usage, def)
	})
	return b.String()
}

// authHint says what to do when the API refused the request's token.
func (c *CLI) authHint(err error) string {
	switch {
	case apiclient.IsStatus(err, http.StatusUnauthorized) && !c.API.HasToken():
		return "FERRY_TOKEN is not set: export FERRY_TOKEN=<an API token>, or set token_file in ~/.config/ferry/config.yaml\n" +
			"(an admin makes one with `ferry token create`; a new install gets its first with `ferry token bootstrap`; `ferry dev` prints one)"
	case apiclient.IsStatus(err, http.StatusUnauthorized):
		return "the API refused the token in " + c.tokenFrom() + ": ask an admin for a valid one"
	case apiclient.IsStatus(err, http.StatusForbidden):
		return "the token in " + c.tokenFrom() + " may not do this: ask an admin for a token with the role named above"
	}
	return ""
}

// tokenFrom names where the token came from.
func (c *CLI) tokenFrom() string {
	if c.TokenFrom == "" || c.TokenFrom == "the environment" {
		return "FERRY_TOKEN"
	}
	return c.TokenFrom
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
	return parseN(fs, args, len(what), what...)
}

// parseUpTo is parse with every positional argument optional.
func parseUpTo(fs *flag.FlagSet, args []string, what ...string) ([]string, error) {
	return parseN(fs, args, 0, what...)
}

// parseN parses flags and between need and len(what) positional
// arguments.
func parseN(fs *flag.FlagSet, args []string, need int, what ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpError{fs}
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
	case len(pos) < need:
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
	_, tty := termSize(f)
	return tty
}

// termWidth is the terminal's width in columns, 0 when unknown.
func (c *CLI) termWidth() int {
	f, ok := c.Stdout.(*os.File)
	if !ok {
		return 0
	}
	w, _ := termSize(f)
	return w
}

func (c *CLI) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
