package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"
	"golang.org/x/term"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/backup"
	"github.com/tandem-go/tandem/move"
)

// stdin is where a confirmation is read; it is asked only when stdin is a
// terminal (tests give it one of their own).
var stdin io.Reader = os.Stdin

// interactive says whether someone at a terminal can answer a question.
func interactive() bool {
	f, ok := stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// irreversibleStep is an advance, or a finalize, that may need
// confirming.
type irreversibleStep struct {
	move     string
	finalize bool // tandem moves finalize, else an advance
	from, to move.Phase
	toFlag   string // --to as given ("" for the next phase)
	yes      bool
	backup   string // --backup FILE
}

func (s irreversibleStep) irreversible() bool {
	return s.finalize || dualwrite.Irreversible(s.from, s.to)
}

// command is the step's command line with extra flags.
func (s irreversibleStep) command(extra ...string) string {
	if s.finalize {
		return strings.Join(append([]string{"tandem", "moves", "finalize", s.move}, extra...), " ")
	}
	args := []string{"tandem", "moves", "advance", s.move}
	if s.toFlag != "" {
		args = append(args, "--to", s.to.String())
	}
	return strings.Join(append(args, extra...), " ")
}

// backupName is the file the refusal suggests when --backup named none:
// in the working directory, named after the move (a SQLite database on
// SQLite, a SQL script on the server engines).
func (s irreversibleStep) backupName() string {
	if s.backup != "" {
		return s.backup
	}
	return s.move + "-before-contract.backup"
}

// reportUnlessOpen reports the check made before an irreversible step or
// a backup when there is nothing to confirm: a closed gate (its verdict),
// a move already there or moved by another runner. stop says the command
// ends with err.
func (mc *movesCmd) reportUnlessOpen(tr dualwrite.Transition, err error) (stop bool, _ error) {
	var ge *dualwrite.GateError
	if err != nil && !errors.As(err, &ge) {
		return true, movesError(err)
	}
	if ge == nil && !tr.Already && !tr.ByOther {
		return false, nil
	}
	// Not a dry run: the command ran and refused, or found nothing to do.
	tr.DryRun = false
	var then error
	if ge != nil {
		then = verdict(gateView(ge.Gate).Blockers, ge.Error())
	}
	return true, mc.a.emit(transitionView(tr), func(w io.Writer) { printTransition(w, tr) }, then)
}

// errUnconfirmed marks an irreversible step not confirmed (exit 2).
var errUnconfirmed = errors.New("not confirmed")

// confirm asks before an irreversible step, on a terminal, unless --yes
// was given; where no one can answer it refuses, naming the command with
// --yes and the one that takes a backup first.
func (mc *movesCmd) confirm(ctx context.Context, s irreversibleStep, steps []dualwrite.Step) error {
	if !s.irreversible() || s.yes {
		return nil
	}
	what := "contracting move " + s.move
	var did []string
	for _, st := range steps {
		did = append(did, st.Description)
	}
	if s.finalize {
		what = "finalizing move " + s.move
		did = []string{"it closes the rollback window: the move can no longer go back, and older releases may no longer register"}
	}
	if len(did) > 0 {
		what += " (" + strings.Join(did, "; ") + ")"
	}
	withBackup := s.command("--yes", "--backup", s.backupName())
	if s.backup != "" {
		withBackup = s.command("--backup", s.backup, "--yes")
	}
	if !interactive() {
		msg := fmt.Sprintf("%s cannot be undone and no terminal can confirm it: run %s to confirm it, or %s to take a backup of the database first",
			what, s.command("--yes"), withBackup)
		switch {
		case s.finalize:
			msg = fmt.Sprintf("%s cannot be undone and no terminal can confirm it: run %s to confirm it", what, s.command("--yes"))
		case s.backup != "":
			msg = fmt.Sprintf("%s cannot be undone and no terminal can confirm it: run %s (the backup is taken first)", what, withBackup)
		}
		return &outcomeError{exit: exitBadInput, code: codeUnconfirmed, reason: msg, err: errUnconfirmed}
	}
	first := "No backup is taken (--backup FILE takes one first)."
	switch {
	case s.finalize:
		first = "Nothing is dropped yet (the contract, later, drops the old column)."
	case s.backup != "":
		abs, _ := filepath.Abs(s.backup)
		first = "A backup of the database is taken first, into " + abs + "."
	}
	fmt.Fprintf(mc.a.stderr, "%s cannot be undone. %s\nContinue? [y/N] ", capitalize(what), first)
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		answer <- strings.ToLower(strings.TrimSpace(line))
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(mc.a.stderr)
		return fmt.Errorf("%w: %w", errInterrupted, ctx.Err())
	case a := <-answer:
		if a == "y" || a == "yes" {
			return nil
		}
	}
	return &outcomeError{exit: exitBadInput, code: codeUnconfirmed, err: errUnconfirmed,
		reason: fmt.Sprintf("%s not confirmed; nothing changed (run %s again and answer y, or run %s)", what, s.command(), s.command("--yes"))}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// takenBackup is a backup this command took and recorded.
type takenBackup struct {
	dualwrite.Backup
	Command string
}

// backupError makes what can never succeed as asked (a file in the way,
// no dump tool) bad input, and says the step did not run.
func backupError(err error) error {
	err = fmt.Errorf("%w; the step did not run", err)
	if errors.Is(err, backup.ErrExists) || errors.Is(err, backup.ErrBadPath) || errors.Is(err, backup.ErrNoTool) {
		return &usageError{err}
	}
	return err
}

// checkBackup says how --backup FILE would be taken, writing nothing.
func (mc *movesCmd) checkBackup(ctx context.Context, file string) (backup.Plan, error) {
	db, err := mc.a.openDB(ctx)
	if err != nil {
		return backup.Plan{}, err
	}
	defer db.Close()
	p, err := backup.Check(ctx, db, file)
	if err != nil {
		return p, backupError(err)
	}
	return p, nil
}

// takeBackup copies the database into file and records it in the ledger.
func (mc *movesCmd) takeBackup(ctx context.Context, mg *dualwrite.Manager, name string, before move.Phase, file string) (*takenBackup, error) {
	db, err := mc.a.openDB(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	mc.a.logger().Info("backup: taking a copy of the database", "file", file, "db", dialect.RedactDSN(mc.a.dsn))
	res, err := backup.Take(ctx, db, file)
	if err != nil {
		return nil, backupError(err)
	}
	host, _ := os.Hostname()
	b, err := mg.RecordBackup(ctx, dualwrite.Backup{Move: name, Before: before.String(), Path: res.Path, Host: host,
		Bytes: res.Bytes, Tool: res.Tool, TakenAt: res.TakenAt})
	if err != nil {
		return nil, fmt.Errorf("%w (the copy %s was written; the step did not run)", err, res.Path)
	}
	if !mc.a.json {
		fmt.Fprintf(mc.a.stdout, "Backup of the database taken into %s: %s, %s in %s\n", res.Path, humanize.Bytes(uint64(res.Bytes)), res.Tool,
			res.Elapsed.Round(1e6))
	}
	return &takenBackup{Backup: b, Command: res.Command}, nil
}

// backupJSON is a backup in the ledger (status, moves list) or the one
// an advance took or would take.
type backupJSON struct {
	// Seq is null for a backup a dry run would take.
	Seq    *int64 `json:"seq"`
	Before string `json:"before"`
	Path   string `json:"path"`
	Host   string `json:"host"`
	// Bytes and TakenAt are null for a backup a dry run would take.
	Bytes   *int64   `json:"bytes"`
	Tool    string   `json:"tool"`
	TakenAt *rfc3339 `json:"taken_at"`
	Release int64    `json:"release"`
}

func backupsView(bs []dualwrite.Backup) []backupJSON {
	out := []backupJSON{}
	for _, b := range bs {
		out = append(out, recordedBackupView(b))
	}
	return out
}

func recordedBackupView(b dualwrite.Backup) backupJSON {
	seq, n := b.Seq, b.Bytes
	return backupJSON{Seq: &seq, Before: b.Before, Path: b.Path, Host: b.Host, Bytes: &n, Tool: b.Tool, TakenAt: ts(b.TakenAt), Release: b.Release}
}

// backupView is the backup of an advance: the one taken, or the one a dry
// run would take; nil for none.
func backupView(taken *takenBackup, planned *backup.Plan, before move.Phase) *backupJSON {
	switch {
	case taken != nil:
		b := recordedBackupView(taken.Backup)
		return &b
	case planned != nil:
		host, _ := os.Hostname()
		return &backupJSON{Before: before.String(), Path: planned.Path, Host: host, Tool: planned.Tool}
	}
	return nil
}

// printBackup ends a dry run's text report: the backup it would take, and
// what an irreversible step will need. (A backup taken was reported when
// it was.)
func printBackup(w io.Writer, s irreversibleStep, tr dualwrite.Transition, planned *backup.Plan) {
	if !tr.DryRun {
		return
	}
	if planned != nil {
		fmt.Fprintf(w, "  would first take a backup into %s: %s\n", planned.Path, planned.Command)
	}
	if s.irreversible() && tr.Gate.Open {
		fmt.Fprintf(w, "  this step cannot be undone: it asks on a terminal, and a script runs it with --yes (%s)\n", s.command("--yes", "--backup", s.backupName()))
	}
}
