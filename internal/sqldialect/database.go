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
