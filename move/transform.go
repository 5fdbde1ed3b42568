package move

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

// Placeholder is how a SQL transform expression names the value it
// transforms: "CAST({value} AS INTEGER) * 100". Render replaces every
// occurrence with the already-quoted source reference, such as NEW."price"
// in a trigger or t."price" in a backfill.
const Placeholder = "{value}"

// Transform turns a value of one column into the value of the other.
//
// Either form may be given, or both: the SQL expression lets the backfill run
// as one UPDATE per batch and lets triggers derive a column inside the
// database; the Go function serves application code and any engine without
// an expression. When both are given they must agree; verify checks that.
// A Transform with neither is the identity: the value is copied as is.
type Transform struct {
	// Go transforms one value. It receives nil, int64, float64, bool,
	// string or time.Time (bytes from the driver arrive as string) and
	// returns a value the driver can write. An error marks the row failed.
	Go func(v any) (any, error) `yaml:"-" json:"-"`
	// SQL is the default expression, using Placeholder for the value.
	// Only a Go function can mark a row failed: MySQL and SQLite convert a
	// bad value silently (CAST('abc' AS SIGNED) is 0), so an expression
	// that may meet one must guard itself, e.g. CASE WHEN {value} REGEXP
	// '^[0-9]+$' THEN CAST({value} AS SIGNED) ELSE NULL END, and let
	// verify count the NULLs as mismatches.
	SQL string `yaml:"sql,omitempty" json:"sql,omitempty"`
	// Dialects overrides SQL for one engine ("sqlite", "postgres", "mysql").
	Dialects map[dialect.Name]string `yaml:"dialects,omitempty" json:"dialects,omitempty"`
}

// IsIdentity reports whether t copies the value unchanged.
func (t Transform) IsIdentity() bool {
	return t.Go == nil && t.SQL == "" && len(t.Dialects) == 0
}

// HasSQL reports whether t can run as SQL on engine d: an identity, or an
// expression for d (its own or the default).
func (t Transform) HasSQL(d dialect.Name) bool {
	return t.IsIdentity() || t.expr(d) != ""
}

func (t Transform) expr(d dialect.Name) string {
	if e, ok := t.Dialects[d]; ok && e != "" {
		return e
	}
	return t.SQL
}

// Render returns the SQL expression for engine d applied to src, an already
// quoted column reference. The identity renders as src itself. A transform
// with only a Go function returns ErrNoSQL.
func (t Transform) Render(d dialect.Name, src string) (string, error) {
	if t.IsIdentity() {
		return src, nil
	}
	e := t.expr(d)
	if e == "" {
		return "", ErrNoSQL
	}
	// Parenthesized so that an expression like "{value} + 1" composes
	// safely inside a larger one.
	return "(" + strings.ReplaceAll(e, Placeholder, src) + ")", nil
}

// Apply runs the Go form of t on v. The identity returns v. A transform with
// only SQL returns ErrNoSQL's counterpart: it cannot run in Go, reported as
// an error so that callers fall back to SQL.
func (t Transform) Apply(v any) (any, error) {
	if t.IsIdentity() {
		return v, nil
	}
	if t.Go == nil {
		return nil, ErrNoGo
	}
	return t.Go(normalize(v))
}

// HasGo reports whether t can run in Go (an identity or a Go function).
func (t Transform) HasGo() bool { return t.IsIdentity() || t.Go != nil }

// normalize turns driver bytes into a string, so a Go transform sees the
// same value on every engine (MySQL returns most columns as []byte).
func normalize(v any) any {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}

// Normalize is what Apply does to a value read from a driver before the Go
// transform sees it; exported for code that compares values across engines.
func Normalize(v any) any { return normalize(v) }

