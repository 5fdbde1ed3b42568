package tandemtest

import (
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
)

// SkipMarker starts the message of every engine run skipped for want of a
// DSN, so a CI job meant to cover every engine can fail on it (grep the
// verbose test output for it).
const SkipMarker = dbtest.SkipMarker

// The variables that name the servers ForEachEngine, Open and DSN use,
// e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable and
// mysql://root@127.0.0.1:3306/test. SQLite needs none.
const (
	PostgresEnv = "TANDEM_TEST_POSTGRES"
	MySQLEnv    = "TANDEM_TEST_MYSQL"
)

// ForEachEngine runs fn as a subtest per engine, named sqlite, postgres and
// mysql, each with a fresh, empty database of its own: a file in the
// test's temporary directory for SQLite, and on PostgreSQL and
// MySQL/MariaDB a database created on the server that PostgresEnv or
// MySQLEnv names and dropped when the subtest ends. An engine whose
// variable is unset is skipped with a message starting with SkipMarker.
func ForEachEngine(t *testing.T, fn func(t *testing.T, db *dialect.DB)) {
	t.Helper()
	dbtest.ForEach(t, fn)
}

// Open opens a fresh, empty database on engine, closed and (on a server)
// dropped when the test ends; it skips the test when the engine's variable
// is unset (see ForEachEngine).
func Open(t testing.TB, engine dialect.Name) *dialect.DB {
	t.Helper()
	return dbtest.Open(t, engine)
}

// DSN returns the DSN of a fresh, empty database on engine, for code under
// test that opens its own (a process started by the test, say); the
// database is dropped when the test ends. It skips like Open.
func DSN(t testing.TB, engine dialect.Name) string {
	t.Helper()
	return dbtest.DSN(t, engine)
}
