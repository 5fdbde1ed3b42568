package sqldialect

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// The engine's part of the builders (see engineSQL).

func (postgresDialect) BlobType() string { return "BYTEA" }

func (postgresDialect) updateOneValue(table string, cols, exprs []string, ref string, keys []string) string {
	return numberedUpdateOneValue(table, cols, exprs, ref, keys, func(i int) string { return "$" + strconv.Itoa(i) })
}

func (postgresDialect) keyCompare(cols []string, op string) (string, []int) {
	return rowValueCompare(cols, op)
}

func (postgresDialect) forUpdate() string               { return " FOR UPDATE" }
func (postgresDialect) forUpdateOf(alias string) string { return " FOR UPDATE OF " + alias }
func (postgresDialect) distinct(a, b string) string     { return "(" + a + " IS DISTINCT FROM " + b + ")" }
func (postgresDialect) singleWriter() bool              { return false }
func (postgresDialect) placeholder(n int) string        { return "$" + strconv.Itoa(n) }
func (postgresDialect) rebind(q string) string          { return sqlx.Rebind(sqlx.DOLLAR, q) }
func (postgresDialect) durableCommitSQL() string        { return `SET LOCAL synchronous_commit = on` }

// lockBeforeInsertSelect: PostgreSQL's INSERT ... SELECT reads a snapshot,
// so a writer changing a row between the snapshot and the insert would be
// overwritten with a stale value.
func (postgresDialect) lockBeforeInsertSelect(table, alias, cond string) string {
	return `SELECT 1 FROM ` + table + ` ` + alias + ` WHERE ` + cond + ` FOR UPDATE`
}

func (postgresDialect) upsertTail(keys []string, col string) string { return onConflictTail(keys, col) }

// updateRows: PostgreSQL types a VALUES list from its rows, and untyped
// parameters would become text: a first row of typed NULLs taken from the
// table's own row type gives every column its type and matches no row.
func (postgresDialect) updateRows(table string, keys []string, col string, rows int) string {
	nk := len(keys)
	row := "(" + strings.Repeat("?, ", nk) + "?)"
	var b strings.Builder
	b.WriteString("UPDATE " + table + " SET " + col + " = v.val FROM (VALUES (")
	for _, k := range keys {
		b.WriteString("(NULL::" + table + ")." + k + ", ")
	}
	b.WriteString("(NULL::" + table + ")." + col + ")")
	for range rows {
		b.WriteString(", " + row)
	}
	b.WriteString(") AS v (")
	for i := range keys {
		b.WriteString("k" + strconv.Itoa(i+1) + ", ")
	}
	b.WriteString("val) WHERE " + joinKeys(table, keys, "v.k"))
	return b.String()
}

// bulkSession turns synchronous_commit off (see BulkSession).
func (postgresDialect) bulkSession(ctx context.Context, conn dialect.Querier) (func(context.Context) error, error) {
	if _, err := conn.ExecContext(ctx, `SET synchronous_commit = off`); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		_, err := conn.ExecContext(ctx, `RESET synchronous_commit`)
		return err
	}, nil
}

// databaseSQL drops a database even with sessions still connected to it
// (PostgreSQL 13 and later).
func (postgresDialect) databaseSQL(verb, quoted string) (string, error) {
	if verb == "DROP" {
		return "DROP DATABASE IF EXISTS " + quoted + " WITH (FORCE)", nil
	}
	return "CREATE DATABASE " + quoted, nil
}

func (postgresDialect) tablesQuery() string {
	return `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
}

func (postgresDialect) triggersQuery() string {
	return `SELECT t.tgname AS name, c.relname AS tbl, pg_get_triggerdef(t.oid) || E'\n' || pg_get_functiondef(t.tgfoid) AS def
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace`
}

func (postgresDialect) boundValue(table string) (string, string) { return "$1", table }

func (postgresDialect) readOnly(ctx context.Context, db *sqlx.DB, fn func(queryer) error) error {
	return readOnlyTx(ctx, db, fn)
}

func (postgresDialect) triggerObjects(g *trigGen) []TriggerObject { return g.postgres() }

func (d postgresDialect) listTriggerObjects(ctx context.Context, q dialect.Querier) ([]InstalledTrigger, error) {
	return postgresListTriggers(ctx, q, d)
}

// backupIntoSQL: none; the engine's dump tool makes the copy.
func (postgresDialect) backupIntoSQL() string { return "" }
