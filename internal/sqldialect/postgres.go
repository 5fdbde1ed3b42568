package sqldialect

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"
	"github.com/tandem-go/tandem/dialect"
)

type postgresDialect struct{}

func (postgresDialect) Name() dialect.Name             { return dialect.Postgres }
func (postgresDialect) Quote(s string) (string, error) { return quoteWith(s, `"`) }
func (postgresDialect) KeyType() string                { return "VARCHAR(255)" }
func (postgresDialect) TextType() string               { return "TEXT" }
func (postgresDialect) BigIntType() string             { return "BIGINT" }
func (postgresDialect) TimestampType() string          { return "TIMESTAMPTZ" }
func (postgresDialect) TransactionalDDL() bool         { return true }
func (postgresDialect) IsUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}

func (postgresDialect) TableExists(ctx context.Context, q dialect.Querier, table string) (bool, error) {
	var n int
	err := q.GetContext(ctx, &n, q.Rebind(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?`), table)
	return n > 0, err
}

func (postgresDialect) Columns(ctx context.Context, q dialect.Querier, table string) ([]Column, error) {
	return infoSchemaColumns(ctx, q, `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`, table)
}

func (postgresDialect) IndexExists(ctx context.Context, q dialect.Querier, table, index string) (bool, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 AND indexname = $2`, table, index)
	return n > 0, err
}

func (postgresDialect) Locked(ctx context.Context, db *sqlx.DB, key string, wait time.Duration, fn func(context.Context, dialect.Querier) error) error {
	conn, err := db.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	lctx, cancel := context.WithTimeout(ctx, wait)
	var ok bool
	for {
		if err := conn.GetContext(lctx, &ok, `SELECT pg_try_advisory_lock($1)`, lockID(key)); err != nil {
			cancel()
			if lctx.Err() != nil && ctx.Err() == nil {
				return fmt.Errorf("%w after %s", dialect.ErrLocked, wait)
			}
			return err
		}
		if ok {
			break
		}
		select {
		case <-lctx.Done():
			cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w after %s (PostgreSQL advisory lock %d)", dialect.ErrLocked, wait, lockID(key))
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	// Unlock with a fresh context: the caller's may be cancelled by now.
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockID(key)) //nolint:errcheck
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
