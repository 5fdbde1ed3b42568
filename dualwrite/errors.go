package dualwrite

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tandem-go/tandem/move"
)

// Sentinel errors. Match them with errors.Is; the typed errors below carry
// the details and unwrap to these.
var (
	// ErrUnknownMove means no declared move has that name.
	ErrUnknownMove = errors.New("unknown move")
	// ErrNotAdjacent means an advance skips a phase.
	ErrNotAdjacent = errors.New("phase not adjacent")
	// ErrPhaseChanged means the move's phase is not the one the caller
	// expected (see ExpectFrom): another runner moved it meanwhile.
	ErrPhaseChanged = errors.New("move phase changed")
	// ErrBlocked means a gate is closed; the GateError says why.
	ErrBlocked = errors.New("transition blocked")
	// ErrFinalized means the move was finalized and cannot go back.
	ErrFinalized = errors.New("move finalized")
	// ErrBusy means another live runner holds the move's runner lock (a
	// backfill or verify runs): wait for it.
	ErrBusy = errors.New("another runner is working on this move")
	// ErrTooOld means this build cannot act on a phase close enough to the
	// ledger's: it would act two phases behind, or start writing old only
	// behind a move at write-both or later.
	ErrTooOld = errors.New("build too old for the move's phase")
	// ErrStepFailed means a DDL step failed; the ledger says which.
	ErrStepFailed = errors.New("move step failed")
	// ErrPlan means a plan file could not be read.
	ErrPlan = errors.New("invalid plan file")
	// ErrNoTriggers means the move uses triggers but no trigger engine was
	// configured (see WithTriggers).
	ErrNoTriggers = errors.New("no trigger engine configured")
	// ErrFrozen means a write was refused because the operator froze
	// writes on its move (tandem freeze); the *FrozenError says why and
	// since when. Reads go on. Retry after tandem thaw.
	// It is move.ErrFrozen, which an RPC client's error matches too.
	ErrFrozen = move.ErrFrozen
	// ErrFreezeInput means a freeze or thaw was asked wrongly: no reason,
	// no scope, moves and every move at once.
	ErrFreezeInput = errors.New("invalid freeze or thaw")
)

// UnknownMoveError names a move that is not declared.
type UnknownMoveError struct {
	Name  string
	Known []string
}

func (e *UnknownMoveError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("unknown move %q: no moves are declared (record one with tandem moves apply --plan FILE)", e.Name)
	}
	return fmt.Sprintf("unknown move %q: declared moves are %s (tandem moves list shows them)", e.Name, strings.Join(e.Known, ", "))
}

func (e *UnknownMoveError) Unwrap() error { return ErrUnknownMove }

// NotAdjacentError is an advance from one phase to one not next to it.
type NotAdjacentError struct {
	Move     string
	From, To move.Phase
}

func (e *NotAdjacentError) Error() string {
	next, _ := e.From.Next()
	prev, ok := e.From.Prev()
	alt := "advance to " + next.String()
	if e.From == move.Contracted {
		alt = "it is contracted: nothing follows"
	} else if ok {
		alt += " (or back to " + prev.String() + ")"
	}
	return fmt.Sprintf("move %q is at %s and cannot go to %s in one step: %s", e.Move, e.From, e.To, alt)
}

func (e *NotAdjacentError) Unwrap() error { return ErrNotAdjacent }

// PhaseChangedError is an advance refused because the ledger no longer
// stands where the caller expected (ExpectFrom).
type PhaseChangedError struct {
	Move             string
	Expected, Actual move.Phase
	// Target is the phase the caller asked for.
	Target move.Phase
}

func (e *PhaseChangedError) Error() string {
	return fmt.Sprintf("move %q is at %s, not %s as expected: another runner moved it meanwhile; nothing was changed (see where it stands with tandem status, then advance again: tandem moves advance %s)", e.Move, e.Actual, e.Expected, e.Move)
}

func (e *PhaseChangedError) Unwrap() error { return ErrPhaseChanged }

// GateError is a transition refused because its gate is closed.
type GateError struct {
	Gate Gate
}

func (e *GateError) Error() string {
	var b strings.Builder
	if e.Gate.Op != "" {
		fmt.Fprintf(&b, "move %q: %s refused at %s:", e.Gate.Move, e.Gate.Op, e.Gate.From)
	} else {
		fmt.Fprintf(&b, "move %q cannot go from %s to %s:", e.Gate.Move, e.Gate.From, e.Gate.To)
	}
	for _, bl := range e.Gate.Blockers {
		b.WriteString(" " + bl.Message + ";")
	}
	return strings.TrimSuffix(b.String(), ";")
}

func (e *GateError) Unwrap() error {
	for _, bl := range e.Gate.Blockers {
		if bl.Kind == BlockFinalized {
			return errors.Join(ErrBlocked, ErrFinalized)
		}
	}
	return ErrBlocked
}

