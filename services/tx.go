package services

import (
	"context"

	"github.com/jmoiron/sqlx"
)

type sqlxTx = sqlx.Tx

// tx runs fn in one transaction; on SQLite it is an immediate one, so a
// read-then-write never deadlocks on lock upgrade.
func (r *Registry) tx(ctx context.Context, fn func(*sqlxTx) error) error {
	tx, err := r.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
