package dialect

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"
)

type txBeginner interface {
	BeginTxx(ctx context.Context, opts *sql.TxOptions) (*sqlx.Tx, error)
}

// InTx runs fn in one transaction: on q itself when q is one already (what
// Locked gives fn on SQLite and PostgreSQL), else on a transaction begun on
// q (the bare connection Locked gives fn on MariaDB, or a pool), committed
// when fn returns nil and rolled back otherwise. Writes that must land
// together or not at all use it, so they do on every engine.
func InTx(ctx context.Context, q Querier, fn func(q Querier) error) error {
	if tx, ok := q.(*sqlx.Tx); ok {
		return fn(tx)
	}
	b, ok := q.(txBeginner)
	if !ok {
		return fmt.Errorf("dialect: cannot begin a transaction on %T", q)
	}
	tx, err := b.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
