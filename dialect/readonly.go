package dialect

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrReadOnly means the database, or the user tandem logs in as, may not
// be written: read commands work, a command that writes cannot.
var ErrReadOnly = errors.New("database is read-only")

// ReadOnlyError is a write refused because the database is read-only.
type ReadOnlyError struct {
	DSN string // redacted
	Err error
}

func (e *ReadOnlyError) Error() string {
	return fmt.Sprintf("database %s is read-only for tandem (%v): this command writes; read commands (status, moves list, services list, services floor, triggers check, moves sql) work, and this one needs a DSN whose user may write", e.DSN, e.Err)
}

func (e *ReadOnlyError) Unwrap() []error { return []error{ErrReadOnly, e.Err} }

// IsReadOnly reports whether err is the engine refusing a write because
// the database or the user is read-only: SQLite's SQLITE_READONLY,
// PostgreSQL's read-only transaction (25006) or missing privilege (42501),
// MariaDB's command denied (1142, 1143) or --read-only (1290, 1836).
func IsReadOnly(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrReadOnly) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "25006" || pe.Code == "42501"
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1142, 1143, 1290, 1836:
			return true
		}
		return false
	}
	return strings.Contains(err.Error(), "attempt to write a readonly database")
}

// sqliteReadOnlyQuery reports whether a sqlite:// DSN's query asks for a
// read-only open (mode=ro).
func sqliteReadOnlyQuery(query string) bool {
	v, err := url.ParseQuery(query)
	return err == nil && v.Get("mode") == "ro"
}

// readOnlySQLite opens the file read-only: no journal mode to set (that
// writes), and deferred transactions (an immediate one takes the write
// lock, which a read-only connection cannot).
func (d DSN) readOnlySQLite() DSN {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_busy_timeout", "10000")
	q.Set("_txlock", "deferred")
	q.Set("_foreign_keys", "1")
	if walFree(d.path) {
		// A WAL database needs its -shm file, which a reader that may not
		// write the directory cannot create. With no -wal file beside it
		// (its last writer checkpointed and closed) the main file holds
		// every committed row, and SQLite may read it as immutable.
		q.Set("immutable", "1")
	}
	d.source = "file:" + d.path + "?" + q.Encode()
	d.readOnly = true
	return d
}

// ReadOnly reports whether the DSN opens a SQLite file read-only.
func (d DSN) ReadOnly() bool { return d.readOnly }

// sqliteNotWritable reports whether this process may read the SQLite file
// at path but not write it (its mode, or a read-only file system).
func sqliteNotWritable(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err == nil {
		f.Close()
		return false
	}
	return errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS)
}

// walFree reports whether no (or an empty) -wal file stands beside the
// SQLite file at path, and its -shm file cannot be created.
func walFree(path string) bool {
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		return false
	}
	if _, err := os.Stat(path + "-shm"); err == nil {
		return false
	}
	return !dirWritable(filepath.Dir(path))
}
