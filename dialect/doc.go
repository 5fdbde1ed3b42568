// Package dialect is what an application needs to give tandem its
// database: SQLite (the embedded default), PostgreSQL or MySQL/MariaDB.
// Open a pool from a DSN with Open, or adopt the application's own with
// Wrap (every other package of tandem takes the *DB they return), print a
// DSN safely, and tell which errors are worth retrying.
//
// One DSN form opens any of them:
//
//	sqlite:///abs/path.db          (a bare file path works too)
//	postgres://user:pass@host:port/db?sslmode=disable
//	mysql://user:pass@host:port/db
//
// Open parses the DSN, opens the pool through sqlx with the right driver and
// settings (WAL, a busy timeout and immediate write transactions on SQLite),
// and pings it, so a typo or an unreachable server fails up front with a
// typed error. A DSN's password never appears in an error or a log line: use
// DSN.Redacted to print one.
//
// An application that has a pool already adopts it with Wrap (or
// WrapSQLX): Wrap checks what tandem relies on, sets what it can and
// refuses the rest with a *PoolError naming the DSN setting to add.
//
// IsRetryable tells a deadlock, a lock wait timeout or a serialization
// failure (worth running the transaction again) from every other error, on
// each engine; Classify says which of the three it was.
//
// Every statement that differs between engines lives in tandem's internal
// sqldialect package, one file per engine behind one interface; no other
// package of tandem writes engine-specific SQL. Portable SQL uses '?'
// placeholders and is rebound by sqlx (DB.Rebind, Querier.Rebind).
package dialect
