// Command ferry is Ferry's one binary: the API server, the Temporal worker,
// the cloud simulator, an all-in-one dev mode, and the client verbs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydr/ferry/cli"
	"github.com/ferrydr/ferry/config"
	"github.com/ferrydr/ferry/telemetry"
)

const usage = `ferry: disaster-recovery orchestration on Temporal

Services:
  ferry server      the HTTP API
  ferry worker      the Temporal worker (workflows and activities)
  ferry sim         the simulated multi-site cloud (a simulator, not a cloud)
  ferry dev         all of them in one process, with a Temporal dev server
                    and a seeded two-site demo

Keys:
  ferry payload-key new ID   a new line for the payload keyring
                             (FERRY_PAYLOAD_KEYS_FILE, docs/security.md)

Client verbs (talk to the API at FERRY_API_URL, or api_url in
~/.config/ferry/config.yaml; global flags --config FILE, --api-url URL,
--api-ca FILE, --token-file FILE; docs/cli.md):
%s
Every service prints its effective configuration with --print-config;
every verb explains itself with --help. Exit codes: 0 done, 1 failed or
refused, 2 bad arguments or configuration, 3 ferry status: a group is out
of its RPO.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the program, testable without a process: it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stdout, usage, cli.Usage())
		return 0
	}
	if args[0] == "payload-key" {
		return runPayloadKey(args[1:], stdout, stderr)
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(stderr, "ferry:", err)
		return 2
	}
	service := map[string]func(context.Context, config.Config, *slog.Logger, []string, io.Writer) error{
		"server": runServer,
		"worker": runWorker,
		"sim":    runSim,
		"dev":    runDev,
	}
	if fn, ok := service[args[0]]; ok {
		fs := flag.NewFlagSet("ferry "+args[0], flag.ContinueOnError)
		fs.SetOutput(stderr)
		printConfig := fs.Bool("print-config", false, "print the effective configuration (secrets masked) and exit")
		rest, ferr := parseServiceFlags(fs, args[1:])
		if ferr != nil {
			return 2
		}
		if *printConfig {
			cfg.Print(stdout)
			return 0
		}
		logger := newLogger(cfg, stderr).With("service", args[0])
		// Tracing, when the OTEL_ variables ask for it; flushed on exit.
		shutdownTracing, err := telemetry.SetupTracing(ctx, "ferry-"+args[0], logger)
		if err != nil {
			fmt.Fprintln(stderr, "ferry:", err)
			return 2
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := shutdownTracing(sctx); err != nil {
				logger.Warn("traces not flushed", "error", err)
			}
		}()
		err = fn(ctx, cfg, logger, rest, stdout)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("ferry "+args[0]+" stopped", "error", err)
			return 1
		}
		return 0
	}
	// The verbs read FERRY_API_URL, FERRY_TOKEN, FERRY_API_CA and the
	// client config file themselves (docs/cli.md: flags over env over file).
	return cli.Main(ctx, args, stdin, stdout, stderr, cli.Options{
		Bootstrap: bootstrapper(cfg), LookupEnv: os.LookupEnv,
		Services: []string{"server", "worker", "sim", "dev", "payload-key"},
	})
}

// parseServiceFlags takes --print-config and leaves the rest to the service.
func parseServiceFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	var own []string
	for _, a := range args {
		if a == "--print-config" || a == "-print-config" {
			own = append(own, a)
		} else {
			rest = append(rest, a)
		}
	}
	return rest, fs.Parse(own)
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel))); err != nil {
		level = slog.LevelInfo
	}
	// Request, run, group and trace ids on every line: docs/observability.md.
	return telemetry.NewLogger(w, cfg.LogFormat, level)
}
