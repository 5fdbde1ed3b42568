package sqldialect

import (
	"fmt"
)

// CreateDatabaseSQL returns the statement that creates database name on a
// server engine. SQLite keeps a database per file and has none: it returns
// an error, as it does for a name that is not a plain identifier.
func CreateDatabaseSQL(d Dialect, name string) (string, error) {
	q, err := d.Quote(name)
	if err != nil {
		return "", err
	}
	return d.databaseSQL("CREATE", q)
}

// DropDatabaseSQL returns the statement that drops database name, even
// with sessions still connected to it (PostgreSQL 13 and later).
func DropDatabaseSQL(d Dialect, name string) (string, error) {
	q, err := d.Quote(name)
	if err != nil {
		return "", err
	}
	return d.databaseSQL("DROP", q)
}

// errNoDatabases is SQLite's answer: a database is a file.
var errNoDatabases = fmt.Errorf("dialect: sqlite has no CREATE DATABASE: a database is a file")

// BackupIntoSQL returns the statement that writes a consistent copy of
// the database into the file named by its one placeholder, the file being
// new or empty: SQLite's VACUUM INTO. ok is false on a server engine,
// whose dump tool makes the copy (pg_dump, mariadb-dump).
func BackupIntoSQL(d Dialect) (query string, ok bool) {
	q := d.backupIntoSQL()
	return q, q != ""
}
