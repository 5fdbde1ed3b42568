package sqldialect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"
	"github.com/tandem-go/tandem/dialect"
)

type sqliteDialect struct{}

func (sqliteDialect) Name() dialect.Name             { return dialect.SQLite }
func (sqliteDialect) Quote(s string) (string, error) { return quoteWith(s, `"`) }
func (sqliteDialect) KeyType() string                { return "TEXT" }
func (sqliteDialect) TextType() string               { return "TEXT" }
func (sqliteDialect) BigIntType() string             { return "INTEGER" }
func (sqliteDialect) TimestampType() string          { return "TIMESTAMP" }
func (sqliteDialect) TransactionalDDL() bool         { return true }
func (sqliteDialect) IsUniqueViolation(err error) bool {
	var e sqlite3.Error
	return errors.As(err, &e) && (e.ExtendedCode == sqlite3.ErrConstraintUnique || e.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}

func (sqliteDialect) TableExists(ctx context.Context, q dialect.Querier, table string) (bool, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table)
	return n > 0, err
}

func (d sqliteDialect) Columns(ctx context.Context, q dialect.Querier, table string) ([]Column, error) {
	qt, err := d.Quote(table)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryxContext(ctx, `SELECT name, type, "notnull", pk FROM pragma_table_info(`+strings.ReplaceAll(qt, `"`, `'`)+`)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []Column
	for rows.Next() {
		var c Column
		var notnull, pk int
		if err := rows.Scan(&c.Name, &c.Type, &notnull, &pk); err != nil {
			return nil, err
		}
		c.Type = strings.ToUpper(c.Type)
		c.Nullable = notnull == 0 && pk == 0
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

func (sqliteDialect) IndexExists(ctx context.Context, q dialect.Querier, table, index string) (bool, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name = ?`, table, index)
	return n > 0, err
}

func (sqliteDialect) Locked(ctx context.Context, db *sqlx.DB, _ string, wait time.Duration, fn func(context.Context, dialect.Querier) error) error {
	// The DSN sets _txlock=immediate, so BEGIN takes SQLite's single write
	// lock, waiting up to the busy timeout: that is the lock.
	// The transaction is bound to ctx (database/sql rolls it back when its
	// context ends), so the wait is bounded by the DSN's busy timeout.
	_ = wait
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		if isBusy(err) {
			return fmt.Errorf("%w: %v", dialect.ErrLocked, err)
		}
		return err
	}
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func isBusy(err error) bool {
	return strings.Contains(err.Error(), "database is locked") || strings.Contains(err.Error(), "SQLITE_BUSY")
}
