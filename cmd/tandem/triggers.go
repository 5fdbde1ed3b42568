package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/triggers"
)

func init() {
	extraCommands = append(extraCommands, func(a *app) *cobra.Command { return a.triggersCommand() })
}

type triggersCmd struct {
	a    *app
	wait time.Duration
}

func (a *app) triggersCommand() *cobra.Command {
	tc := &triggersCmd{a: a}
	cmd := &cobra.Command{
		Use:   "triggers",
		Short: "The sync triggers of a move: print their SQL, install, drop, check",
		Long: `A move declared with triggers: true keeps old and new in sync inside the
database, for every writer (old releases, scripts, the sqlite3 shell, psql).
The column the writer changed wins; see package triggers.

Moves phase transitions install and drop the triggers themselves (and log
the step in tandem_steps); these commands are for inspecting and repairing
them. The move is read from the ledger, or from the plan (--plan, env
TANDEM_PLAN, default ./tandem-plan.yaml) for a move the ledger does not know.

Exit codes (tandem --help has the table): 0 ok, 1 failed, 2 bad input
(unknown move, a name that cannot be quoted safely, a missing column), 4 the
database could not be reached, 5 check found the triggers missing, changed
or stale (it names the command that repairs them).`,
	}
	cmd.PersistentFlags().DurationVar(&tc.wait, "lock-wait", 30*time.Second, "how long install and drop wait for tandem's lock on the move")
	cmd.AddCommand(tc.sql(), tc.install(), tc.drop(), tc.check())
	return cmd
}

// triggersError maps the package's errors to the command's exit codes.
func triggersError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, triggers.ErrInvalid), errors.Is(err, triggers.ErrSchema), errors.Is(err, move.ErrInvalid),
		errors.Is(err, dualwrite.ErrPlan), errors.Is(err, dualwrite.ErrUnknownMove), errors.Is(err, dualwrite.ErrDrift):
		return &usageError{err}
	}
	return err
}

