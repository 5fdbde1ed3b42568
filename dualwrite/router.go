package dualwrite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

// ErrNoRow means the row read or written does not exist.
var ErrNoRow = errors.New("no such row")

// Router reads and writes a moved value the way a phase requires. Values
// are always in the new form: a read of old is passed through Forward, a
// write of old through Backward. Its fragments (Select, Set, Insert) put
// the routing into the application's own statements; ReadValue and
// WriteValue are typed helpers of one statement each; Read and Write run
// a query of their own, on any dialect.Querier (*sqlx.DB, *sqlx.Tx,
// *sqlx.Conn).
//
// What each phase does:
//
//	legacy      Read: old          Write: old
//	write-both  Read: old          Write: old and new
//	read-new    Read: new          Write: old and new
//	write-new   Read: new          Write: new
//	contracted  Read: new          Write: new
//
// The read rule during read-new: reads go to new only, never to old and
// never "new, falling back to old". The gate into read-new guarantees that
// every row's new is complete (a verified backfill with no failed rows, and
// every instance writing both, or triggers), so new is never behind old; a
// fallback would hide a row the backfill missed and make NULL ambiguous.
// For a cross-table move a source row without a destination row reads as
// NULL (nil).
//
// Write both sides in one transaction (pass a *sqlx.Tx) so readers of
// either column never see one side without the other.
type Router struct {
	m                     move.Move
	d                     sqldialect.Dialect
	tbl, ntbl, oldc, newc string
	keys, nkeys           []string
	whereKey, whereNewKey string

	// Prepared once for the fragment path (fragments.go, typed.go).
	sel           [phaseCount]Select
	read          [phaseCount]string     // SELECT <value> FROM ... WHERE key, final placeholders
	write         [phaseCount]string     // UPDATE ... SET <clauses> WHERE key, final placeholders ("": nothing to set)
	wtext         [phaseCount]*writeText // the write fragments' text ('?' engines only)
	shapes        [phaseCount]columns    // the columns each phase writes, without values
	shapeErr      [phaseCount]error
	ph            *placeholderTable
	readAsIs      selectInfo // what a Select reads as is refers to
	readForward   selectInfo // ... and one through the Go Forward transform
	backwardParts []string   // the SQL Backward split at its {value}s
	backwardErr   error
	upsertNew     string
	lockSrc       string // SELECT 1 ... FOR UPDATE of the source row
}

// NewRouter prepares the SQL of m for engine d.
func NewRouter(m move.Move, engine dialect.Name) (*Router, error) {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return nil, fmt.Errorf("dualwrite: router: %w", derr)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("dualwrite: router: %w", err)
	}
	r := &Router{m: m, d: d}
	r.tbl = sqldialect.MustQuote(d, m.Table)
	r.ntbl = sqldialect.MustQuote(d, m.NewTable())
	r.oldc = sqldialect.MustQuote(d, m.Old)
	r.newc = sqldialect.MustQuote(d, m.New.Column)
	r.keys, _ = quoteAll(d, m.Key)
	r.nkeys, _ = quoteAll(d, m.NewKey())
	r.whereKey = eqAll(r.keys, "")
	r.whereNewKey = eqAll(r.nkeys, "")
	r.ph = placeholdersOf(d)
	r.readAsIs = selectInfo{move: m.Name}
	r.readForward = selectInfo{move: m.Name, forward: m.Forward.Apply}
	r.prepareFragments()
	return r, nil
}

func eqAll(cols []string, alias string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = alias + c + " = ?"
	}
	return strings.Join(parts, " AND ")
}

func (r *Router) checkKey(key []any) error {
	if len(key) != len(r.m.Key) {
		return fmt.Errorf("dualwrite: move %q: want %d key value(s) (%s), got %d", r.m.Name, len(r.m.Key), strings.Join(r.m.Key, ", "), len(key))
	}
	return nil
}

