// Command tandem is the operator's tool: it creates tandem's tables, shows
// the services registry, and answers what is safe to do next.
//
// Exit codes (exitcodes.go; docs/cli-json.md):
//
//	0    ok
//	1    an operation failed
//	2    bad input, or a step that can never succeed as things stand
//	3    blocked: not yet; run the same command again later
//	4    the database or NATS could not be reached
//	5    needs attention: waiting will not fix it, someone must act
//	130  interrupted by SIGINT or SIGTERM
//
// With --json every output is one JSON document (streams: one object a
// line), and every error one JSON object on stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/services"
)

// defaultDSN is the embedded default: a SQLite file in the working directory.
const defaultDSN = "sqlite://tandem.db"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code; tests call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, started: time.Now()}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := refuseUnknownBeforeHelp(root, args)
	if err == nil {
		err = root.ExecuteContext(ctx)
	}
	if err == nil {
		return exitOK
	}
	var ro *dialect.ReadOnlyError
	if dialect.IsReadOnly(err) && !errors.As(err, &ro) {
		// The engine refused a write: say the database is read-only,
		// not that it is unreachable or that the command failed oddly.
		err = &dialect.ReadOnlyError{DSN: dialect.RedactDSN(a.dsn), Err: err}
	}
	if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		// A signal stopped the run: whatever failed on the way out, the
		// cause is the interruption.
		err = fmt.Errorf("%w: %w", errInterrupted, err)
	}
	code, name := exitCode(err)
	if a.json || jsonRequested(args) {
		if a.command == "" {
			a.command = commandName(root, args)
		}
		printError(stderr, a.command, name, code, err)
		return code
	}
	var oc *outcomeError
	if !errors.As(err, &oc) || !oc.reported { // a verdict's report was already printed
		fmt.Fprintln(stderr, "tandem:", err)
	}
	return code
}

// jsonRequested finds --json on a command line that failed before its
// flags were parsed.
func jsonRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--json" || a == "--json=true" {
			return true
		}
	}
	return false
}

// commandName is the path of the command args name, without "tandem".
func commandName(root *cobra.Command, args []string) string {
	c, _, err := root.Find(args)
	if err != nil || c == nil {
		return ""
	}
	return strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), root.Name()), " ")
}

type app struct {
	plan         string
	planExplicit bool // --plan or TANDEM_PLAN named it: it must exist
	// started is when the command started, before it read anything.
	started time.Time
	dsn     string
	natsURL string
	// missingAfter is --missing-after: the heartbeat age after which an
	// instance shows as missing; the fleet's processes must agree on it.
	missingAfter time.Duration
	json         bool
	verbose      bool
	// command is the running command's path without "tandem" ("moves
	// list"): the "command" of its JSON documents.
	command string
	// logFormat is --log-format; log is the logger built from it and
	// --verbose on first use (see logger).
	logFormat string
	log       *slog.Logger
	stdout    io.Writer
	stderr    io.Writer
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "tandem",
		Short: "Rolling upgrades with changing RPC and schema: what is safe to do next?",
		Long: `tandem keeps releases R and R+1 compatible during a rolling upgrade and
tells the operator what is safe to do next.

The database comes from --db or TANDEM_DB, in one of these forms:
  sqlite:///abs/path.db   (or a bare file path; the default is ./tandem.db)
  postgres://user:pass@host:port/db?sslmode=disable
  mysql://user:pass@host:port/db

Moves are read from the ledger, where each move's definition is recorded
the first time it is applied; --plan FILE (or TANDEM_PLAN; ./tandem-plan.yaml
when present) adds moves it does not know yet, and must match the others.
A --plan or TANDEM_PLAN naming a missing file is bad input.

With --json, every output is a JSON document with a "schema" key (see
docs/cli-json.md); streaming commands print one JSON object a line; every
error is one JSON object on stderr with "code", "exit" and "message".

` + exitCodeHelp(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       readVersion().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.dsn, "db", envOr("TANDEM_DB", defaultDSN), "database DSN (env TANDEM_DB)")
	pf.StringVar(&a.natsURL, "nats", os.Getenv("TANDEM_NATS"), "NATS URL to announce registry changes on (env TANDEM_NATS); empty: caches refresh on their TTL")
	// A default taken from the environment may hold a password: help shows
	// where it came from and its redacted form, never the value itself.
	if v := os.Getenv("TANDEM_DB"); v != "" {
		pf.Lookup("db").DefValue = "(from TANDEM_DB) " + dialect.RedactDSN(v)
	}
	if v := os.Getenv("TANDEM_NATS"); v != "" {
		pf.Lookup("nats").DefValue = "(from TANDEM_NATS) " + dialect.RedactURL(v)
	}
	pf.DurationVar(&a.missingAfter, "missing-after", services.DefaultMissingAfter, "heartbeat age after which an instance is missing: the value the fleet's registries use (services.MissingAfterFor its heartbeat interval)")
	pf.BoolVar(&a.json, "json", false, "print JSON for machines")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "log what happens to stderr")
	a.addPlanFlag(root)
	a.addLogFlag(root) // after addPlanFlag: it wraps the plan check
	root.AddCommand(a.schemaCommand(), a.servicesCommand(), a.statusCommand())
	for _, add := range extraCommands {
		root.AddCommand(add(a))
	}
	a.addCompletion(root)
	root.SetHelpCommand(helpCommand(root))
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command that only groups others
// (tandem, tandem moves, ...) refuse an unknown subcommand with exit 2,
// naming the ones it has, instead of printing its help and exiting 0.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Run != nil || c.RunE != nil {
		return
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		return unknownCommand(cmd, args[0])
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

