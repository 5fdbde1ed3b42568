package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/backup"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/migfile"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

func init() {
	extraCommands = append(extraCommands, func(a *app) *cobra.Command { return a.movesCommand() })
}

// snapshotSource serves one registry snapshot already read.
type snapshotSource struct{ snap services.Snapshot }

func (s snapshotSource) Snapshot(context.Context) (services.Snapshot, error) { return s.snap, nil }

// historySource adds the registry's deleted instances (dualwrite.InstanceHistory).
type historySource struct {
	snapshotSource
	reg *services.Registry
}

func (s historySource) List(ctx context.Context, includeDeleted bool) ([]services.Instance, error) {
	return s.reg.List(ctx, includeDeleted)
}

// movesError maps the package's errors to the command's exit codes.
func movesError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dualwrite.ErrUnknownMove), errors.Is(err, dualwrite.ErrNotAdjacent), errors.Is(err, move.ErrInvalid),
		errors.Is(err, move.ErrBadPhase), errors.Is(err, dualwrite.ErrPlan), errors.Is(err, move.ErrSchema),
		errors.Is(err, dualwrite.ErrDrift), errors.Is(err, dualwrite.ErrGoOnly):
		return &usageError{err}
	}
	return err
}

type movesCmd struct {
	a       *app
	release int64
}

func (a *app) movesCommand() *cobra.Command {
	mc := &movesCmd{a: a}
	cmd := &cobra.Command{
		Use:   "moves",
		Short: "Column moves: phases, gates, backfill, verify, and the SQL of each step",
		Long: `Moves carry a column's data to another column (or another table) through
the phases legacy -> write-both -> read-new -> write-new -> contracted, one
gated step at a time. Each move's definition is recorded in the ledger the
first time it is applied (moves apply, the first advance, or the application's
dualwrite.New), and every command reads it from there: no plan file is needed
for a move the ledger knows. A plan (--plan, env TANDEM_PLAN, default
./tandem-plan.yaml if present; format in package dualwrite) declares moves the
ledger does not know yet, and must match what it records for the others.

Exit codes (tandem --help has the table): 0 ok; 2 bad input (unknown move,
phase not adjacent, invalid plan, a plan that differs from the recorded
definition) or a step that can never succeed (a rollback after finalize); 3
blocked, run it again later (instances still rolling, another runner holds
the move); 5 someone must act first (run the backfill or verify, finalize, an
instance missing); each blocker names the command to run.`,
	}
	cmd.PersistentFlags().Int64Var(&mc.release, "release", 0, "release of this runner, recorded in the ledger (at least 1; 0: not set)")
	cmd.AddCommand(mc.apply(), mc.show(), mc.list(), mc.advance(), mc.finalize(), mc.backfill(), mc.verify(), mc.sql())
	return cmd
}

// manager opens the database and the registry, records the plan's moves
// the ledger does not know yet (and checks the others against their
// recorded definitions), and manages every recorded move: commands that
// write use it.
func (mc *movesCmd) manager(ctx context.Context, opts ...dualwrite.Option) (*dualwrite.Manager, func(), error) {
	if err := mc.checkRelease(); err != nil {
		return nil, nil, err
	}
	moves, err := mc.a.declared()
	if err != nil {
		return nil, nil, err
	}
	reg, db, done, err := mc.a.registry(ctx)
	if err != nil {
		return nil, nil, err
	}
	opts = append([]dualwrite.Option{dualwrite.WithRegistry(reg), dualwrite.WithRelease(mc.release), dualwrite.WithLogger(mc.a.logger()),
		dualwrite.WithRecorded(), mc.a.planSource()}, opts...)
	mg, err := dualwrite.New(ctx, db, moves, opts...)
	if err != nil {
		done()
		return nil, nil, movesError(err)
	}
	return mg, done, nil
}

// checkRelease refuses a --release below 0 before anything is opened: a
// release is at least 1, and 0 (the default) means not set.
func (mc *movesCmd) checkRelease() error {
	if mc.release < 0 {
		return &usageError{fmt.Errorf("--release %d: %w", mc.release, &dualwrite.OptionError{Option: "release", Value: fmt.Sprint(mc.release), Reason: "a release is at least 1 (omit --release, or give 0, for none)"})}
	}
	return nil
}