// StepError is a DDL step that failed.
type StepError struct {
	Move string
	Step string
	SQL  string
	Err  error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("move %q: step %s failed: %v (the step is recorded as proposed and not applied in tandem_steps; fix the cause and advance again: the step is checked and resumed)", e.Move, e.Step, e.Err)
}

func (e *StepError) Unwrap() []error { return []error{ErrStepFailed, e.Err} }

// TooOldError refuses a build that cannot act on a phase close enough to
// the ledger's: two or more phases behind, or, for a process starting
// (Starting), on legacy once a move without triggers is at write-both or
// later (OldOnly).
type TooOldError struct {
	Move    string
	Release int64
	Can     move.Phase
	Ledger  move.Phase
	// Need is the oldest release that may run now (0 when the move does
	// not say).
	Need     int64
	Starting bool
	// OldOnly: the build would write old only after the backfill may have
	// started.
	OldOnly bool
}

func (e *TooOldError) Error() string {
	need := "run a newer release"
	if e.Need > 0 {
		need = fmt.Sprintf("run release %d or newer", e.Need)
	}
	switch {
	case e.OldOnly:
		return fmt.Sprintf("move %q is at %s but release %d can only act on %s: an instance may not start writing old only once a move is at write-both or later (the backfill may already have passed the rows it writes, and nothing would find them again); %s", e.Move, e.Ledger, e.Release, e.Can, need)
	case e.Starting:
		return fmt.Sprintf("move %q is at %s but release %d can only act up to %s: it would start two phases behind; %s", e.Move, e.Ledger, e.Release, e.Can, need)
	}
	return fmt.Sprintf("move %q is at %s but release %d can only act up to %s: it would act two phases behind; stop this instance and %s", e.Move, e.Ledger, e.Release, e.Can, need)
}

func (e *TooOldError) Unwrap() error { return ErrTooOld }

// BusyError is a backfill or verify refused because another live runner
// holds the move's runner lock, or stopped because this run lost it.
type BusyError struct {
	Move string
	Op   string // what was refused: "backfill", "reverse-backfill" or "verify"
	// Holder is the live runner, nil when it has not recorded itself yet
	// (it is starting).
	Holder *Runner
	// Lost: this run's lock ended (its database session was cut) and
	// another runner took the move over; this run wrote nothing after that.
	Lost bool
}

func (e *BusyError) Error() string {
	again := rerunCommand(e.Move, e.Op)
	switch {
	case e.Lost:
		return fmt.Sprintf("move %q: this %s lost its runner lock (its database session ended) and another runner took over; it stopped and wrote nothing more: see tandem status", e.Move, e.Op)
	case e.Holder != nil:
		return fmt.Sprintf("move %q: %s refused: a %s is running (host %s, pid %d, since %s); wait for it to finish (tandem status shows its progress), or stop that process, then run %s again: it resumes from the cursor at once",
			e.Move, e.Op, e.Holder.Op, e.Holder.Host, e.Holder.PID, e.Holder.Since.UTC().Format(time.RFC3339), again)
	}
	return fmt.Sprintf("move %q: %s refused: another runner holds the move's runner lock (it is starting or finishing); wait a moment and run %s again", e.Move, e.Op, again)
}

func (e *BusyError) Unwrap() error { return ErrBusy }

// PlanError is a plan file that could not be read.
type PlanError struct {
	File   string
	Reason string
	Err    error
}

func (e *PlanError) Error() string {
	msg := "plan"
	if e.File != "" {
		msg += " " + e.File
	}
	msg += ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *PlanError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrPlan, e.Err}
	}
	return []error{ErrPlan}
}

// FrozenError is a write refused because its move is frozen. It unwraps to
// ErrFrozen. An rpcver server answers a handler error that is (or wraps)
// one with code 423 (rpcver.CodeFrozen) and this error's message, and the
// caller's error matches ErrFrozen too.
type FrozenError struct {
	// Move is the move the refused write was on.
	Move string
	// All: every move is frozen; else Moves are.
	All    bool
	Moves  []string
	Reason string
	Since  time.Time
	// Seq is the freeze state that refused it (see FreezeState).
	Seq int64
}

func (e *FrozenError) Error() string {
	what := "writes on move " + e.Move + " are frozen"
	if e.All {
		what = "writes are frozen on every move"
	}
	return fmt.Sprintf("%s since %s: %s (reads go on; retry once the operator has run tandem thaw)", what, e.Since.UTC().Format(time.RFC3339), e.Reason)
}

func (e *FrozenError) Unwrap() error { return ErrFrozen }

// Frozen marks the error as a refusal of a frozen write, for packages that
// do not import dualwrite: rpcver maps a handler error with this method
// to CodeFrozen.
func (e *FrozenError) Frozen() bool { return true }

// FreezeInputError is a freeze or thaw refused before anything was read.
type FreezeInputError struct {
	Op     string // "freeze" or "thaw"
	Reason string
}

func (e *FreezeInputError) Error() string { return e.Op + ": " + e.Reason }

func (e *FreezeInputError) Unwrap() error { return ErrFreezeInput }
