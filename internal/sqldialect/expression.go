package sqldialect

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/tandem-go/tandem/dialect"
)

// ErrBadExpression means the engine itself refused a SQL expression, or
// read it as something other than the one expression tandem generated
// (a comment or a second statement hid part of it).
var ErrBadExpression = errors.New("the engine refuses the SQL expression")

// ExpressionError is an expression the engine refused, with the statement
// it was checked in and the engine's own answer.
type ExpressionError struct {
	Engine    dialect.Name
	Expr      string // the expression as given, before rendering
	Statement string // what the engine was asked to prepare
	Reason    string
}

func (e *ExpressionError) Error() string {
	return fmt.Sprintf("%s refuses %q as one SQL expression: %s", e.Engine, e.Expr, e.Reason)
}

func (e *ExpressionError) Unwrap() error { return ErrBadExpression }

// ExpressionCheck is one SQL expression to check on the engine.
type ExpressionCheck struct {
	// Table is a quoted table the expression is read from.
	Table string
	// Expr is the expression as declared, for the error message.
	Expr string
	// Render returns the expression with its value put in: given ref, the
	// quoted column or bound parameter that stands for the value, it
	// returns the full expression tandem generates.
	Render func(ref string) (string, error)
	// Column is the quoted column of Table holding the value. Empty binds
	// the value as a parameter instead, as tandem does when it writes a
	// value it was given (see UpdateOneValue).
	Column string
}

// CheckExpression asks the engine to parse and prepare c's expression
// exactly as tandem runs it, in a read-only transaction that is rolled
// back, reading no row:
//
//	SELECT (<expr>) AS tandem_v, 1 AS tandem_check_<nonce> FROM <table> WHERE 1=0
//
// on one line. A comment in the expression would swallow the sentinel
// column (whose name the expression cannot guess), and a second statement
// would not prepare, so both are refused, as is anything the engine cannot
// parse or type. The result must have exactly the two columns. It returns
// an *ExpressionError (errors.Is ErrBadExpression) when the engine refuses.
func CheckExpression(ctx context.Context, db *sqlx.DB, d Dialect, c ExpressionCheck) error {
	if strings.ContainsAny(c.Expr, "\r\n\x00") {
		return &ExpressionError{Engine: d.Name(), Expr: c.Expr, Reason: "an expression is one line: it may not contain a line break or NUL"}
	}
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	sentinel := "tandem_check_" + hex.EncodeToString(nonce[:])
	ref, from, args := c.Column, c.Table, []any(nil)
	if ref == "" {
		args = []any{nil}
		ref, from = d.boundValue(c.Table)
	}
	expr, err := c.Render(ref)
	if err != nil {
		return err
	}
	stmt := "SELECT " + expr + " AS tandem_v, 1 AS " + sentinel + " FROM " + from + " WHERE 1=0"
	refuse := func(reason string) error {
		return &ExpressionError{Engine: d.Name(), Expr: c.Expr, Statement: stmt, Reason: reason}
	}
	var cols []string
	err = d.readOnly(ctx, db, func(q queryer) error {
		rows, err := q.QueryContext(ctx, stmt, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		if cols, err = rows.Columns(); err != nil {
			return err
		}
		for rows.Next() {
		}
		return rows.Err()
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var txErr *txError
	if errors.As(err, &txErr) {
		return txErr.err
	}
	if err != nil {
		return refuse(err.Error())
	}
	want := []string{"tandem_v", sentinel}
	if !slices.EqualFunc(cols, want, strings.EqualFold) {
		return refuse(fmt.Sprintf("the engine read it as a statement with columns %v, not the one expression tandem generated (a comment or a second statement?)", cols))
	}
	return nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// txError is a failure to open or end the transaction: not the
// expression's fault.
type txError struct{ err error }

func (e *txError) Error() string { return e.err.Error() }

// readOnlyTx runs fn in a transaction that can only read, and rolls it
// back (SQLite has its own, see sqlite.go).
func readOnlyTx(ctx context.Context, db *sqlx.DB, fn func(queryer) error) error {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return &txError{err}
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}
