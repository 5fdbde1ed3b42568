package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/backup"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// Exit codes: the contract CI gates on. exitCodes documents each one; the
// README, docs/runbook.md and docs/cli-json.md carry the same table, and
// TestExitCodes produces every one with a real command line.
const (
	exitOK          = 0
	exitFailed      = 1
	exitBadInput    = 2
	exitBlocked     = 3
	exitUnreachable = 4
	exitAttention   = 5
	// exitInterrupted is 128+SIGINT, the shell's convention, also used for
	// SIGTERM: the run stopped cleanly where it was and can be run again.
	exitInterrupted = 130
)

// exitCodeDoc is one row of the exit-code table.
type exitCodeDoc struct {
	Code    int
	Name    string
	Meaning string
}

// exitCodes is the table printed by `tandem --help` and the docs.
var exitCodes = []exitCodeDoc{
	{exitOK, "ok", "done; or the state asked about holds (nothing blocks)"},
	{exitFailed, "failed", "the operation failed for a reason not below (a bug, a disk error, a failed demo): read the message"},
	{exitBadInput, "bad input", "the command can never succeed as things stand: bad flags or arguments, unknown command, move or instance, an invalid plan, a login the database refused, a refused step such as a rollback after finalize; change the command, not the timing"},
	{exitBlocked, "blocked", "not yet: a gate is closed while instances roll, another runner holds the move's backfill or verify; run the same command again later"},
	{exitUnreachable, "unreachable", "the database or the NATS server could not be reached (the message says which)"},
	{exitAttention, "needs attention", "waiting will not fix it, someone must act first: an instance is missing or in error, triggers differ from what the phase needs, a step or backfill was interrupted, a backfill, verify or finalize must run, rows failed to transform or verify found mismatches; each blocker names the command to run"},
	{exitInterrupted, "interrupted", "stopped by SIGINT or SIGTERM; work done is kept (a backfill resumes from its cursor); tandem serve, asked to stop, exits 0 and the command can be run again"},
}

// Error codes: the stable "code" of a JSON error object on stderr.
const (
	codeFailed          = "failed"
	codeBadInput        = "bad_input"
	codeUnknownCommand  = "unknown_command"
	codeRefused         = "refused"
	codeUnconfirmed     = "unconfirmed"
	codeReadOnly        = "read_only"
	codeLoginRefused    = "login_refused"
	codeBlocked         = "blocked"
	codeBusy            = "busy"
	codeTimeout         = "timeout"
	codeDBUnreachable   = "database_unreachable"
	codeNATSUnreachable = "nats_unreachable"
	codeAttention       = "needs_attention"
	codeInterrupted     = "interrupted"
)

// outcomeError is a command's verdict after it ran and printed what it
// found: a blocked gate (exit 3), something that needs attention (exit 5),
// a refusal that can never succeed (exit 2). Reported says the command
// already printed the reason, so text mode prints nothing more.
type outcomeError struct {
	exit     int
	code     string
	reason   string
	reported bool
	err      error
}

func (e *outcomeError) Error() string {
	switch e.code {
	case codeBlocked:
		return "blocked: " + e.reason
	case codeAttention:
		return "needs attention: " + e.reason
	}
	return e.reason
}

func (e *outcomeError) Unwrap() error { return e.err }

// blocked is a report already printed that found the next step not safe
// yet: exit 3, code "blocked".
func blocked(reason string) error {
	return &outcomeError{exit: exitBlocked, code: codeBlocked, reason: reason, reported: true}
}

// busy is a refusal because another live runner holds the move: exit 3.
func busy(reason string) error {
	return &outcomeError{exit: exitBlocked, code: codeBusy, reason: reason, reported: true}
}

// attention is a report already printed that found something waiting
// cannot fix: exit 5.
func attention(reason string) error {
	return &outcomeError{exit: exitAttention, code: codeAttention, reason: reason, reported: true}
}

// refused is a step that can never succeed as things stand (a rollback
// after finalize): exit 2, reported already.
func refused(reason string) error {
	return &outcomeError{exit: exitBadInput, code: codeRefused, reason: reason, reported: true}
}

// usageError marks bad flags or arguments.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// unknownCommandError is a command or subcommand tandem does not have.
type unknownCommandError struct{ msg string }

func (e *unknownCommandError) Error() string { return e.msg }

// exitCode maps an error to its exit code and its JSON error code.
func exitCode(err error) (int, string) {
	var oc *outcomeError
	var usage *usageError
	var unknown *unknownCommandError
	switch {
	case err == nil:
		return exitOK, ""
	case errors.As(err, &oc):
		return oc.exit, oc.code
	case errors.As(err, &unknown):
		return exitBadInput, codeUnknownCommand
	case errors.Is(err, context.Canceled), errors.Is(err, errInterrupted):
		return exitInterrupted, codeInterrupted
	case errors.Is(err, dialect.ErrReadOnly):
		// A write on a read-only database cannot succeed as things stand.
		return exitBadInput, codeReadOnly
	case errors.Is(err, errNATSUnreachable):
		return exitUnreachable, codeNATSUnreachable
	case errors.Is(err, dialect.ErrLoginRefused):
		// Wrong credentials or database: waiting does not help.
		return exitBadInput, codeLoginRefused
	case errors.Is(err, dialect.ErrUnreachable):
		return exitUnreachable, codeDBUnreachable
	case errors.As(err, &usage), errors.Is(err, dialect.ErrBadDSN), errors.Is(err, dialect.ErrBadURL), errors.Is(err, dialect.ErrBadIdentifier),
		errors.Is(err, services.ErrInvalid), errors.Is(err, services.ErrNotFound), errors.Is(err, schema.ErrTooNew),
		errors.Is(err, dualwrite.ErrUnknownMove), errors.Is(err, dualwrite.ErrNotAdjacent), errors.Is(err, dualwrite.ErrPlan),
		errors.Is(err, move.ErrInvalid), errors.Is(err, move.ErrBadPhase), errors.Is(err, dualwrite.ErrDrift), errors.Is(err, dualwrite.ErrGoOnly),
		errors.Is(err, move.ErrSchema), errors.Is(err, sqldialect.ErrBadExpression), errors.Is(err, dualwrite.ErrInvalidOption),
		errors.Is(err, backup.ErrExists), errors.Is(err, backup.ErrBadPath), errors.Is(err, backup.ErrNoTool):
		return exitBadInput, codeBadInput
	}
	return exitFailed, codeFailed
}

// errInterrupted marks a run stopped by a signal (exit 130).
var errInterrupted = errors.New("interrupted")

// exitCodeHelp is the table in `tandem --help`.
func exitCodeHelp() string {
	var b strings.Builder
	b.WriteString("Exit codes:\n")
	const indent, width = 23, 78
	for _, c := range exitCodes {
		line := fmt.Sprintf("  %-4d%-17s", c.Code, c.Name)
		for _, w := range strings.Fields(c.Meaning) {
			if len(line)+1+len(w) > width && len(line) > indent {
				b.WriteString(strings.TrimRight(line, " ") + "\n")
				line = strings.Repeat(" ", indent)
			}
			if len(line) > indent && !strings.HasSuffix(line, " ") {
				line += " "
			}
			line += w
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}
