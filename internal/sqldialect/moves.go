package sqldialect

import (
	"context"
	"strconv"
	"strings"

	"github.com/tandem-go/tandem/dialect"
)

// SQL for column moves (package dualwrite). Callers pass identifiers already
// quoted with Quote and expressions already rendered; these functions only
// assemble the parts that differ between engines.

// AddColumnSQL adds column col of type typ to table, nullable: rows written
// by writers that do not know the column yet must still insert.
func AddColumnSQL(d Dialect, table, col, typ string) string {
	return "ALTER TABLE " + table + " ADD COLUMN " + col + " " + typ
}

// DropColumnSQL drops column col of table. SQLite has had DROP COLUMN since
// 3.35, which the bundled driver carries.
func DropColumnSQL(d Dialect, table, col string) string {
	return "ALTER TABLE " + table + " DROP COLUMN " + col
}

// CreateMoveTableSQL creates the destination table of a cross-table move:
// the key columns (referencing refTable's key, deleted with it) and the new
// column, nullable.
func CreateMoveTableSQL(d Dialect, table string, keys, keyTypes []string, col, typ, refTable string, refKeys []string) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE " + table + " (\n")
	for i, k := range keys {
		b.WriteString("  " + k + " " + keyTypes[i] + " NOT NULL,\n")
	}
	b.WriteString("  " + col + " " + typ + ",\n")
	b.WriteString("  PRIMARY KEY (" + strings.Join(keys, ", ") + "),\n")
	b.WriteString("  FOREIGN KEY (" + strings.Join(keys, ", ") + ") REFERENCES " + refTable + " (" + strings.Join(refKeys, ", ") + ") ON DELETE CASCADE\n")
	b.WriteString(")")
	return b.String()
}

// DropMoveTableSQL drops the destination table of a cross-table move, the
// inverse of CreateMoveTableSQL; it succeeds when the table is absent.
func DropMoveTableSQL(d Dialect, table string) string {
	return "DROP TABLE IF EXISTS " + table
}

// KeyAfter returns a predicate "key > (?, ?, ...)" over the quoted key
// columns, with one '?' per argument in the order of the returned slice of
// column indexes: each index i means "pass the cursor's i-th value".
// PostgreSQL and SQLite compare row values directly; MySQL/MariaDB get the
// expanded form, which its optimizer turns into an index range scan.
func KeyAfter(d Dialect, cols []string) (string, []int) {
	return keyCompare(d, cols, ">")
}

// KeyAtMost is KeyAfter for "key <= (?, ...)".
func KeyAtMost(d Dialect, cols []string) (string, []int) {
	return keyCompare(d, cols, "<=")
}

func keyCompare(d Dialect, cols []string, op string) (string, []int) {
	if len(cols) == 1 {
		return cols[0] + " " + op + " ?", []int{0}
	}
	return d.keyCompare(cols, op)
}

// rowValueCompare is "(a, b) op (?, ?)", for engines that compare row
// values.
func rowValueCompare(cols []string, op string) (string, []int) {
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
	idx := make([]int, len(cols))
	for i := range idx {
		idx[i] = i
	}
	return "(" + strings.Join(cols, ", ") + ") " + op + " (" + ph + ")", idx
}

// expandedCompare spells a row-value comparison out:
// (a, b) > (x, y)  ==  a > x OR (a = x AND b > y); for <=, the last
// comparison is <= and the others strict.
func expandedCompare(cols []string, op string) (string, []int) {
	strict := strings.TrimSuffix(op, "=")
	var ors []string
	var idx []int
	for i := range cols {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, cols[j]+" = ?")
			idx = append(idx, j)
		}
		o := strict
		if i == len(cols)-1 {
			o = op
		}
		ands = append(ands, cols[i]+" "+o+" ?")
		idx = append(idx, i)
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")", idx
}

// ForUpdate is the suffix that locks the rows a SELECT reads. SQLite has
// none: its write transaction already excludes every other writer.
func ForUpdate(d Dialect) string { return d.forUpdate() }

// DistinctSQL is a NULL-safe "a differs from b".
func DistinctSQL(d Dialect, a, b string) string { return d.distinct(a, b) }

// UpsertSQL inserts one row (keys..., col) into table or, when the key
// exists, sets col.
func UpsertSQL(d Dialect, table string, keys []string, col string) string {
	ph := strings.Repeat("?, ", len(keys)) + "?"
	return "INSERT INTO " + table + " (" + strings.Join(keys, ", ") + ", " + col + ") VALUES (" + ph + ")" + upsertTail(d, keys, col)
}

// UpsertSelectSQL is UpsertSQL for the rows of a SELECT that yields the key
// columns then the value. The SELECT must have a WHERE clause: SQLite needs
// one to tell its ON CONFLICT from a join constraint.
func UpsertSelectSQL(d Dialect, table string, keys []string, col, selectSQL string) string {
	return "INSERT INTO " + table + " (" + strings.Join(keys, ", ") + ", " + col + ") " + selectSQL + upsertTail(d, keys, col)
}

func upsertTail(d Dialect, keys []string, col string) string { return d.upsertTail(keys, col) }

// onConflictTail is the upsert tail of the engines that name the conflict.
func onConflictTail(keys []string, col string) string {
	return " ON CONFLICT (" + strings.Join(keys, ", ") + ") DO UPDATE SET " + col + " = excluded." + col
}

