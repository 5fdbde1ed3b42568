package sqldialect

import (
	"fmt"

	"github.com/tandem-go/tandem/dialect"
)

// CreateDatabaseSQL returns the statement that creates database name on a
// server engine. SQLite keeps a database per file and has none: it returns
// an error, as it does for a name that is not a plain identifier.
func CreateDatabaseSQL(d Dialect, name string) (string, error) {
	q, err := databaseName(d, name)
	if err != nil {
		return "", err
	}
	return "CREATE DATABASE " + q, nil
}

// DropDatabaseSQL returns the statement that drops database name, even
// with sessions still connected to it (PostgreSQL 13 and later).
func DropDatabaseSQL(d Dialect, name string) (string, error) {
	q, err := databaseName(d, name)
	if err != nil {
		return "", err
	}
	if d.Name() == dialect.Postgres {
		return "DROP DATABASE IF EXISTS " + q + " WITH (FORCE)", nil
	}
	return "DROP DATABASE IF EXISTS " + q, nil
}

func databaseName(d Dialect, name string) (string, error) {
	if d.Name() == dialect.SQLite {
		return "", fmt.Errorf("dialect: sqlite has no CREATE DATABASE: a database is a file")
	}
	return d.Quote(name)
}
