// Package dialect holds every SQL difference between the engines tandem
// supports: SQLite (the embedded default), PostgreSQL and MySQL/MariaDB.
// Applications use it to open their database: every other package of
// tandem takes the *DB that Open returns.
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
// IsRetryable tells a deadlock, a lock wait timeout or a serialization
// failure (worth running the transaction again) from every other error, on
// each engine; Classify says which of the three it was.
//
// Other packages never write engine-specific SQL themselves; they ask the
// Dialect for it. Portable SQL uses '?' placeholders and is rebound by sqlx.
package dialect