// unknownCommand is the refusal of a name parent does not have, with the
// names it has and the closest ones.
func unknownCommand(parent *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, parent.CommandPath())
	if parent.SuggestionsMinimumDistance <= 0 {
		parent.SuggestionsMinimumDistance = 2
	}
	if s := parent.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
	}
	var names []string
	for _, sub := range parent.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	msg += fmt.Sprintf(" (%s has: %s; see %s --help)", parent.CommandPath(), strings.Join(names, ", "), parent.CommandPath())
	return &unknownCommandError{msg: msg}
}

// helpCommand replaces cobra's own, which prints "Unknown help topic" and
// exits 0: help for a command that does not exist is bad input (exit 2).
func helpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help shows the help of any command: tandem help moves advance.",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			target, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, sub := range target.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					names = append(names, sub.Name())
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			target := root
			for _, name := range args {
				var next *cobra.Command
				for _, sub := range target.Commands() {
					if sub.Name() == name || sub.HasAlias(name) {
						next = sub
						break
					}
				}
				if next == nil {
					return unknownCommand(target, name)
				}
				target = next
			}
			return target.Help()
		},
	}
}

// refuseUnknownBeforeHelp refuses an unknown subcommand given with --help
// (tandem moves frobnicate --help): cobra shows help before it checks
// arguments, which would print the group's help and exit 0.
func refuseUnknownBeforeHelp(root *cobra.Command, args []string) error {
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) {
		return nil // completion requests: cobra adds that command itself
	}
	if !slices.Contains(args, "--help") && !slices.Contains(args, "-h") {
		return nil // without help, the command's own Args check refuses
	}
	c, rest, err := root.Find(args)
	if err != nil || !c.HasSubCommands() || c.Args == nil {
		return nil
	}
	c.InitDefaultHelpFlag()
	if c.ParseFlags(rest) != nil {
		return nil // cobra reports the bad flag itself
	}
	if pos := c.Flags().Args(); len(pos) > 0 {
		return c.Args(c, pos)
	}
	return nil
}

// extraCommands lets other files of this command add their subcommands.
var extraCommands []func(*app) *cobra.Command

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// openDB opens the database; a SQLite file must exist already, so a typo
// in --db fails instead of creating an empty database (only `schema ensure`
// creates one, through openOrCreateDB).
func (a *app) openDB(ctx context.Context) (*dialect.DB, error) {
	return dialect.Open(ctx, a.dsn, dialect.WithLogger(a.logger()), dialect.WithMustExist())
}

func (a *app) openOrCreateDB(ctx context.Context) (*dialect.DB, error) {
	return dialect.Open(ctx, a.dsn, dialect.WithLogger(a.logger()))
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return &usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
		}
		return nil
	}
}
