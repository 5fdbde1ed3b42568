package sqldialect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// The engine's part of the builders (see engineSQL).

func (mysqlDialect) BlobType() string { return "LONGBLOB" }

// updateOneValue: MySQL's parameters cannot be numbered, so the value is
// read from a one-row derived table joined to the update.
func (mysqlDialect) updateOneValue(table string, cols, exprs []string, ref string, keys []string) string {
	sets := make([]string, len(cols))
	for i, c := range cols {
		sets[i] = table + "." + c + " = " + strings.ReplaceAll(exprs[i], ref, "tandem_value.v")
	}
	where := make([]string, len(keys))
	for i, k := range keys {
		where[i] = table + "." + k + " = ?"
	}
	return "UPDATE " + table + " JOIN (SELECT ? AS v) tandem_value SET " + strings.Join(sets, ", ") + " WHERE " + strings.Join(where, " AND ")
}

// keyCompare: the expanded form, which the optimizer turns into an index
// range scan.
func (mysqlDialect) keyCompare(cols []string, op string) (string, []int) {
	return expandedCompare(cols, op)
}

// forUpdateOf: MySQL and MariaDB cannot name the table of a join to lock,
// and lock the rows of every table read.
func (mysqlDialect) forUpdate() string           { return " FOR UPDATE" }
func (mysqlDialect) forUpdateOf(string) string   { return " FOR UPDATE" }
func (mysqlDialect) distinct(a, b string) string { return "NOT (" + a + " <=> " + b + ")" }
func (mysqlDialect) singleWriter() bool          { return false }
func (mysqlDialect) placeholder(int) string      { return "?" }
func (mysqlDialect) rebind(q string) string      { return q }
func (mysqlDialect) durableCommitSQL() string    { return "" }

// lockBeforeInsertSelect: MySQL's INSERT ... SELECT locks what it reads.
func (mysqlDialect) lockBeforeInsertSelect(_, _, _ string) string { return "" }

// upsertTail: VALUES(col) is deprecated on MySQL 8.0.20+ but is what
// MariaDB understands; both accept it.
func (mysqlDialect) upsertTail(_ []string, col string) string {
	return " ON DUPLICATE KEY UPDATE " + col + " = VALUES(" + col + ")"
}

// updateRows spells the list as a UNION ALL of SELECTs, which MySQL and
// MariaDB both accept (their VALUES row constructors differ).
func (mysqlDialect) updateRows(table string, keys []string, col string, rows int) string {
	nk := len(keys)
	var b strings.Builder
	b.WriteString("UPDATE " + table + " JOIN (SELECT ")
	for i := range keys {
		b.WriteString("? AS k" + strconv.Itoa(i+1) + ", ")
	}
	b.WriteString("? AS val")
	sel := " UNION ALL SELECT " + strings.TrimSuffix(strings.Repeat("?, ", nk+1), ", ")
	for i := 1; i < rows; i++ {
		b.WriteString(sel)
	}
	b.WriteString(") AS v ON ")
	b.WriteString(joinKeys(table, keys, "v.k"))
	b.WriteString(" SET " + table + "." + col + " = v.val")
	return b.String()
}

// bulkSession: nothing; innodb_flush_log_at_trx_commit is global.
func (mysqlDialect) bulkSession(context.Context, dialect.Querier) (func(context.Context) error, error) {
	return noUndo, nil
}

func (mysqlDialect) databaseSQL(verb, quoted string) (string, error) {
	if verb == "DROP" {
		return "DROP DATABASE IF EXISTS " + quoted, nil
	}
	return "CREATE DATABASE " + quoted, nil
}

func (mysqlDialect) tablesQuery() string {
	return `SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'`
}

func (mysqlDialect) triggersQuery() string {
	return `SELECT trigger_name AS name, event_object_table AS tbl, CONCAT(action_timing, ' ', event_manipulation, ' ', action_statement) AS def
FROM information_schema.triggers WHERE trigger_schema = DATABASE()`
}

func (mysqlDialect) boundValue(table string) (string, string) {
	return "tandem_value.v", table + " JOIN (SELECT ? AS v) tandem_value"
}

func (mysqlDialect) readOnly(ctx context.Context, db *sqlx.DB, fn func(queryer) error) error {
	return readOnlyTx(ctx, db, fn)
}

func (mysqlDialect) triggerObjects(g *trigGen) []TriggerObject { return g.mysql() }

func (d mysqlDialect) listTriggerObjects(ctx context.Context, q dialect.Querier) ([]InstalledTrigger, error) {
	return mysqlListTriggers(ctx, q, d)
}

// backupIntoSQL: none; the engine's dump tool makes the copy.
func (mysqlDialect) backupIntoSQL() string { return "" }
