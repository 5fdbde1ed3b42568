package dialect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"
)

// ErrPoolUnfit means a pool the application opened lacks a setting tandem
// relies on and cannot change on a pool that is already open.
var ErrPoolUnfit = errors.New("the pool lacks a setting tandem relies on")

// PoolError says what an adopted pool lacks and how to open it instead.
type PoolError struct {
	Engine  Name   // "" when the driver is not one tandem supports
	Setting string // what is missing, as the driver's DSN spells it
	Reason  string // what would go wrong without it
	Fix     string // how to open the pool so that it has it
}

func (e *PoolError) Error() string {
	what := "this *sql.DB"
	if e.Engine != "" {
		what += " (" + string(e.Engine) + ")"
	}
	return fmt.Sprintf("cannot adopt %s: %s: %s; %s, or let tandem open its own pool with dialect.Open", what, e.Setting, e.Reason, e.Fix)
}

func (e *PoolError) Unwrap() error { return ErrPoolUnfit }

// Wrap adopts a pool the application opened itself, so tandem shares it
// instead of opening a second one. It finds the engine from the driver
// (github.com/mattn/go-sqlite3, github.com/jackc/pgx/v5/stdlib or
// github.com/go-sql-driver/mysql), checks on one of the pool's connections
// what tandem relies on, sets what it can, and refuses with a *PoolError
// (errors.Is ErrPoolUnfit) naming the setting to add to the DSN otherwise:
//
//   - SQLite: a file (not :memory:); WAL, which Wrap sets, since it is kept
//     in the file; a busy timeout (_busy_timeout=10000), foreign keys
//     (_foreign_keys=1, a cross-table move's table refers to its source
//     row) and immediate write transactions (_txlock=immediate: tandem's
//     database lock is SQLite's write lock, taken at BEGIN), which are
//     settings of each new connection and so cannot be set from here.
//   - PostgreSQL: a current schema (search_path names one that exists).
//   - MySQL/MariaDB: a database in the DSN (/dbname), parseTime=true and
//     loc=UTC (the default) so DATETIME columns read as UTC times.
//
// On MySQL/MariaDB a pool opened without clientFoundRows=true reports the
// rows an UPDATE changed, not the rows it matched; tandem's own writes do
// not depend on it (a write that reports no row checks that the row is
// there), but the application's statements do: see the developer guide.
//
// The pool's own limits stay as the application set them, except that a
// pool of fewer connections than tandem pins for its locks is refused
// (2 on SQLite, 4 otherwise; 0, unlimited, is fine). Closing the DB closes
// the pool: close one of the two, once.
func Wrap(ctx context.Context, db *sql.DB) (*DB, error) {
	if db == nil {
		return nil, &PoolError{Setting: "a pool", Reason: "the *sql.DB is nil", Fix: "pass the pool sql.Open returned"}
	}
	return WrapSQLX(ctx, sqlx.NewDb(db, driverName(db)))
}

// WrapSQLX is Wrap for a *sqlx.DB.
func WrapSQLX(ctx context.Context, db *sqlx.DB) (*DB, error) {
	if db == nil || db.DB == nil {
		return nil, &PoolError{Setting: "a pool", Reason: "the *sqlx.DB is nil", Fix: "pass the pool sqlx.Open returned"}
	}
	engine := engineOf(db.DB)
	if engine == "" {
		return nil, &PoolError{Setting: fmt.Sprintf("driver %T", db.Driver()), Reason: "not one of the drivers tandem supports", Fix: "open it with github.com/mattn/go-sqlite3 (\"sqlite3\"), github.com/jackc/pgx/v5/stdlib (\"pgx\") or github.com/go-sql-driver/mysql (\"mysql\")"}
	}
	if db.DriverName() != driverName(db.DB) {
		// sqlx rebinds by driver name: keep '?' turning into $n on PostgreSQL.
		db = sqlx.NewDb(db.DB, driverName(db.DB))
	}
	min := 4
	if engine == SQLite {
		min = 2
	}
	if n := db.Stats().MaxOpenConnections; n > 0 && n < min {
		return nil, &PoolError{Engine: engine, Setting: fmt.Sprintf("at most %d open connection(s)", n), Reason: "tandem keeps connections of its own for its locks and liveness tokens, and would wait for itself", Fix: fmt.Sprintf("call SetMaxOpenConns(%d) or more (or 0) on it", min)}
	}
	conn, err := db.Connx(ctx)
	if err != nil {
		return nil, &ConnectError{DSN: "(the application's " + string(engine) + " pool)", Err: err}
	}
	defer conn.Close()
	var dsn DSN
	switch engine {
	case SQLite:
		dsn, err = adoptSQLite(ctx, db, conn)
	case Postgres:
		dsn, err = adoptPostgres(ctx, conn)
	case MySQL:
		dsn, err = adoptMySQL(ctx, conn)
	}
	if err != nil {
		return nil, err
	}
	return &DB{pool: db, dsn: dsn}, nil
}

func engineOf(db *sql.DB) Name {
	switch db.Driver().(type) {
	case *sqlite3.SQLiteDriver:
		return SQLite
	case *stdlib.Driver:
		return Postgres
	case *mysql.MySQLDriver, mysql.MySQLDriver:
		return MySQL
	}
	return ""
}

func driverName(db *sql.DB) string {
	switch engineOf(db) {
	case SQLite:
		return "sqlite3"
	case Postgres:
		return "pgx"
	case MySQL:
		return "mysql"
	}
	return ""
}

const sqliteFix = "open it with file:/abs/path.db?_busy_timeout=10000&_txlock=immediate&_foreign_keys=1"

