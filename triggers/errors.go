package triggers

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Match them with errors.Is; the typed errors below carry
// the details and unwrap to these.
var (
	// ErrInvalid means the move cannot be turned into triggers: an
	// identifier that cannot be quoted safely, a transform without SQL for
	// the engine, or one that is not a single expression.
	ErrInvalid = errors.New("cannot generate triggers for the move")
	// ErrSchema means a table or column the triggers use is missing.
	ErrSchema = errors.New("schema not ready for triggers")
	// ErrDrift means the installed triggers are missing, changed or
	// accompanied by stale ones: they are not what tandem generates now.
	ErrDrift = errors.New("installed triggers differ from the generated ones")
)

// GenerateError reports a move that cannot be turned into triggers.
type GenerateError struct {
	Move    string
	Dialect string
	Err     error // a *move.ValidationError or *sqldialect.TriggerSpecError
}

func (e *GenerateError) Error() string {
	return fmt.Sprintf("generate %s triggers for move %q: %v", e.Dialect, e.Move, e.Err)
}

func (e *GenerateError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// SchemaError names the table or column that must exist before the
// triggers can be installed.
type SchemaError struct {
	Move   string
	Table  string
	Column string // empty when the whole table is missing
}

func (e *SchemaError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("install triggers for move %q: table %q does not exist (run the move's expand step first)", e.Move, e.Table)
	}
	return fmt.Sprintf("install triggers for move %q: table %q has no column %q (run the move's expand step first)", e.Move, e.Table, e.Column)
}

func (e *SchemaError) Unwrap() error { return ErrSchema }

// DriftError lists every object that is not as generated.
type DriftError struct {
	Move    string
	Objects []Status // only those not OK
}

func (e *DriftError) Error() string {
	parts := make([]string, len(e.Objects))
	for i, o := range e.Objects {
		parts[i] = fmt.Sprintf("%s %s %s", o.Kind, o.Name, o.State)
	}
	return fmt.Sprintf("triggers of move %q: %s (run 'tandem triggers install %s' to repair)", e.Move, strings.Join(parts, ", "), e.Move)
}

func (e *DriftError) Unwrap() error { return ErrDrift }