// LimitSQL appends a LIMIT clause; every supported engine spells it alike.
func LimitSQL(n int) string { return " LIMIT " + strconv.Itoa(n) }

// UpdateRowsSQL sets col of table to one value per key, for rows rows, in
// one statement: a join of the table with a list of (key..., value) rows.
// Arguments, row after row: the key values in the order of keys, then the
// value. keys and col are quoted column names of table. A key given twice
// is an error on some engines; callers pass distinct keys.
//
// PostgreSQL types a VALUES list from its rows, and untyped parameters
// would become text: a first row of typed NULLs taken from the table's own
// row type gives every column its type without a catalog query, and
// matches no row. MySQL/MariaDB spell the list as a UNION ALL of SELECTs,
// which both accept (their VALUES row constructors differ).
func UpdateRowsSQL(d Dialect, table string, keys []string, col string, rows int) string {
	return d.updateRows(table, keys, col, rows)
}

// joinKeys is "table.k1 = <prefix>1 AND table.k2 = <prefix>2 ...".
func joinKeys(table string, keys []string, prefix string) string {
	conds := make([]string, len(keys))
	for i, k := range keys {
		conds[i] = table + "." + k + " = " + prefix + strconv.Itoa(i+1)
	}
	return strings.Join(conds, " AND ")
}

// UpsertRowsSQL is UpsertSQL for rows rows in one statement; arguments row
// after row, keys then value.
func UpsertRowsSQL(d Dialect, table string, keys []string, col string, rows int) string {
	row := "(" + strings.Repeat("?, ", len(keys)) + "?)"
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (" + strings.Join(keys, ", ") + ", " + col + ") VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	b.WriteString(upsertTail(d, keys, col))
	return b.String()
}

// MaxRowsPerStatement bounds rows of cols arguments each in one statement
// so that every engine's parameter limit holds (SQLite's is 32,766,
// PostgreSQL's and MySQL's 65,535), and statements stay small enough to
// parse quickly.
func MaxRowsPerStatement(cols int) int {
	return max(1, min(1000, 30000/max(1, cols)))
}

// BulkSession prepares conn, a connection of its own, for a run of many
// short write transactions that may be redone (a backfill whose cursor is
// saved with each batch), and returns what undoes it; call undo before
// conn goes back to the pool, and discard conn if undo fails.
//
//   - PostgreSQL: synchronous_commit off. A commit no longer waits for its
//     WAL flush, a third of a small batch's time here; a crash of the
//     server can lose the last batches, and their cursors with them, so a
//     rerun redoes them. A later synchronous commit flushes the WAL up to
//     itself, so no durable write ever depends on a lost batch. Call
//     DurableCommitSQL in the run's last transaction.
//   - SQLite: wal_autocheckpoint raised from 1,000 pages to 5,000 (20 MB
//     of 4 KB pages). Otherwise every batch of more than 4 MB pays a
//     checkpoint and its two fsyncs, which one UPDATE of the whole table
//     pays once; a checkpoint of 5,000 pages takes about 60 ms here, so a
//     batch that pays one still ends well within 200 ms. Undo restores the
//     setting and checkpoints what the run left in the WAL.
//   - MySQL/MariaDB: nothing; innodb_flush_log_at_trx_commit is global.
func BulkSession(ctx context.Context, conn dialect.Querier, d Dialect) (undo func(context.Context) error, err error) {
	return d.bulkSession(ctx, conn)
}

func noUndo(context.Context) error { return nil }

// sqliteBulkCheckpointPages is 20 MB of 4 KB pages.
const sqliteBulkCheckpointPages = 5000

// DurableCommitSQL is the statement that makes the current transaction's
// commit wait for durability again inside a BulkSession, "" where nothing
// is needed.
func DurableCommitSQL(d Dialect) string { return d.durableCommitSQL() }

// LockBeforeInsertSelectSQL returns a statement that locks the rows of
// table (aliased alias) matching cond, to run before an INSERT ... SELECT
// that reads them, or "" where that statement locks what it reads itself.
// PostgreSQL's INSERT ... SELECT reads a snapshot: a writer changing a row
// between the snapshot and the insert would be overwritten with a stale
// value. MySQL/MariaDB's locks what it reads; SQLite has one writer.
func LockBeforeInsertSelectSQL(d Dialect, table, alias, cond string) string {
	return d.lockBeforeInsertSelect(table, alias, cond)
}

// ForUpdateOf is ForUpdate for a SELECT with a join that must lock only
// the rows of alias: PostgreSQL names it (FOR UPDATE OF alias), MySQL and
// MariaDB cannot and lock the rows of every table read.
func ForUpdateOf(d Dialect, alias string) string { return d.forUpdateOf(alias) }

// SingleWriter reports whether a write transaction excludes every other
// writer of the database (SQLite): nothing can be inserted between two
// statements of it, so a count taken in it needs no upper bound.
func SingleWriter(d Dialect) bool { return d.singleWriter() }

// Placeholder is the n-th (from 1) bind parameter of a statement in the
// engine's own style: $n on PostgreSQL, ? elsewhere. Statements built with
// it are final: they need no Rebind, so an expression of the caller's may
// hold a literal '?' (PostgreSQL's jsonb ? operator).
func Placeholder(d Dialect, n int) string { return d.placeholder(n) }

// Rebind numbers the '?' placeholders of q in the engine's style (see
// Placeholder). q must hold no other '?': statements of quoted names and
// placeholders only.
func Rebind(d Dialect, q string) string { return d.rebind(q) }
