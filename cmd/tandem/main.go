// Command tandem is the operator's tool: it creates tandem's tables, shows
// the services registry, and answers what is safe to do next.
//
// Exit codes:
//
//	0  success
//	1  an operation failed
//	2  bad input (flags, DSN, identifiers, unknown names)
//	3  blocked: the next step is not safe yet (status, moves advance)
//	4  the database or NATS could not be reached
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// Exit codes, documented in the package comment and in `tandem --help`.
const (
	exitOK          = 0
	exitFailed      = 1
	exitBadInput    = 2
	exitBlocked     = 3
	exitUnreachable = 4
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
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ro *dialect.ReadOnlyError
	if dialect.IsReadOnly(err) && !errors.As(err, &ro) {
		// The engine refused a write: say the database is read-only,
		// not that it is unreachable or that the command failed oddly.
		err = &dialect.ReadOnlyError{DSN: dialect.RedactDSN(a.dsn), Err: err}
	}
	code := exitCode(err)
	var blocked *blockedError
	if !errors.As(err, &blocked) { // a blocked report was already printed
		fmt.Fprintln(stderr, "tandem:", err)
	}
	return code
}

// blockedError means a command ran fine and found the next step blocked.
type blockedError struct{ reason string }

func (e *blockedError) Error() string { return "blocked: " + e.reason }

// usageError marks bad flags or arguments.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var blocked *blockedError
	var usage *usageError
	switch {
	case errors.As(err, &blocked):
		return exitBlocked
	case errors.Is(err, dialect.ErrReadOnly):
		// A write on a read-only database cannot succeed as things stand.
		return exitBadInput
	case errors.Is(err, dialect.ErrUnreachable), errors.Is(err, errNATSUnreachable):
		return exitUnreachable
	case errors.As(err, &usage), errors.Is(err, dialect.ErrBadDSN), errors.Is(err, dialect.ErrBadURL), errors.Is(err, dialect.ErrBadIdentifier),
		errors.Is(err, services.ErrInvalid), errors.Is(err, services.ErrNotFound), errors.Is(err, schema.ErrTooNew),
		errors.Is(err, dualwrite.ErrUnknownMove), errors.Is(err, dualwrite.ErrNotAdjacent), errors.Is(err, dualwrite.ErrPlan),
		errors.Is(err, move.ErrInvalid), errors.Is(err, move.ErrBadPhase), errors.Is(err, dualwrite.ErrDrift), errors.Is(err, dualwrite.ErrGoOnly),
		errors.Is(err, move.ErrSchema), errors.Is(err, dialect.ErrBadExpression), errors.Is(err, dualwrite.ErrInvalidOption):
		return exitBadInput
	}
	return exitFailed
}

type app struct {
	plan         string
	planExplicit bool // --plan or TANDEM_PLAN named it: it must exist
	// started is when the command started, before it read anything.
	started time.Time
	dsn     string
	natsURL string
	json    bool
	verbose bool
	stdout  io.Writer
	stderr  io.Writer
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

Exit codes: 0 ok, 1 failed, 2 bad input, 3 blocked (the next step is not
safe yet), 4 database or NATS unreachable.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
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
	pf.BoolVar(&a.json, "json", false, "print JSON for machines")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "log what happens to stderr")
	a.addPlanFlag(root)
	root.AddCommand(a.schemaCommand(), a.servicesCommand(), a.statusCommand())
	for _, add := range extraCommands {
		root.AddCommand(add(a))
	}
	return root
}

// extraCommands lets other files of this command add their subcommands.
var extraCommands []func(*app) *cobra.Command

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func (a *app) logger() *slog.Logger {
	if !a.verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openDB opens the database; a SQLite file must exist already, so a typo
// in --db fails instead of creating an empty database (only `schema ensure`
// creates one, through openOrCreateDB).
func (a *app) openDB(ctx context.Context) (*dialect.DB, error) {
	return dialect.Open(ctx, a.dsn, dialect.WithLogger(a.logger()), dialect.MustExist())
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