func adoptSQLite(ctx context.Context, db *sqlx.DB, conn *sqlx.Conn) (DSN, error) {
	var files []struct {
		Seq  int    `db:"seq"`
		Name string `db:"name"`
		File string `db:"file"`
	}
	if err := conn.SelectContext(ctx, &files, `PRAGMA database_list`); err != nil {
		return DSN{}, err
	}
	path := ""
	for _, f := range files {
		if f.Name == "main" {
			path = f.File
		}
	}
	if path == "" {
		return DSN{}, &PoolError{Engine: SQLite, Setting: "an in-memory database", Reason: "each connection of a pool sees a database of its own, and tandem's locks live beside the file", Fix: sqliteFix}
	}
	var timeout int
	if err := conn.GetContext(ctx, &timeout, `PRAGMA busy_timeout`); err != nil {
		return DSN{}, err
	}
	if timeout <= 0 {
		return DSN{}, &PoolError{Engine: SQLite, Setting: "no _busy_timeout", Reason: "a writer that finds another at work fails at once with SQLITE_BUSY instead of waiting its turn", Fix: sqliteFix}
	}
	var fk int
	if err := conn.GetContext(ctx, &fk, `PRAGMA foreign_keys`); err != nil {
		return DSN{}, err
	}
	if fk != 1 {
		return DSN{}, &PoolError{Engine: SQLite, Setting: "no _foreign_keys=1", Reason: "a cross-table move's rows would outlive the source rows they belong to", Fix: sqliteFix}
	}
	d := DSN{Engine: SQLite, driver: "sqlite3", path: path, redacted: "sqlite://" + path}
	if sqliteNotWritable(path) {
		d.readOnly = true
	} else {
		var mode string
		if err := conn.GetContext(ctx, &mode, `PRAGMA journal_mode`); err != nil {
			return DSN{}, err
		}
		if !strings.EqualFold(mode, "wal") {
			// WAL lets readers go on while one writes; it is kept in the
			// file, so every connection of the pool gets it.
			if err := conn.GetContext(ctx, &mode, `PRAGMA journal_mode = WAL`); err != nil {
				return DSN{}, fmt.Errorf("dialect: adopt %s: set WAL: %w", d.redacted, err)
			}
		}
		immediate, err := sqliteImmediate(ctx, db, path)
		if err != nil {
			return DSN{}, fmt.Errorf("dialect: adopt %s: %w", d.redacted, err)
		}
		if !immediate {
			return DSN{}, &PoolError{Engine: SQLite, Setting: "no _txlock=immediate", Reason: "tandem's database lock is SQLite's write lock taken at BEGIN; with deferred transactions two runners both begin, and one fails with SQLITE_BUSY when it first writes", Fix: sqliteFix}
		}
	}
	return d, nil
}

// sqliteImmediate reports whether a transaction the pool begins takes the
// write lock at once: while one is open, a connection of its own that
// waits for nobody tries to take the lock too.
func sqliteImmediate(ctx context.Context, db *sqlx.DB, path string) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback() //nolint:errcheck
	probe, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=0&_txlock=immediate")
	if err != nil {
		return false, err
	}
	defer probe.Close()
	ptx, err := probe.BeginTx(ctx, nil)
	if err == nil {
		_ = ptx.Rollback()
		return false, nil
	}
	if isBusyError(err) {
		return true, nil
	}
	return false, err
}

func isBusyError(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy
	}
	return strings.Contains(err.Error(), "database is locked")
}

func adoptPostgres(ctx context.Context, conn *sqlx.Conn) (DSN, error) {
	var schema, db sql.NullString
	if err := conn.QueryRowxContext(ctx, `SELECT current_schema(), current_database()`).Scan(&schema, &db); err != nil {
		return DSN{}, err
	}
	if !schema.Valid {
		return DSN{}, &PoolError{Engine: Postgres, Setting: "no current schema", Reason: "its search_path names no schema that exists, and tandem keeps its tables in the current one", Fix: "set search_path (e.g. ?search_path=public in the DSN) to an existing schema"}
	}
	return DSN{Engine: Postgres, driver: "pgx", redacted: fmt.Sprintf("postgres database %q (the application's pool)", db.String)}, nil
}

func adoptMySQL(ctx context.Context, conn *sqlx.Conn) (DSN, error) {
	const fix = "open it with user:pass@tcp(host:3306)/dbname?parseTime=true&clientFoundRows=true"
	var db sql.NullString
	if err := conn.GetContext(ctx, &db, `SELECT DATABASE()`); err != nil {
		return DSN{}, err
	}
	if !db.Valid || db.String == "" {
		return DSN{}, &PoolError{Engine: MySQL, Setting: "no database", Reason: "tandem's tables and lock names belong to the connection's database, and this pool has none selected", Fix: fix}
	}
	var v any
	if err := conn.QueryRowxContext(ctx, `SELECT CAST('2000-01-02 03:04:05' AS DATETIME)`).Scan(&v); err != nil {
		return DSN{}, err
	}
	t, ok := v.(time.Time)
	if !ok {
		return DSN{}, &PoolError{Engine: MySQL, Setting: "no parseTime=true", Reason: "DATETIME columns would read as bytes, not times", Fix: fix}
	}
	if t.Location() != time.UTC {
		return DSN{}, &PoolError{Engine: MySQL, Setting: "loc=" + t.Location().String(), Reason: "tandem writes and reads its DATETIME columns as UTC", Fix: fix + " (loc=UTC is the default)"}
	}
	return DSN{Engine: MySQL, driver: "mysql", redacted: fmt.Sprintf("mysql database %q (the application's pool)", db.String)}, nil
}
