package dualwrite

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tandem-go/tandem/move"
)

var (
	// ErrDrift means a declaration (Go or plan) differs from the
	// definition the ledger records for the move.
	ErrDrift = errors.New("declaration differs from the recorded definition")
	// ErrAmendRefused means a declared change would alter data already
	// written at the move's phase, so it cannot be recorded.
	ErrAmendRefused = errors.New("amendment refused")
	// ErrGoOnly means a transform exists only as the application's Go
	// function, which a command outside the application cannot run.
	ErrGoOnly = errors.New("transform exists only in Go")
)

// DriftError is a declaration that differs from the recorded definition.
// Fields lists every difference; those that cannot change at the move's
// phase say why. When all can, Command is what records them on purpose.
type DriftError struct {
	Move    string
	Source  string // who declared it: "the Go declaration", "plan FILE"
	Phase   move.Phase
	Version int64 // the recorded definition's version
	Fields  []FieldChange
	// Amending is set when the caller asked to record the change: every
	// listed field that says Refused is why it was not.
	Amending bool
	// Command records the change as an amendment (empty when some field
	// is refused).
	Command string
}

// Refused reports whether some field may not change at the move's phase.
func (e *DriftError) Refused() bool {
	for _, f := range e.Fields {
		if f.Refused != "" {
			return true
		}
	}
	return false
}

func (e *DriftError) Error() string {
	var b strings.Builder
	src := e.Source
	if src == "" {
		src = "the declaration"
	}
	fmt.Fprintf(&b, "move %q: %s differs from the definition recorded in the ledger (version %d, at %s): ", e.Move, src, e.Version, e.Phase)
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.String()
	}
	b.WriteString(strings.Join(parts, "; "))
	switch {
	case e.Refused():
		fmt.Fprintf(&b, "; refused: this would change data already written. Declare the move as recorded (`tandem moves show %s` prints it), or move the data again under a new move name", e.Move)
	case e.Command != "":
		fmt.Fprintf(&b, "; if the change is intended, record it as an amendment: %s", e.Command)
	}
	return b.String()
}

func (e *DriftError) Unwrap() []error {
	if e.Refused() {
		return []error{ErrDrift, ErrAmendRefused}
	}
	return []error{ErrDrift}
}

// GoOnlyError is a transform needed by a command that has only the
// application's Go function.
type GoOnlyError struct {
	Move      string
	Direction string // "forward" or "backward"
	Engine    string // the engine without a SQL expression, when known
}

func (e *GoOnlyError) Error() string {
	on := ""
	if e.Engine != "" {
		on = " on " + e.Engine
	}
	return fmt.Sprintf("move %q: the %s transform exists only in Go%s: run the backfill from the application, or declare a SQL transform (Manager.Backfill and Verify run the Go function there; a SQL expression goes in the plan's %s.sql and is recorded with `tandem moves apply --plan FILE --amend %s` before the backfill starts)", e.Move, e.Direction, on, e.Direction, e.Move)
}

func (e *GoOnlyError) Unwrap() error { return ErrGoOnly }
