package move

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with errors.Is; the typed errors below carry
// the details and unwrap to these.
var (
	// ErrInvalid means a declaration failed static validation.
	ErrInvalid = errors.New("invalid move declaration")
	// ErrBadPhase means a phase name is not one of the five phases.
	ErrBadPhase = errors.New("unknown phase")
	// ErrSchema means the live schema does not match the declaration.
	ErrSchema = errors.New("live schema does not match the move")
	// ErrNoTable means a table the move needs is missing.
	ErrNoTable = errors.New("table missing")
	// ErrNoColumn means a column the move needs is missing.
	ErrNoColumn = errors.New("column missing")
	// ErrIncompatibleType means old and new column types cannot hold the
	// same values under the declared transform.
	ErrIncompatibleType = errors.New("incompatible column types")
	// ErrNoSQL means a transform has no SQL expression for a dialect, so it
	// can only run in Go.
	ErrNoSQL = errors.New("transform has no SQL expression")
	// ErrNoGo means a transform has only SQL, so it cannot run in Go.
	ErrNoGo = errors.New("transform has no Go function")
	// ErrTransform means a Go transform failed on a value.
	ErrTransform = errors.New("transform failed")
	// ErrFrozen means a write was refused because the operator froze
	// writes on its move (tandem freeze). It is the one value behind
	// dualwrite.ErrFrozen and what rpcver's client returns for a server's
	// frozen refusal (code 423), so errors.Is matches both with either.
	ErrFrozen = errors.New("writes are frozen")
)

// ValidationError names the field of a declaration that is wrong and why.
type ValidationError struct {
	Move   string // the move's name, possibly empty when the name is the problem
	Field  string // e.g. "Old", "Forward.SQL", "Releases.ReadNew"
	Value  string
	Reason string
	Err    error // an underlying error, e.g. a *dialect.IdentifierError
}

func (e *ValidationError) Error() string {
	who := "move"
	if e.Move != "" {
		who = fmt.Sprintf("move %q", e.Move)
	}
	msg := fmt.Sprintf("%s: invalid %s %q: %s", who, e.Field, e.Value, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ValidationError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

// PhaseError is a phase name that does not parse.
type PhaseError struct{ Input string }

func (e *PhaseError) Error() string {
	return fmt.Sprintf("unknown phase %q: want one of legacy, write-both, read-new, write-new, contracted", e.Input)
}

func (e *PhaseError) Unwrap() error { return ErrBadPhase }

// SchemaError reports a mismatch between a move and the live schema.
type SchemaError struct {
	Move   string
	Table  string
	Column string // empty when the table itself is the problem
	Reason string
	Kind   error // ErrNoTable, ErrNoColumn or ErrIncompatibleType
}

func (e *SchemaError) Error() string {
	where := e.Table
	if e.Column != "" {
		where += "." + e.Column
	}
	return fmt.Sprintf("move %q: %s: %s", e.Move, where, e.Reason)
}

func (e *SchemaError) Unwrap() []error { return []error{ErrSchema, e.Kind} }

// TransformError is a Go transform that failed on one value.
type TransformError struct {
	Move      string
	Direction string // "forward" or "backward"
	Value     any
	Err       error
}

func (e *TransformError) Error() string {
	return fmt.Sprintf("move %q: %s transform of %v: %v", e.Move, e.Direction, e.Value, e.Err)
}

func (e *TransformError) Unwrap() []error { return []error{ErrTransform, e.Err} }
