package migfile

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with errors.Is; the typed errors carry the
// details and unwrap to these.
var (
	// ErrInvalid means bad input: an unknown format or version, or a
	// phase with no DDL to write.
	ErrInvalid = errors.New("invalid input")
	// ErrExists means a file, or a migration with the same version, is
	// already in the directory.
	ErrExists = errors.New("migration file exists")
)

// InputError is bad input, with what to do instead.
type InputError struct {
	Field  string
	Value  string
	Reason string
}

func (e *InputError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Reason)
}

func (e *InputError) Unwrap() error { return ErrInvalid }

// ExistsError is a file Write would not replace.
type ExistsError struct {
	Path   string
	Reason string
}

func (e *ExistsError) Error() string { return fmt.Sprintf("%s: %s", e.Path, e.Reason) }

func (e *ExistsError) Unwrap() error { return ErrExists }
