package dualwrite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"

	"github.com/tandem-go/tandem/move"
)

// ErrNull means a moved value read as NULL into a Go type that cannot hold
// NULL. Scan into a sql.Null[T] or a pointer where NULL is expected (a
// cross-table source row without a destination row reads as NULL).
var ErrNull = errors.New("the moved value is NULL")

// Into returns the scan destination for the column of s: the value read is
// turned into the new form (a Go Forward transform) and stored in *dst,
// converted as database/sql converts a scanned value (a *T that is a
// sql.Scanner, such as sql.Null[int64], scans it itself).
//
//	sel, _ := router.Select(phase, "")
//	err := db.QueryRowContext(ctx, `SELECT name, `+sel.Expr+` FROM items`+sel.Join+` WHERE items.id = ?`, id).
//		Scan(&name, dualwrite.Into(sel, &cents))
func Into[T any](s Select, dst *T) sql.Scanner { return &into[T]{info: s.info, dst: dst} }

// into is Into's scanner: two pointers, so the one allocation per scan is
// small.
type into[T any] struct {
	info *selectInfo
	dst  *T
}

func (d *into[T]) Scan(src any) error {
	var moveName string
	if d.info != nil {
		moveName = d.info.move
		if d.info.forward != nil {
			v, err := Select{info: d.info}.Value(src)
			if err != nil {
				return err
			}
			return assign(moveName, d.dst, v)
		}
	}
	// Read as is. A driver's value of type T is stored as it is: no *T
	// whose T a driver returns (int64, float64, bool, []byte, string,
	// time.Time) is a sql.Scanner, so assign would store it the same way.
	if t, ok := src.(T); ok {
		*d.dst = owned(t)
		return nil
	}
	return assign(moveName, d.dst, src)
}

// owned copies a []byte (also one held in an interface): a driver may
// reuse the buffer it passed to Scan for the next row, so what a scan
// stores must not share it, as database/sql's own Scan copies it.
func owned[T any](t T) T {
	if b, ok := any(t).([]byte); ok && b != nil {
		return any(bytes.Clone(b)).(T)
	}
	return t
}

// assign stores v in *dst the way database/sql's Scan would.
func assign[T any](moveName string, dst *T, v any) error {
	if sc, ok := any(dst).(sql.Scanner); ok {
		return sc.Scan(v)
	}
	if v == nil {
		switch reflect.TypeFor[T]().Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
			var zero T
			*dst = zero
			return nil
		}
		return fmt.Errorf("dualwrite: move %q: scan into %T: %w (scan into a sql.Null[%T] or a pointer)", moveName, *dst, ErrNull, *dst)
	}
	if t, ok := v.(T); ok {
		*dst = owned(t)
		return nil
	}
	// sql.Null's Scan converts as Rows.Scan does (bytes to string, int64
	// to int, a string of digits to a number ...).
	var n sql.Null[T]
	if err := n.Scan(v); err != nil {
		return fmt.Errorf("dualwrite: move %q: %w", moveName, err)
	}
	*dst = n.V
	return nil
}

// ReadValue reads the moved value of the row with key at phase p, in the
// new form, as a T: one SELECT (joining the new table for a cross-table
// move at read-new and later). A missing row gives an error matching
// ErrNoRow; NULL into a T that cannot hold it, ErrNull.
func ReadValue[T any](ctx context.Context, q Conn, r *Router, p move.Phase, key ...any) (T, error) {
	var v T
	if err := r.checkKey(key); err != nil {
		return v, err
	}
	if !p.Valid() {
		return v, fmt.Errorf("dualwrite: move %q: read: %w", r.m.Name, &move.PhaseError{Input: p.String()})
	}
	stmt := r.read[p]
	if stmt == "" {
		// The Forward has no expression for this engine: say so.
		_, err := r.Select(p, "")
		return v, err
	}
	if err := q.QueryRowContext(ctx, stmt, key...).Scan(Into(r.sel[p], &v)); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return v, fmt.Errorf("dualwrite: move %q: read %v: %w", r.m.Name, key, ErrNoRow)
		}
		return v, fmt.Errorf("dualwrite: move %q: read: %w", r.m.Name, err)
	}
	return v, nil
}

// beginner is a Conn that can start a transaction (*sql.DB, *sql.Conn and
// sqlx's wrappers of them); a *sql.Tx cannot, and is one already.
type beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// WriteValue sets the moved value of the existing row with key at phase p;
// value is in the new form. Within one table it is one UPDATE. A
// cross-table move writes the destination row too, and both statements run
// in one transaction: q's when q is a transaction, otherwise one WriteValue
// begins and commits. A missing row gives an error matching ErrNoRow and
// writes nothing.
func WriteValue[T any](ctx context.Context, q Conn, r *Router, p move.Phase, value T, key ...any) error {
	if err := r.checkKey(key); err != nil {
		return err
	}
	set, err := r.Set(p, value)
	if err != nil {
		return err
	}
	// The statement is the router's, kept per phase; only the values are
	// bound here, in its order: the clauses', then the key.
	stmt := r.write[p]
	var args []any
	if stmt != "" {
		n := len(key)
		for _, c := range set.cols.list() {
			n += len(c.parts) - 1
		}
		args = make([]any, 0, n)
		for _, c := range set.cols.list() {
			for range len(c.parts) - 1 {
				args = append(args, c.arg)
			}
		}
		args = append(args, key...)
	}
	if !set.Needed() {
		return r.update(ctx, q, stmt, args, key)
	}
	// Two statements: the source row (updated, or only checked and locked
	// where nothing of it changes), then the destination row.
	write := func(q Conn) error {
		if stmt != "" {
			if err := r.update(ctx, q, stmt, args, key); err != nil {
				return err
			}
		} else if err := r.lockSource(ctx, q, key); err != nil {
			return err
		}
		return set.Finish(ctx, q, key...)
	}
	bq, ok := q.(beginner)
	if !ok {
		return write(q)
	}
	tx, err := bq.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("dualwrite: move %q: write: %w", r.m.Name, err)
	}
	defer tx.Rollback()
	if err := write(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("dualwrite: move %q: write: commit: %w", r.m.Name, err)
	}
	return nil
}

// lockSource checks that the source row with key exists, locking it where
// the engine can, before a destination row is written for it.
func (r *Router) lockSource(ctx context.Context, q Conn, key []any) error {
	var one int
	err := q.QueryRowContext(ctx, r.lockSrc, key...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("dualwrite: move %q: write %v: %w", r.m.Name, key, ErrNoRow)
	}
	if err != nil {
		return fmt.Errorf("dualwrite: move %q: write: %w", r.m.Name, err)
	}
	return nil
}

func (r *Router) update(ctx context.Context, q Conn, stmt string, args, key []any) error {
	res, err := q.ExecContext(ctx, stmt, args...)
	if err != nil {
		return fmt.Errorf("dualwrite: move %q: write: %w", r.m.Name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		// No row, or (MySQL without clientFoundRows, see Write) a row that
		// already held these values.
		return r.lockSource(ctx, q, key)
	}
	return nil
}