func (tc *triggersCmd) sql() *cobra.Command {
	var engine string
	var drop bool
	cmd := &cobra.Command{
		Use:   "sql NAME",
		Short: "Print the statements that install (or --drop) a move's triggers",
		Long: `Print the statements, each ended by a line holding ";", for review or for a
migration tool. The engine comes from --dialect, or else from --db (which is
parsed, not connected to). No statement needs DELIMITER: send each one as
is through your driver or migration tool.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := tc.a.lookupMove(cmd.Context(), args[0])
			if err != nil {
				return triggersError(err)
			}
			d := dialect.Name(engine)
			if engine == "" {
				dsn, err := dialect.ParseDSN(tc.a.dsn)
				if err != nil {
					return err
				}
				d = dsn.Engine
			}
			set, err := triggers.ForMove(d, m)
			if err != nil {
				return triggersError(err)
			}
			if tc.a.json {
				return tc.a.printJSON(triggersSQLView(set))
			}
			if drop {
				fmt.Fprint(tc.a.stdout, set.DropSQL())
			} else {
				fmt.Fprint(tc.a.stdout, set.SQL())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&engine, "dialect", "", "sqlite, postgres or mysql (default: the engine of --db)")
	cmd.Flags().BoolVar(&drop, "drop", false, "print the statements that drop the triggers")
	return cmd
}

// withSet opens the database and generates the move's set for its engine.
func (tc *triggersCmd) withSet(ctx context.Context, name string, fn func(db *dialect.DB, set triggers.Set) error) error {
	db, err := tc.a.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	mg, err := tc.a.readManager(ctx, db, nil)
	if err != nil {
		return triggersError(err)
	}
	m, err := mg.Move(name)
	if err != nil {
		return triggersError(err)
	}
	set, err := triggers.ForMove(db.Engine(), m)
	if err != nil {
		return triggersError(err)
	}
	return fn(db, set)
}

// locked runs fn under the lock phase transitions of the move take, so a
// repair never races an advance.
func (tc *triggersCmd) locked(ctx context.Context, db *dialect.DB, name string, fn func(ctx context.Context, q dialect.Querier) error) error {
	return sqldialect.Of(db).Locked(ctx, db.SQLX(), "move:"+name, tc.wait, fn)
}

// ensureLedger checks that the ledger's tables exist and are current, so
// a repair made with these commands is logged in tandem_steps like any
// phase transition's; `tandem schema ensure` creates them (no other
// command writes the schema).
func (tc *triggersCmd) ensureLedger(ctx context.Context, db *dialect.DB, dryRun bool) error {
	if dryRun {
		return nil
	}
	return schema.Check(ctx, db, tandemTables())
}

func (tc *triggersCmd) printResult(res triggers.Result) error {
	if tc.a.json {
		return tc.a.printJSON(triggersResultView(res))
	}
	fmt.Fprintln(tc.a.stdout, res)
	for _, s := range res.SQL {
		fmt.Fprintf(tc.a.stdout, "  %s;\n", strings.ReplaceAll(s, "\n", "\n  "))
	}
	return nil
}

func (tc *triggersCmd) install() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "install NAME",
		Short: "Create missing triggers, replace changed ones, drop stale ones; leave the rest",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return tc.withSet(ctx, args[0], func(db *dialect.DB, set triggers.Set) error {
				opts := []triggers.Option{triggers.WithLogger(tc.a.logger())}
				if dryRun {
					opts = append(opts, triggers.WithDryRun())
				}
				if err := tc.ensureLedger(ctx, db, dryRun); err != nil {
					return err
				}
				var res triggers.Result
				err := tc.locked(ctx, db, args[0], func(ctx context.Context, q dialect.Querier) error {
					var err error
					res, err = triggers.Install(ctx, q, set, opts...)
					if err != nil || dryRun || !res.Changed() {
						return err
					}
					_, err = dualwrite.RecordStep(ctx, q, args[0], 0, "install-triggers", "tandem triggers install: "+res.String(), res.SQL, time.Now().UTC())
					return err
				})
				if err != nil {
					return triggersError(err)
				}
				return tc.printResult(res)
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the statements, change nothing")
	return cmd
}

func (tc *triggersCmd) drop() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "drop NAME",
		Short: "Drop every trigger of the move found in the database",
		Long: `Drop every trigger (and trigger function) named as the move's, whatever
generation of tandem created it. Dropping nothing is fine. The move need not
be in the plan any more: NAME alone is enough.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			db, err := tc.a.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			opts := []triggers.Option{triggers.WithLogger(tc.a.logger())}
			if dryRun {
				opts = append(opts, triggers.WithDryRun())
			}
			if err := tc.ensureLedger(ctx, db, dryRun); err != nil {
				return err
			}
			var res triggers.Result
			err = tc.locked(ctx, db, args[0], func(ctx context.Context, q dialect.Querier) error {
				var err error
				res, err = triggers.Drop(ctx, q, db.Engine(), args[0], opts...)
				if err != nil || dryRun || !res.Changed() {
					return err
				}
				_, err = dualwrite.RecordStep(ctx, q, args[0], 0, "drop-triggers", "tandem triggers drop: "+res.String(), res.SQL, time.Now().UTC())
				return err
			})
			if err != nil {
				return triggersError(err)
			}
			if !tc.a.json && !res.Changed() {
				fmt.Fprintf(tc.a.stdout, "Move '%s' has no triggers installed\n", args[0])
				return nil
			}
			return tc.printResult(res)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the statements, change nothing")
	return cmd
}

func (tc *triggersCmd) check() *cobra.Command {
	return &cobra.Command{
		Use:   "check NAME",
		Short: "Confirm the triggers are what the move's phase needs; exits 5 if not",
		Long: `Compare what the database holds with what the move's phase in the ledger
needs: from write-both to write-new every trigger present and as tandem
generates it now; once contracted, none left (contract drops them); at
legacy, none or all as generated. A move without triggers needs none.
Exits 5, naming the command that repairs it, when the database differs.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			db, err := tc.a.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			mg, err := tc.a.readManager(ctx, db, nil)
			if err != nil {
				return triggersError(err)
			}
			chk, err := mg.CheckTriggers(ctx, args[0])
			if err != nil {
				return triggersError(err)
			}
			var blocked error
			if !chk.AsExpected {
				blocked = attention(chk.Blocker.Message)
			}
			return tc.a.emit(triggersCheckView(chk), func(w io.Writer) { writeCheck(w, chk) }, blocked)
		},
	}
}

func writeCheck(w io.Writer, chk dualwrite.TriggerCheck) {
	verdict := chk.Summary
	switch {
	case chk.AsExpected && chk.Want == dualwrite.WantGenerated:
		verdict = "all present and as generated"
	case !chk.AsExpected:
		verdict = "NOT as the phase needs (" + chk.Want + "): " + chk.Blocker.Message
	}
	fmt.Fprintf(w, "Triggers of move '%s' on %s at %s: %s\n", chk.Move, chk.Dialect, chk.Phase, verdict)
	if len(chk.Objects) == 0 {
		return
	}
	tw := table(w)
	fmt.Fprintln(tw, "  NAME\tKIND\tTABLE\tSTATE")
	for _, o := range chk.Objects {
		tbl := o.Table
		if tbl == "" {
			tbl = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", o.Name, o.Kind, tbl, o.State)
	}
	tw.Flush()
}
