package dialect

import (
	"errors"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// Conflict says why an engine refused a transaction that may well succeed
// when run again from its start: another transaction held what it needed.
// The zero value means the error is not such a conflict.
type Conflict string

// The conflicts Classify tells apart.
const (
	// Deadlock: the engine chose this transaction as the victim of a lock
	// cycle and rolled it back (PostgreSQL 40P01, MySQL/MariaDB 1213).
	Deadlock Conflict = "deadlock"
	// LockTimeout: a lock was not granted in time (PostgreSQL 55P03 under
	// lock_timeout, MySQL/MariaDB 1205 after innodb_lock_wait_timeout,
	// SQLite's SQLITE_BUSY after the busy timeout, and SQLITE_LOCKED).
	LockTimeout Conflict = "lock timeout"
	// SerializationFailure: the transaction read data another one changed
	// in a way its isolation level cannot allow (PostgreSQL 40001, MariaDB
	// 1020 under innodb_snapshot_isolation, SQLite's SQLITE_BUSY_SNAPSHOT).
	SerializationFailure Conflict = "serialization failure"
)

// Classify returns the Conflict err stands for, or "" when err is nil or
// anything else: a constraint violation, bad SQL, a lost connection and
// a cancelled context are not conflicts, and running the same transaction
// again would fail the same way or should not happen at all.
func Classify(err error) Conflict {
	if err == nil {
		return ""
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40P01":
			return Deadlock
		case "40001":
			return SerializationFailure
		case "55P03":
			return LockTimeout
		}
		return ""
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1213:
			return Deadlock
		case 1205:
			return LockTimeout
		case 1020:
			return SerializationFailure
		}
		return ""
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch {
		case se.ExtendedCode == sqlite3.ErrBusySnapshot:
			return SerializationFailure
		case se.Code == sqlite3.ErrBusy, se.Code == sqlite3.ErrLocked:
			return LockTimeout
		}
		return ""
	}
	// A COMMIT that found the database busy comes back from the SQLite
	// driver as text only.
	if msg := err.Error(); strings.Contains(msg, "database is locked") || strings.Contains(msg, "database table is locked") {
		return LockTimeout
	}
	return ""
}

// IsRetryable reports whether err is a deadlock, a lock wait timeout or a
// serialization failure on any engine: the whole transaction was (or must
// be) rolled back, and running it again from its start may succeed. Retry
// a bounded number of times with a short, growing, jittered pause; on
// MySQL/MariaDB a lock wait timeout rolls back only the statement, so roll
// the transaction back before running it again.
func IsRetryable(err error) bool { return Classify(err) != "" }

// IsUniqueViolation reports whether err is a primary key or unique
// constraint violation on any engine (SQLite's constraint errors,
// PostgreSQL 23505, MySQL/MariaDB 1062): a row with that key is there
// already, which running the statement again will not change.
func IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1062
	}
	var se sqlite3.Error
	return errors.As(err, &se) && (se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}

// loginRefused reports whether err is the server refusing a login: bad
// credentials or an unknown database (PostgreSQL class 28 and 3D000,
// MySQL/MariaDB 1044, 1045, 1049 and 1698).
func loginRefused(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "28") || pe.Code == "3D000"
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1044, 1045, 1049, 1698:
			return true
		}
	}
	return false
}
