package services

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

type sqlxTx = sqlx.Tx

// lockWait bounds the wait for the registry lock.
const lockWait = 30 * time.Second

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

// serialized runs fn in one transaction while holding the registry's
// database lock. Register and Finalize both read, then write; under
// PostgreSQL's and MariaDB's default isolation neither sees the other's
// uncommitted row, so without the lock a release below the floor could
// register while the floor is being finalized, or two processes could take
// over one id at once.
func (r *Registry) serialized(ctx context.Context, fn func(q dialect.Querier) error) error {
	return sqldialect.Of(r.db).Locked(ctx, r.db.SQLX(), "registry", lockWait, func(ctx context.Context, q dialect.Querier) error {
		// Locked hands over a transaction on SQLite and PostgreSQL and a
		// bare connection on MariaDB: InTx makes it one transaction on each.
		return dialect.InTx(ctx, q, fn)
	})
}
