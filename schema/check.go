package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tandem-go/tandem/dialect"
)

// ErrNotEnsured means some of tandem's tables are missing or behind this
// build: `tandem schema ensure` (Ensure) has not run since.
var ErrNotEnsured = errors.New("tandem's tables are not ensured")

// NotEnsuredError lists the tables missing or behind, with their versions.
type NotEnsuredError struct {
	Tables []string // "tandem_moves (version 0, want 2)"
}

func (e *NotEnsuredError) Error() string {
	return fmt.Sprintf("%v: %s; run `tandem schema ensure` (or schema.Ensure with the package's Tables())", ErrNotEnsured, strings.Join(e.Tables, ", "))
}

func (e *NotEnsuredError) Unwrap() error { return ErrNotEnsured }

// Check reports, with a *NotEnsuredError, the tables that are missing or
// at an older version than this build's; it only reads. tandem's
// constructors (services.New, dualwrite.New, dualwrite.NewTracker) never
// create or migrate tables: they check them with Check, and Ensure is the
// one explicit step that writes the schema (logged, with a dry run). So a
// process without DDL rights starts, and a read-only command never writes.
// A table newer than this build is ErrTooNew's concern (Ensure refuses
// it); Check accepts it.
func Check(ctx context.Context, db *dialect.DB, tables []Table) error {
	have, err := Versions(ctx, db)
	if err != nil {
		return err
	}
	var behind []string
	for _, t := range tables {
		if v := have[t.Name]; v < t.Latest() {
			behind = append(behind, fmt.Sprintf("%s (version %d, want %d)", t.Name, v, t.Latest()))
		}
	}
	if len(behind) > 0 {
		return &NotEnsuredError{Tables: behind}
	}
	return nil
}