// Read returns the moved value of the row with key, as phase p reads it,
// in the new form. A missing row gives an error matching ErrNoRow.
func (r *Router) Read(ctx context.Context, q dialect.Querier, p move.Phase, key ...any) (any, error) {
	if err := r.checkKey(key); err != nil {
		return nil, err
	}
	var query string
	goForward := false
	switch {
	case p.ReadsOld():
		col := r.oldc
		if r.m.Forward.HasGo() {
			goForward = !r.m.Forward.IsIdentity()
		} else {
			expr, err := r.m.Forward.Render(r.d.Name(), r.oldc)
			if err != nil {
				return nil, err
			}
			col = expr
		}
		query = `SELECT ` + col + ` FROM ` + r.tbl + ` WHERE ` + r.whereKey
	case !r.m.CrossTable():
		query = `SELECT ` + r.newc + ` FROM ` + r.tbl + ` WHERE ` + r.whereKey
	default:
		on := make([]string, len(r.keys))
		for i := range r.keys {
			on[i] = "s." + r.keys[i] + " = n." + r.nkeys[i]
		}
		query = `SELECT n.` + r.newc + ` FROM ` + r.tbl + ` s LEFT JOIN ` + r.ntbl + ` n ON ` + strings.Join(on, " AND ") + ` WHERE ` + eqAll(r.keys, "s.")
	}
	var v any
	if err := q.QueryRowxContext(ctx, q.Rebind(query), key...).Scan(&v); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("dualwrite: move %q: read %v: %w", r.m.Name, key, ErrNoRow)
		}
		return nil, fmt.Errorf("dualwrite: move %q: read: %w", r.m.Name, err)
	}
	v = move.Normalize(v)
	if goForward {
		out, err := r.m.Forward.Apply(v)
		if err != nil {
			return nil, &move.TransformError{Move: r.m.Name, Direction: "forward", Value: v, Err: err}
		}
		return out, nil
	}
	return v, nil
}

// Write sets the moved value of the existing row with key, as phase p
// writes it; value is in the new form. A row that does not exist gives an
// error matching ErrNoRow, and nothing is written: across tables no
// destination row is created for a missing source row.
//
// A SQL Backward expression is applied in the database with value bound
// once, however often the expression names it; the expression's text is
// never scanned for placeholders, so it may hold a literal '?' or
// PostgreSQL's jsonb ? operator.
func (r *Router) Write(ctx context.Context, q dialect.Querier, p move.Phase, value any, key ...any) error {
	if err := r.checkKey(key); err != nil {
		return err
	}
	var cols, exprs []string
	sqlBackward := false
	var old any
	if p.WritesOld() {
		switch {
		case r.m.Backward.HasGo():
			var err error
			if old, err = r.m.Backward.Apply(value); err != nil {
				return &move.TransformError{Move: r.m.Name, Direction: "backward", Value: value, Err: err}
			}
			cols, exprs = append(cols, r.oldc), append(exprs, "?")
		default:
			expr, err := r.m.Backward.Render(r.d.Name(), valueRef)
			if err != nil {
				return err
			}
			sqlBackward = true
			cols, exprs = append(cols, r.oldc), append(exprs, expr)
		}
	}
	if p.WritesNew() && !r.m.CrossTable() {
		cols, exprs = append(cols, r.newc), append(exprs, valueRef)
	}
	found := false
	if len(cols) > 0 {
		var stmt string
		var args []any
		if sqlBackward {
			stmt = sqldialect.UpdateOneValue(r.d, r.tbl, cols, exprs, valueRef, r.keys)
			args = append([]any{value}, key...)
		} else {
			sets := make([]string, len(cols))
			for i, c := range cols {
				sets[i] = c + " = ?"
				if exprs[i] == "?" {
					args = append(args, old)
				} else {
					args = append(args, value)
				}
			}
			stmt = q.Rebind(`UPDATE ` + r.tbl + ` SET ` + strings.Join(sets, ", ") + ` WHERE ` + r.whereKey)
			args = append(args, key...)
		}
		res, err := q.ExecContext(ctx, stmt, args...)
		if err != nil {
			return fmt.Errorf("dualwrite: move %q: write: %w", r.m.Name, err)
		}
		// A pool opened by dialect.Open counts rows matched on every
		// engine; one an application opened on MySQL without
		// clientFoundRows counts rows changed, so 0 can also mean the row
		// already held these values: the check below tells them apart.
		n, err := res.RowsAffected()
		found = err == nil && n > 0
	}
	if !found {
		// No update told whether the row exists (write-new across tables
		// updates nothing in the source table). A destination row hangs off its source row: never
		// create one for a key the source table does not have. The check
		// locks the source row where the engine can, inside the caller's
		// transaction.
		var one int
		err := q.QueryRowxContext(ctx, q.Rebind(`SELECT 1 FROM `+r.tbl+` WHERE `+r.whereKey+sqldialect.ForUpdate(r.d)), key...).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("dualwrite: move %q: write %v: %w", r.m.Name, key, ErrNoRow)
		}
		if err != nil {
			return fmt.Errorf("dualwrite: move %q: write: %w", r.m.Name, err)
		}
	}
	if p.WritesNew() && r.m.CrossTable() {
		stmt := sqldialect.UpsertSQL(r.d, r.ntbl, r.nkeys, r.newc)
		if _, err := q.ExecContext(ctx, q.Rebind(stmt), append(append([]any{}, key...), value)...); err != nil {
			return fmt.Errorf("dualwrite: move %q: write: %w", r.m.Name, err)
		}
	}
	return nil
}

// valueRef is what a Backward expression is rendered with before
// UpdateOneValue puts the bound value in its place; it cannot occur in an
// expression (NUL bytes).
const valueRef = "\x00tandem-value\x00"
