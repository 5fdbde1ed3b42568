package sqldialect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/tandem-go/tandem/dialect"
)

type mysqlDialect struct{}

func (mysqlDialect) Name() dialect.Name             { return dialect.MySQL }
func (mysqlDialect) Quote(s string) (string, error) { return quoteWith(s, "`") }
func (mysqlDialect) KeyType() string                { return "VARCHAR(255)" }
func (mysqlDialect) TextType() string               { return "LONGTEXT" }
func (mysqlDialect) BigIntType() string             { return "BIGINT" }
func (mysqlDialect) TimestampType() string          { return "DATETIME(6)" }
func (mysqlDialect) TransactionalDDL() bool         { return false }
func (mysqlDialect) IsUniqueViolation(err error) bool {
	var e *mysql.MySQLError
	return errors.As(err, &e) && e.Number == 1062
}

func (mysqlDialect) TableExists(ctx context.Context, q dialect.Querier, table string) (bool, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`, table)
	return n > 0, err
}

func (mysqlDialect) Columns(ctx context.Context, q dialect.Querier, table string) ([]Column, error) {
	return infoSchemaColumns(ctx, q, `SELECT column_name, column_type, is_nullable FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position`, table)
}

func (mysqlDialect) IndexExists(ctx context.Context, q dialect.Querier, table, index string) (bool, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?`, table, index)
	return n > 0, err
}

func (mysqlDialect) Locked(ctx context.Context, db *sqlx.DB, key string, wait time.Duration, fn func(context.Context, dialect.Querier) error) error {
	conn, err := db.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	lockName := mysqlLockName
	secs := int(wait / time.Second)
	if secs < 1 {
		secs = 1
	}
	var got sql.NullInt64
	if err := conn.GetContext(ctx, &got, `SELECT GET_LOCK(`+lockName+`, ?)`, key, secs); err != nil {
		return err
	}
	if !got.Valid || got.Int64 != 1 {
		return fmt.Errorf("%w after %s (MariaDB GET_LOCK for %q in this database)", dialect.ErrLocked, wait, key)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT RELEASE_LOCK(`+lockName+`)`, key) //nolint:errcheck
	// DDL commits implicitly on MySQL, so fn runs on the bare connection and
	// must keep each step idempotent (see package schema).
	return fn(ctx, conn)
}
