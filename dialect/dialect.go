package dialect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"
)

// Querier is what tandem needs from a *sqlx.DB, *sqlx.Tx or *sqlx.Conn.
// SQL passed to it uses '?' placeholders, rebound with Rebind.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryxContext(ctx context.Context, query string, args ...any) (*sqlx.Rows, error)
	QueryRowxContext(ctx context.Context, query string, args ...any) *sqlx.Row
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	Rebind(query string) string
}

var (
	_ Querier = (*sqlx.DB)(nil)
	_ Querier = (*sqlx.Tx)(nil)
	_ Querier = (*sqlx.Conn)(nil)
)

// Column describes one column of a live table.
type Column struct {
	Name     string
	Type     string // as the engine reports it, upper case
	Nullable bool
}

// Dialect is the one place where engines differ.
type Dialect interface {
	Name() Name
	// Quote returns ident quoted for this engine, or an *IdentifierError when
	// the name is not a plain identifier that can be quoted safely.
	Quote(ident string) (string, error)
	// Types used by tandem's own tables.
	KeyType() string       // an indexable string, for ids and names
	TextType() string      // unbounded text
	BigIntType() string    // a 64-bit integer
	TimestampType() string // a UTC timestamp with sub-second precision
	// IsUniqueViolation reports whether err is a primary key or unique conflict.
	IsUniqueViolation(err error) bool
	// TableExists and Columns read the live schema.
	TableExists(ctx context.Context, q Querier, table string) (bool, error)
	Columns(ctx context.Context, q Querier, table string) ([]Column, error)
	IndexExists(ctx context.Context, q Querier, table, index string) (bool, error)
	// Locked runs fn while holding tandem's database-wide lock named key,
	// waiting at most wait for it. fn gets the connection to use; on SQLite
	// and PostgreSQL it is a transaction committed when fn returns nil.
	Locked(ctx context.Context, db *sqlx.DB, key string, wait time.Duration, fn func(ctx context.Context, q Querier) error) error
	// TransactionalDDL reports whether a failed DDL step rolls back cleanly.
	TransactionalDDL() bool
}

// For returns the Dialect for an engine.
func For(name Name) (Dialect, error) {
	switch name {
	case SQLite:
		return sqliteDialect{}, nil
	case Postgres:
		return postgresDialect{}, nil
	case MySQL:
		return mysqlDialect{}, nil
	}
	return nil, fmt.Errorf("dialect: %w", &DSNError{DSN: string(name), Reason: "unknown engine"})
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckIdentifier refuses any name that is not a plain identifier. tandem
// quotes every identifier too, but refusing the odd ones keeps generated SQL
// (triggers included) readable and identical on every engine.
func CheckIdentifier(ident string) error {
	switch {
	case ident == "":
		return &IdentifierError{Name: ident, Reason: "empty"}
	case len(ident) > 63:
		return &IdentifierError{Name: ident, Reason: "longer than 63 characters (PostgreSQL truncates it)"}
	case !identRE.MatchString(ident):
		return &IdentifierError{Name: ident, Reason: "contains a character other than a letter, digit or underscore, or starts with a digit"}
	}
	return nil
}

func quoteWith(ident, q string) (string, error) {
	if err := CheckIdentifier(ident); err != nil {
		return "", err
	}
	return q + ident + q, nil
}

// MustQuote is Quote for names tandem itself owns; it panics on a bad one,
// which is a bug in tandem, never user input.
func MustQuote(d Dialect, ident string) string {
	s, err := d.Quote(ident)
	if err != nil {
		panic(err)
	}
	return s
}

func lockID(key string) int64 {
	h := fnv.New64a()
	h.Write([]byte("tandem:" + key))
	return int64(h.Sum64() & 0x7fffffffffffffff)
}

// --- SQLite ---------------------------------------------------------------

type sqliteDialect struct{}

func (sqliteDialect) Name() Name                     { return SQLite }
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

func (sqliteDialect) TableExists(ctx context.Context, q Querier, table string) (bool, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table)
	return n > 0, err
}

func (d sqliteDialect) Columns(ctx context.Context, q Querier, table string) ([]Column, error) {
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

func (sqliteDialect) IndexExists(ctx context.Context, q Querier, table, index string) (bool, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name = ?`, table, index)
	return n > 0, err
}

func (sqliteDialect) Locked(ctx context.Context, db *sqlx.DB, _ string, wait time.Duration, fn func(context.Context, Querier) error) error {
	// The DSN sets _txlock=immediate, so BEGIN takes SQLite's single write
	// lock, waiting up to the busy timeout: that is the lock.
	// The transaction is bound to ctx (database/sql rolls it back when its
	// context ends), so the wait is bounded by the DSN's busy timeout.
	_ = wait
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		if isBusy(err) {
			return fmt.Errorf("%w: %v", ErrLocked, err)
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

// --- PostgreSQL -----------------------------------------------------------

type postgresDialect struct{}

func (postgresDialect) Name() Name                     { return Postgres }
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

func (postgresDialect) TableExists(ctx context.Context, q Querier, table string) (bool, error) {
	var n int
	err := q.GetContext(ctx, &n, q.Rebind(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?`), table)
	return n > 0, err
}

func (postgresDialect) Columns(ctx context.Context, q Querier, table string) ([]Column, error) {
	return infoSchemaColumns(ctx, q, `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`, table)
}

func (postgresDialect) IndexExists(ctx context.Context, q Querier, table, index string) (bool, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 AND indexname = $2`, table, index)
	return n > 0, err
}

func (postgresDialect) Locked(ctx context.Context, db *sqlx.DB, key string, wait time.Duration, fn func(context.Context, Querier) error) error {
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
				return fmt.Errorf("%w after %s", ErrLocked, wait)
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
			return fmt.Errorf("%w after %s (PostgreSQL advisory lock %d)", ErrLocked, wait, lockID(key))
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

// --- MySQL / MariaDB ------------------------------------------------------

type mysqlDialect struct{}

func (mysqlDialect) Name() Name                     { return MySQL }
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

func (mysqlDialect) TableExists(ctx context.Context, q Querier, table string) (bool, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`, table)
	return n > 0, err
}

func (mysqlDialect) Columns(ctx context.Context, q Querier, table string) ([]Column, error) {
	return infoSchemaColumns(ctx, q, `SELECT column_name, column_type, is_nullable FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position`, table)
}

func (mysqlDialect) IndexExists(ctx context.Context, q Querier, table, index string) (bool, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?`, table, index)
	return n > 0, err
}

func (mysqlDialect) Locked(ctx context.Context, db *sqlx.DB, key string, wait time.Duration, fn func(context.Context, Querier) error) error {
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
		return fmt.Errorf("%w after %s (MariaDB GET_LOCK for %q in this database)", ErrLocked, wait, key)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT RELEASE_LOCK(`+lockName+`)`, key) //nolint:errcheck
	// DDL commits implicitly on MySQL, so fn runs on the bare connection and
	// must keep each step idempotent (see package schema).
	return fn(ctx, conn)
}

func infoSchemaColumns(ctx context.Context, q Querier, query, table string) ([]Column, error) {
	rows, err := q.QueryxContext(ctx, q.Rebind(query), table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []Column
	for rows.Next() {
		var c Column
		var nullable string
		if err := rows.Scan(&c.Name, &c.Type, &nullable); err != nil {
			return nil, err
		}
		c.Type = strings.ToUpper(c.Type)
		c.Nullable = nullable == "YES"
		cols = append(cols, c)
	}
	return cols, rows.Err()
}