// reader opens the database and the registry and builds a Manager that
// only reads (see app.readManager).
func (mc *movesCmd) reader(ctx context.Context) (*dualwrite.Manager, func(), error) {
	reg, db, done, err := mc.a.registry(ctx)
	if err != nil {
		return nil, nil, err
	}
	mg, err := mc.a.readManager(ctx, db, reg)
	if err != nil {
		done()
		return nil, nil, err
	}
	return mg, done, nil
}

func (mc *movesCmd) list() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Every move: phase, what each release does, what blocks the next phase, progress",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			mg, done, err := mc.reader(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			st, err := mg.Status(cmd.Context())
			if err != nil {
				return err
			}
			if mc.a.json {
				return mc.a.printJSON(movesView(st))
			}
			st.WriteText(mc.a.stdout)
			return nil
		},
	}
}

func (mc *movesCmd) advance() *cobra.Command {
	var to string
	var dryRun, yes bool
	var note, backupFile string
	cmd := &cobra.Command{
		Use:   "advance NAME",
		Short: "Move to the next phase (or --to an adjacent one, back within the rollback window)",
		Long: `Check the gate of the transition and, when it is open, apply its DDL steps
(each logged in tandem_steps) and record the new phase. --dry-run prints the
gate and the SQL and changes nothing. The first advance records the
definitions of the plan's moves the ledger does not know yet (as moves apply
does). When the gate is closed it exits 3 if waiting opens it (instances
still rolling, a backfill running), 5 if someone must act first (each
blocker names the command), 2 if it can never open (a rollback after
finalize).

The transition is decided and written under tandem's lock on the move, so
two advances started together make one transition: the second reports that
another runner advanced the move and changes nothing. A move already at
--to P is left as it is, exit 0, so a CI job can retry that form.

The contract (write-new -> contracted) cannot be undone: it drops the old
column and what it still holds. On a terminal it asks first; where no one
can answer (a script, CI) it is refused, exit 2, unless --yes is given.
--backup FILE first writes a consistent copy of the database into FILE,
which must not exist (SQLite: VACUUM INTO; PostgreSQL: pg_dump, a script
psql loads; MariaDB and MySQL: mariadb-dump or mysqldump, when installed,
else the refusal names the command to run), and records it in the ledger
(status and moves list show it); if the copy fails, the step does not run.
--dry-run takes no copy and writes nothing.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := args[0]
			// Where the move stands is read first, before anything that can
			// wait for another runner (setting the ledger up takes tandem's
			// lock): read after a concurrent advance committed, "the next
			// phase" would be one further than the command was started for.
			cur, err := mc.startPhase(ctx, name)
			if err != nil {
				return err
			}
			mc.a.logger().Debug("advance: starting from the phase read", "move", name, "phase", cur.String())
			open := mc.manager
			if dryRun {
				open = func(ctx context.Context, _ ...dualwrite.Option) (*dualwrite.Manager, func(), error) {
					return mc.reader(ctx)
				}
			}
			mg, done, err := open(ctx)
			if err != nil {
				return err
			}
			defer done()
			target, ok := cur.Next()
			if to != "" {
				if target, err = move.ParsePhase(to); err != nil {
					return &usageError{err}
				}
			} else if !ok {
				return &usageError{fmt.Errorf("move %s is contracted: there is no next phase", name)}
			}
			var opts []dualwrite.Option
			if to == "" {
				// "The next phase" is relative to cur, and to when this
				// command started: if another runner moved the move since,
				// report it and change nothing.
				opts = append(opts, dualwrite.WithExpectFrom(cur), dualwrite.WithStartedAt(mc.a.started))
			}
			if dryRun {
				opts = append(opts, dualwrite.WithDryRun())
			}
			if note != "" {
				opts = append(opts, dualwrite.WithNote(note))
			}
			step := irreversibleStep{move: name, from: cur, to: target, toFlag: to, yes: yes, backup: backupFile}
			var taken *takenBackup
			if !dryRun && (step.irreversible() || backupFile != "") {
				// The gate first: a closed one is reported as it is, with
				// nothing asked and nothing copied; an open one is checked
				// again when the step runs.
				tr, err := mg.Advance(ctx, name, target, append(opts, dualwrite.WithDryRun())...)
				if stop, err := mc.reportUnlessOpen(tr, err); stop {
					return err
				}
				if err := mc.confirm(ctx, step, tr.Steps); err != nil {
					return err
				}
				if backupFile != "" {
					if taken, err = mc.takeBackup(ctx, mg, name, target, backupFile); err != nil {
						return err
					}
				}
			}
			var planned *backup.Plan
			if dryRun && backupFile != "" {
				p, err := mc.checkBackup(ctx, backupFile)
				if err != nil {
					return err
				}
				planned = &p
			}
			tr, err := mg.Advance(ctx, name, target, opts...)
			var ge *dualwrite.GateError
			if err != nil && !errors.As(err, &ge) {
				return movesError(err)
			}
			var blocked error
			if ge != nil {
				blocked = verdict(gateView(ge.Gate).Blockers, ge.Error())
			}
			doc := transitionView(tr)
			doc.Irreversible = step.irreversible()
			doc.Backup = backupView(taken, planned, target)
			return mc.a.emit(doc, func(w io.Writer) {
				printTransition(w, tr)
				printBackup(w, step, tr, planned)
			}, blocked)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "target phase (default: the next one)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the gate and the SQL, change nothing (with --backup: check the file and the dump tool, copy nothing)")
	cmd.Flags().StringVar(&note, "note", "", "why, recorded in the phase history")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm a step that cannot be undone (the contract) without being asked; required where no terminal can answer")
	cmd.Flags().StringVar(&backupFile, "backup", "", "first write a consistent copy of the database into this new `FILE` (SQLite: VACUUM INTO; PostgreSQL: pg_dump; MariaDB and MySQL: mariadb-dump or mysqldump), recorded in the ledger; the step does not run if the copy fails")
	return cmd
}

// startPhase reads where a move stands without writing or waiting for a
// lock.
func (mc *movesCmd) startPhase(ctx context.Context, name string) (move.Phase, error) {
	mg, done, err := mc.reader(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	p, err := mg.Phase(ctx, name)
	return p, movesError(err)
}

func printTransition(w io.Writer, tr dualwrite.Transition) {
	switch {
	case tr.ByOther && tr.Already:
		from := ""
		if tr.Other != nil {
			from = tr.Other.From
		} else if tr.Expected != nil {
			from = tr.Expected.String()
		}
		fmt.Fprintf(w, "Move %s is already at %s: another runner advanced it from %s while this one waited; nothing changed\n", tr.Move, tr.To, from)
		return
	case tr.ByOther && tr.Other != nil:
		fmt.Fprintf(w, "Move %s is at %s: another runner moved it from %s to %s at %s, after this command started; nothing changed (to advance it from %s, run tandem moves advance %s again)\n",
			tr.Move, tr.From, tr.Other.From, tr.Other.To, tr.Other.At.Format(time.RFC3339Nano), tr.From, tr.Move)
		return
	case tr.Already:
		fmt.Fprintf(w, "Move %s is already at %s; nothing changed\n", tr.Move, tr.To)
		return
	}
	verb := "Advanced"
	switch {
	case tr.DryRun && tr.Gate.Open:
		verb = "Would advance"
	case !tr.Gate.Open:
		verb = "Cannot advance"
	}
	fmt.Fprintf(w, "%s move %s from %s to %s\n", verb, tr.Move, tr.From, tr.To)
	for _, b := range tr.Gate.Blockers {
		fmt.Fprintf(w, "  blocked [%s]: %s\n", b.Kind, b.Message)
	}
	for _, s := range tr.Steps {
		state := ""
		switch {
		case s.Healed:
			state = " (healed: an earlier run was interrupted)"
		case s.Skipped:
			state = " (already done)"
		}
		fmt.Fprintf(w, "  step %s: %s%s\n", s.ID, s.Description, state)
		for _, q := range s.SQL {
			fmt.Fprintf(w, "    %s;\n", strings.ReplaceAll(q, "\n", "\n    "))
		}
	}
}

func (mc *movesCmd) finalize() *cobra.Command {
	var reason string
	var yes bool
	cmd := &cobra.Command{
		Use:   "finalize NAME",
		Short: "Close the rollback window of a move at write-new; older releases may no longer join",
		Long: `Close the rollback window of a move at write-new: it can no longer go back
a phase, and releases older than the one that writes new only may no longer
register. It cannot be undone: on a terminal it asks first; where no one
can answer (a script, CI) it is refused, exit 2, unless --yes is given. A
closed gate is reported first (exit 3 or 5, each blocker naming its
command); a move finalized already is left as it is, exit 0.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mg, done, err := mc.manager(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			// The gate first: a closed one is refused below as it is, and
			// a move finalized already needs nothing confirmed.
			g, finalized, err := mg.FinalizeGate(cmd.Context(), args[0])
			if err != nil {
				return movesError(err)
			}
			if g.Open && !finalized {
				if err := mc.confirm(cmd.Context(), irreversibleStep{move: args[0], finalize: true, yes: yes}, nil); err != nil {
					return err
				}
			}
			rel, err := mg.Finalize(cmd.Context(), args[0], reason)
			var ge *dualwrite.GateError
			if errors.As(err, &ge) {
				return mc.a.gateRefused(ge)
			}
			if err != nil {
				return movesError(err)
			}
			if mc.a.json {
				return mc.a.printJSON(finalizeDoc{Move: args[0], FinalizedRelease: rel})
			}
			fmt.Fprintf(mc.a.stdout, "Finalized move %s: releases older than %d may no longer join; contract is now possible\n", args[0], rel)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "recorded with the finalization")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm it (it cannot be undone) without being asked; required where no terminal can answer")
	return cmd
}

func (mc *movesCmd) backfill() *cobra.Command {
	var reverse, restart, retry, useGo bool
	var rate float64
	var target time.Duration
	var batch int
	cmd := &cobra.Command{
		Use:   "backfill NAME",
		Short: "Fill new from old in resumable keyset batches (--reverse: old from new)",
		Long: `Run the backfill of a move: keyset batches of adaptive size, each in its own
transaction that saves the cursor, so an interrupted run resumes where it
stopped. Only one runner works on a move at a time; the lock that says so
dies with its holder, so a rerun after a kill resumes at once. Exits 3 when
it may not run yet (instances not writing both, or another backfill or
verify of the move running: the refusal names its host, pid and start), 5
when rows failed to transform, 130 when interrupted by SIGINT or SIGTERM
(the cursor is saved: run it again to resume). With --json it prints one
"progress" object a batch and a final "result" object, one a line.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Zero keeps a default; anything out of range is refused here,
			// before the database is opened.
			ev := mc.a.stream()
			show, shown := mc.a.progressPrinter(ev)
			opts := []dualwrite.Option{dualwrite.WithProgress(show), dualwrite.WithRateLimit(rate),
				dualwrite.WithTargetBatchTime(target), dualwrite.WithBatchSize(batch, 0, 0)}
			if err := dualwrite.CheckBackfillOptions(opts...); err != nil {
				return &usageError{fmt.Errorf("moves backfill: --rate, --target-batch-time or --batch: %w", err)}
			}
			mg, done, err := mc.manager(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if err := mg.CheckTransform(args[0], reverse, useGo); err != nil {
				return movesError(err)
			}
			for flag, o := range map[*bool]dualwrite.Option{&reverse: dualwrite.WithReverse(), &restart: dualwrite.WithRestart(), &retry: dualwrite.WithRetryFailed(), &useGo: dualwrite.WithGoTransforms()} {
				if *flag {
					opts = append(opts, o)
				}
			}
			res, err := mg.Backfill(cmd.Context(), args[0], opts...)
			shown()
			if err != nil {
				return mc.a.streamRefusal(ev, dualwrite.OpBackfill, err)
			}
			var blocked error
			outcome := "done"
			msg := fmt.Sprintf("backfill of %s complete: %d rows this run, %d of %d in all", res.Move, res.Rows, res.Done, res.Total)
			if res.Failed > 0 {
				outcome, msg = "failed_rows", fmt.Sprintf("%d row(s) failed to transform: they block read-new (tandem moves verify %s lists them)", res.Failed, res.Move)
				blocked = attention(msg)
			}
			if ev != nil {
				r := backfillResultView(res)
				if err := ev.emit("result", backfillEnd{Outcome: outcome, Backfill: &r, refusal: refusal{Message: msg}}); err != nil {
					return err
				}
				return blocked
			}
			return mc.a.emit(nil, func(w io.Writer) {
				resumed := ""
				if res.Resumed {
					resumed = " (resumed from the saved cursor)"
				}
				fmt.Fprintf(w, "Backfill of %s complete%s: %s rows this run, %s of %s in all, %s failed; %s rows/s in %s, p99 batch %s\n",
					res.Move, resumed, humanize.Comma(res.Rows), humanize.Comma(res.Done), humanize.Comma(res.Total), humanize.Comma(res.Failed),
					humanize.Comma(int64(res.RowsPerS)), res.Elapsed.Round(time.Millisecond), res.P99Batch.Round(time.Millisecond))
			}, blocked)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&reverse, "reverse", false, "refresh old from new (after rolling back from write-new)")
	f.BoolVar(&restart, "restart", false, "forget the cursor and start from the first key")
	f.BoolVar(&retry, "retry-failed", false, "transform the rows recorded as failed again")
	f.BoolVar(&useGo, "go", false, "use the Go transform even when a SQL one exists (plans carry SQL only)")
	f.Float64Var(&rate, "rate", 0, "at most this many rows per second (0: no limit)")
	f.DurationVar(&target, "target-batch-time", 0, "time one batch should take; the batch size adapts (default 50ms)")
	f.IntVar(&batch, "batch", 0, "first batch size (default 1000)")
	return cmd
}

func (mc *movesCmd) verify() *cobra.Command {
	var list int
	cmd := &cobra.Command{
		Use:   "verify NAME",
		Short: "Count and list the rows where new differs from transform(old); exits 5 if any",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := dualwrite.CheckVerifyOptions(dualwrite.WithListMismatches(list)); err != nil {
				return &usageError{fmt.Errorf("moves verify --list: %w", err)}
			}
			mg, done, err := mc.manager(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if err := mg.CheckTransform(args[0], false, false); err != nil {
				return movesError(err)
			}
			ev := mc.a.stream()
			show, shown := mc.a.progressPrinter(ev)
			res, err := mg.Verify(cmd.Context(), args[0], dualwrite.WithListMismatches(list), dualwrite.WithProgress(show))
			shown()
			if err != nil {
				return mc.a.streamRefusal(ev, dualwrite.OpVerify, err)
			}
			var blocked error
			outcome := "done"
			msg := fmt.Sprintf("verified %s: %d rows checked, no mismatch", res.Move, res.Checked)
			if res.Mismatches > 0 || res.Failed > 0 {
				outcome, msg = "mismatches", fmt.Sprintf("%d mismatch(es), %d failed row(s): backfill again (tandem moves backfill %s --restart) and verify", res.Mismatches, res.Failed, res.Move)
				blocked = attention(msg)
			}
			if ev != nil {
				r := verifyResultView(res)
				if err := ev.emit("result", verifyEnd{Outcome: outcome, Verify: &r, refusal: refusal{Message: msg}}); err != nil {
					return err
				}
				return blocked
			}
			return mc.a.emit(nil, func(w io.Writer) {
				fmt.Fprintf(w, "Verified %s: %s rows checked, %s mismatch(es), %s failed row(s) in %s\n", res.Move, humanize.Comma(res.Checked),
					humanize.Comma(res.Mismatches), humanize.Comma(res.Failed), res.Elapsed.Round(time.Millisecond))
				for _, m := range res.Listed {
					fmt.Fprintf(w, "  key %v: old %v, new %v, want %v\n", m.Key, m.Old, m.New, m.Want)
				}
				for _, f := range res.FailedRows {
					fmt.Fprintf(w, "  failed key %s: %s\n", f.Key, f.Error)
				}
			}, blocked)
		},
	}
	cmd.Flags().IntVar(&list, "list", 20, "list at most this many mismatching rows (0: none)")
	return cmd
}

func (mc *movesCmd) sql() *cobra.Command {
	var phase, engine, format, out, version string
	cmd := &cobra.Command{
		Use:   "sql NAME --phase P --dialect D [--format goose|migrate|plain] [--out DIR]",
		Short: "Print the DDL that enters phase P, or write it as goose or golang-migrate files",
		Long: `Print the DDL that enters phase P on engine D, or write it as files that
goose or golang-migrate run as they are. The move is read from the ledger
(--db); when the database cannot be read, from the plan, so no database is
needed for a move the plan declares.

--format plain (the default) prints the statements. --format goose writes one
file with Up and Down sections (to stdout, or into --out DIR). --format
migrate writes golang-migrate's NNN_name.up.sql and NNN_name.down.sql into
--out DIR (on mysql one pair per statement, so no multiStatements=true is
needed). The version NNN is --file-version, or the one after DIR's highest, or
the current time (YYYYMMDDHHMMSS). A contract has no Down: the files say so.
Apply a file only while 'tandem moves advance NAME --to P --dry-run' shows the
gate open, then run 'tandem moves advance NAME --to P' to record it.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if phase == "" || engine == "" {
				return &usageError{errors.New("moves sql: --phase and --dialect are required")}
			}
			p, err := move.ParsePhase(phase)
			if err != nil {
				return &usageError{err}
			}
			d, err := sqldialect.For(dialect.Name(strings.ToLower(engine)))
			if err != nil {
				return &usageError{fmt.Errorf("--dialect %q: want sqlite, postgres or mysql", engine)}
			}
			f, err := migfile.ParseFormat(format)
			if err != nil {
				return &usageError{fmt.Errorf("moves sql: --%w", err)}
			}
			if f == migfile.Migrate && out == "" {
				return &usageError{fmt.Errorf("moves sql: --format migrate writes a pair of files (NNN_name.up.sql and NNN_name.down.sql): give the migrations directory, e.g. tandem moves sql %s --phase %s --dialect %s --format migrate --out migrations", args[0], p, d.Name())}
			}
			found, err := mc.a.lookupMove(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			m := &found
			steps, err := dualwrite.StepsFor(*m, d.Name(), p)
			if err != nil {
				return movesError(err)
			}
			if f == migfile.Plain && out == "" && mc.a.json {
				return mc.a.printJSON(sqlDoc{Move: m.Name, Phase: p.String(), Dialect: string(d.Name()), Steps: stepsView(steps), Format: string(f), Files: []fileJSON{}})
			}
			var opts []migfile.Option
			switch {
			case version != "":
				opts = append(opts, migfile.WithVersion(version))
			case out != "":
				v, err := migfile.NextVersion(out, time.Now())
				if err != nil {
					return err
				}
				opts = append(opts, migfile.WithVersion(v))
			}
			files, err := migfile.Generate(*m, d.Name(), p, f, opts...)
			if err != nil {
				return migfileError(movesError(err))
			}
			if out == "" {
				if mc.a.json {
					return mc.a.printJSON(sqlDoc{Move: m.Name, Phase: p.String(), Dialect: string(d.Name()), Steps: stepsView(steps), Format: string(f), Files: filesView(files, nil)})
				}
				fmt.Fprint(mc.a.stdout, files[0].Content)
				return nil
			}
			paths, err := migfile.Write(out, files)
			if err != nil {
				return migfileError(err)
			}
			if mc.a.json {
				return mc.a.printJSON(sqlDoc{Move: m.Name, Phase: p.String(), Dialect: string(d.Name()), Steps: stepsView(steps), Format: string(f), Files: filesView(files, paths)})
			}
			for _, path := range paths {
				fmt.Fprintf(mc.a.stdout, "Wrote %s\n", path)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&phase, "phase", "", "the phase entered (write-both or contracted have DDL)")
	cmd.Flags().StringVar(&engine, "dialect", "", "sqlite, postgres or mysql")
	cmd.Flags().StringVar(&format, "format", "plain", "goose, migrate or plain")
	cmd.Flags().StringVar(&out, "out", "", "write the files into this directory (created if missing) instead of printing")
	cmd.Flags().StringVar(&version, "file-version", "", "the files' version (digits); default: after the highest in --out, or the current time")
	return cmd
}

// migfileError makes the files' bad input, and files that are in the way,
// exit 2.
func migfileError(err error) error {
	if errors.Is(err, migfile.ErrInvalid) || errors.Is(err, migfile.ErrExists) {
		return &usageError{err}
	}
	return err
}