func checkExpr(move, field, e string) error {
	if e == "" {
		return nil
	}
	if !strings.Contains(e, Placeholder) {
		return &ValidationError{Move: move, Field: field, Value: e, Reason: "the expression must refer to the value as " + Placeholder}
	}
	// One expression, never a statement: a ';' or a comment could end the
	// generated statement or hide the rest of it.
	if strings.ContainsAny(e, ";") || strings.Contains(e, "--") || strings.Contains(e, "/*") {
		return &ValidationError{Move: move, Field: field, Value: e, Reason: "an expression may not contain ';', '--' or '/*'"}
	}
	if strings.Count(e, "(") != strings.Count(e, ")") {
		return &ValidationError{Move: move, Field: field, Value: e, Reason: "unbalanced parentheses"}
	}
	if strings.Count(e, "'")%2 != 0 {
		return &ValidationError{Move: move, Field: field, Value: e, Reason: "unterminated string literal"}
	}
	return nil
}

func (t Transform) validate(move, field string) error {
	if err := checkExpr(move, field+".SQL", t.SQL); err != nil {
		return err
	}
	for d, e := range t.Dialects {
		if _, err := sqldialect.For(d); err != nil {
			return &ValidationError{Move: move, Field: field + ".Dialects", Value: string(d), Reason: "unknown engine: want sqlite, postgres or mysql"}
		}
		if err := checkExpr(move, field+".Dialects["+string(d)+"]", e); err != nil {
			return err
		}
	}
	return nil
}

// field names the declaration field an engine's expression came from.
func (t Transform) field(d dialect.Name) string {
	if e, ok := t.Dialects[d]; ok && e != "" {
		return ".Dialects[" + string(d) + "]"
	}
	return ".SQL"
}

// CheckTransforms checks each SQL transform of m on the engine itself
// before anything is written: the engine parses and prepares the exact
// expression tandem will run, reading the old column for Forward and the
// new column (or, before it exists, a bound value as tandem binds one) for
// Backward, in a read-only transaction that is rolled back. A comment, a
// second statement or anything the engine cannot parse is refused with a
// *ValidationError (errors.Is ErrInvalid) wrapping the engine's refusal,
// with the statement it was checked in. The tables must exist
// (CheckSchema first). Identity and Go-only transforms have nothing to
// check. A transform that fails on some values is still recorded per row
// by the backfill: this checks the expression, not the data.
func (m Move) CheckTransforms(ctx context.Context, db *sqlx.DB, engine dialect.Name) error {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return derr
	}
	tbl, err := d.Quote(m.Table)
	if err != nil {
		return err
	}
	oldc, err := d.Quote(m.Old)
	if err != nil {
		return err
	}
	newTbl, err := d.Quote(m.NewTable())
	if err != nil {
		return err
	}
	newc, err := d.Quote(m.New.Column)
	if err != nil {
		return err
	}
	// The backward expression reads the new column once it exists; before
	// the expand step adds it, its value is checked as a bound parameter.
	bwdTable, bwdCol := tbl, ""
	if cols, err := liveColumns(ctx, db, d, m.NewTable()); err != nil {
		return fmt.Errorf("move %q: read schema of %s: %w", m.Name, m.NewTable(), err)
	} else if _, ok := cols[strings.ToLower(m.New.Column)]; ok {
		bwdTable, bwdCol = newTbl, newc
	}
	for _, c := range []struct {
		name       string
		t          Transform
		table, col string
	}{{"Forward", m.Forward, tbl, oldc}, {"Backward", m.Backward, bwdTable, bwdCol}} {
		e := c.t.expr(d.Name())
		if c.t.IsIdentity() || e == "" {
			continue
		}
		t := c.t
		err := sqldialect.CheckExpression(ctx, db, d, sqldialect.ExpressionCheck{Table: c.table, Column: c.col, Expr: e,
			Render: func(ref string) (string, error) { return t.Render(d.Name(), ref) }})
		var ee *sqldialect.ExpressionError
		if errors.As(err, &ee) {
			return &ValidationError{Move: m.Name, Field: c.name + c.t.field(d.Name()), Value: e,
				Reason: "checked on the engine before any change: correct the expression in the move's declaration (plan file) and run the command again", Err: ee}
		}
		if err != nil {
			return fmt.Errorf("move %q: check %s transform on %s: %w", m.Name, strings.ToLower(c.name), d.Name(), err)
		}
	}
	return nil
}
