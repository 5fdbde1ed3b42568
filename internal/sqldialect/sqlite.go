package sqldialect

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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

// The engine's part of the builders (see engineSQL).

func (sqliteDialect) BlobType() string { return "BLOB" }

func (sqliteDialect) updateOneValue(table string, cols, exprs []string, ref string, keys []string) string {
	return numberedUpdateOneValue(table, cols, exprs, ref, keys, func(i int) string { return "?" + strconv.Itoa(i) })
}

func (sqliteDialect) keyCompare(cols []string, op string) (string, []int) {
	return rowValueCompare(cols, op)
}

// SQLite has no FOR UPDATE: its write transaction already excludes every
// other writer.
func (sqliteDialect) forUpdate() string                            { return "" }
func (sqliteDialect) forUpdateOf(string) string                    { return "" }
func (sqliteDialect) distinct(a, b string) string                  { return "(" + a + " IS NOT " + b + ")" }
func (sqliteDialect) singleWriter() bool                           { return true }
func (sqliteDialect) placeholder(int) string                       { return "?" }
func (sqliteDialect) rebind(q string) string                       { return q }
func (sqliteDialect) durableCommitSQL() string                     { return "" }
func (sqliteDialect) lockBeforeInsertSelect(_, _, _ string) string { return "" }

func (sqliteDialect) upsertTail(keys []string, col string) string { return onConflictTail(keys, col) }

func (sqliteDialect) updateRows(table string, keys []string, col string, rows int) string {
	nk := len(keys)
	row := "(" + strings.Repeat("?, ", nk) + "?)"
	var b strings.Builder
	// SQLite names a VALUES list's columns column1, column2, ...
	b.WriteString("UPDATE " + table + " SET " + col + " = v.column" + strconv.Itoa(nk+1) + " FROM (VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	b.WriteString(") AS v WHERE " + joinKeys(table, keys, "v.column"))
	return b.String()
}

// bulkSession raises wal_autocheckpoint (see BulkSession).
func (sqliteDialect) bulkSession(ctx context.Context, conn dialect.Querier) (func(context.Context) error, error) {
	var pages int
	if err := conn.GetContext(ctx, &pages, `PRAGMA wal_autocheckpoint`); err != nil {
		return nil, err
	}
	if pages <= 0 || pages >= sqliteBulkCheckpointPages {
		return noUndo, nil // off, or large already
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA wal_autocheckpoint = `+strconv.Itoa(sqliteBulkCheckpointPages)); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		if _, err := conn.ExecContext(ctx, `PRAGMA wal_autocheckpoint = `+strconv.Itoa(pages)); err != nil {
			return err
		}
		_, err := conn.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		return err
	}, nil
}

func (sqliteDialect) databaseSQL(string, string) (string, error) { return "", errNoDatabases }

func (sqliteDialect) tablesQuery() string {
	return `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
}

func (sqliteDialect) triggersQuery() string {
	return `SELECT name, tbl_name AS tbl, sql AS def FROM sqlite_master WHERE type = 'trigger'`
}

func (sqliteDialect) boundValue(table string) (string, string) { return "?1", table }

// readOnly: the DSN makes BEGIN take the write lock (immediate), which a
// check must neither need nor wait for, so this is a deferred one.
func (sqliteDialect) readOnly(ctx context.Context, db *sqlx.DB, fn func(queryer) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return &txError{err}
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN DEFERRED"); err != nil {
		return &txError{err}
	}
	ferr := fn(conn)
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); err != nil && ferr == nil {
		return &txError{err}
	}
	return ferr
}

func (sqliteDialect) triggerObjects(g *trigGen) []TriggerObject { return g.sqlite() }

func (d sqliteDialect) listTriggerObjects(ctx context.Context, q dialect.Querier) ([]InstalledTrigger, error) {
	return sqliteListTriggers(ctx, q, d)
}

// backupIntoSQL: VACUUM INTO writes a consistent copy of the database,
// as one read transaction sees it, into a new (or empty) file.
func (sqliteDialect) backupIntoSQL() string { return `VACUUM INTO ?` }
