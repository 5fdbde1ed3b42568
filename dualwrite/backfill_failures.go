package dualwrite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

// recordFailure notes a row of this backfill whose transform failed.
func (b *bf) recordFailure(ctx context.Context, q dialect.Querier, key []any, terr error) error {
	return recordFailure(ctx, q, b.m.Name, key, terr, b.mg.utc())
}

// retryFailed transforms the recorded failed rows again.
func (b *bf) retryFailed(ctx context.Context, res *BackfillResult) error {
	if !b.transform.HasGo() {
		return nil
	}
	var keys []string
	if err := b.mg.db.SelectContext(ctx, &keys, b.mg.db.Rebind(`SELECT row_key FROM `+FailuresTable+` WHERE move = ? ORDER BY row_key`), b.m.Name); err != nil {
		return err
	}
	for _, k := range keys {
		key, err := decodeKey(k)
		if err != nil {
			return err
		}
		err = b.withTx(ctx, func(tx *sqlx.Tx) error {
			var v any
			if err := tx.QueryRowxContext(ctx, tx.Rebind(`SELECT `+b.srcCol+` FROM `+b.tbl+` WHERE `+eqAll(b.keys, "")+sqldialect.ForUpdate(b.d)), key...).Scan(&v); err != nil {
				if errors.Is(err, sql.ErrNoRows) {
					return b.forgetFailure(ctx, tx, k) // the row is gone
				}
				return err
			}
			v = move.Normalize(v)
			out, terr := b.transform.Apply(v)
			if terr != nil {
				return b.recordFailure(ctx, tx, key, terr)
			}
			if _, err := tx.ExecContext(ctx, tx.Rebind(b.writeSQL()), b.writeArgs(key, out)...); err != nil {
				return err
			}
			return b.forgetFailure(ctx, tx, k)
		})
		if err != nil {
			return fmt.Errorf("dualwrite: retry failed row %s: %w", k, err)
		}
	}
	var err error
	res.Failed, err = countFailures(ctx, b.mg.db, b.m.Name)
	return err
}

// countFailures is the number of rows recorded as failed: the one count of
// them, which the ledger's failed_rows is derived from too.
func countFailures(ctx context.Context, q dialect.Querier, name string) (int64, error) {
	var n int64
	err := q.GetContext(ctx, &n, q.Rebind(`SELECT COUNT(*) FROM `+FailuresTable+` WHERE move = ?`), name)
	return n, err
}

func (b *bf) forgetFailure(ctx context.Context, tx *sqlx.Tx, k string) error {
	_, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM `+FailuresTable+` WHERE move = ? AND row_key = ?`), b.m.Name, k)
	return err
}

func (b *bf) withTx(ctx context.Context, fn func(*sqlx.Tx) error) error {
	tx, err := b.mg.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// FailedRow is a row whose transform failed.
type FailedRow struct {
	Key      string    `db:"row_key" json:"key"`
	Error    string    `db:"error" json:"error"`
	FailedAt time.Time `db:"failed_at" json:"failed_at"`
}

// KeyValues decodes Key into the key's column values.
func (f FailedRow) KeyValues() ([]any, error) { return decodeKey(f.Key) }

// FailedRows lists up to limit rows recorded as failed.
func (mg *Manager) FailedRows(ctx context.Context, name string, limit int) ([]FailedRow, error) {
	if _, err := mg.Move(name); err != nil {
		return nil, err
	}
	var out []FailedRow
	err := mg.db.SelectContext(ctx, &out, mg.db.Rebind(`SELECT row_key, error, failed_at FROM `+FailuresTable+` WHERE move = ? ORDER BY failed_at, row_key`+sqldialect.LimitSQL(limit)), name)
	return out, err
}

type failure struct {
	key []any
	err error
}

// recordFailure notes in tandem_move_failures a row whose transform failed.
func recordFailure(ctx context.Context, q dialect.Querier, name string, key []any, terr error, now time.Time) error {
	k := encodeKey(key)
	if _, err := q.ExecContext(ctx, q.Rebind(`DELETE FROM `+FailuresTable+` WHERE move = ? AND row_key = ?`), name, k); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO `+FailuresTable+` (move, row_key, error, failed_at) VALUES (?, ?, ?, ?)`), name, k, terr.Error(), now)
	return err
}
