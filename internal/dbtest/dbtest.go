// Package dbtest gives each test its own database on every engine tandem
// supports, so one conformance suite runs on SQLite always and on PostgreSQL
// and MySQL/MariaDB when TANDEM_TEST_POSTGRES and TANDEM_TEST_MYSQL are set.
//
// A skipped engine logs SkipMarker, which CI looks for to fail a run that
// was meant to cover every engine.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

// SkipMarker starts the message of every engine skipped for want of a DSN.
const SkipMarker = "TANDEM-ENGINE-SKIPPED"

// Engine is one engine a test can run on.
type Engine struct {
	Name   dialect.Name
	EnvVar string // empty for SQLite, which needs no server
}

// Engines lists every engine, in the order tests run them.
var Engines = []Engine{
	{Name: dialect.SQLite},
	{Name: dialect.Postgres, EnvVar: "TANDEM_TEST_POSTGRES"},
	{Name: dialect.MySQL, EnvVar: "TANDEM_TEST_MYSQL"},
}

// ForEach runs fn as a subtest per engine, each with a fresh, empty database.
func ForEach(t *testing.T, fn func(t *testing.T, db *dialect.DB)) {
	t.Helper()
	for _, e := range Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			fn(t, Open(t, e.Name))
		})
	}
}

// DSN returns a DSN for a fresh, empty database on engine name, dropped when
// the test ends; it skips the test when the engine's variable is unset.
func DSN(t testing.TB, name dialect.Name) string {
	t.Helper()
	switch name {
	case dialect.SQLite:
		return "sqlite://" + filepath.Join(t.TempDir(), "tandem.db")
	case dialect.Postgres:
		return serverDB(t, "TANDEM_TEST_POSTGRES", "PostgreSQL", name)
	case dialect.MySQL:
		return serverDB(t, "TANDEM_TEST_MYSQL", "MariaDB", name)
	}
	t.Fatalf("dbtest: unknown engine %q", name)
	return ""
}

// Open opens a fresh database on engine name (see DSN).
func Open(t testing.TB, name dialect.Name) *dialect.DB {
	t.Helper()
	dsn := DSN(t, name)
	db, err := dialect.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", name, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func serverDB(t testing.TB, env, label string, engine dialect.Name) string {
	t.Helper()
	d, err := sqldialect.For(engine)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	create := func(n string) string { s, _ := sqldialect.CreateDatabaseSQL(d, n); return s }
	drop := func(n string) string { s, _ := sqldialect.DropDatabaseSQL(d, n); return s }
	base := os.Getenv(env)
	if base == "" {
		t.Skipf("%s: %s not set; skipping the %s run (set %s=%s to run it)", SkipMarker, env, label, env, example(env))
	}
	admin, err := dialect.Open(context.Background(), base)
	if err != nil {
		t.Fatalf("dbtest: %s: %v", env, err)
	}
	defer admin.Close()
	name := "tandem_t_" + randomSuffix()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, create(name)); err != nil {
		t.Fatalf("dbtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		a, err := dialect.Open(context.Background(), base)
		if err != nil {
			t.Errorf("dbtest: reopen to drop %s: %v", name, err)
			return
		}
		defer a.Close()
		if _, err := a.ExecContext(context.Background(), drop(name)); err != nil {
			t.Errorf("dbtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("dbtest: %s: %v", env, err)
	}
	u.Path = "/" + name
	return u.String()
}

func example(env string) string {
	if strings.Contains(env, "POSTGRES") {
		return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	return "mysql://root@127.0.0.1:3306/test"
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Driver is the database/sql driver name of engine name.
func Driver(name dialect.Name) string {
	return map[dialect.Name]string{dialect.SQLite: "sqlite3", dialect.Postgres: "pgx", dialect.MySQL: "mysql"}[name]
}

// DriverDSN is DSN as the engine's driver takes it, the way an
// application opening its own pool writes it, with query (driver
// settings such as "parseTime=true") and none of what dialect.Open adds.
func DriverDSN(t testing.TB, name dialect.Name, query string) string {
	t.Helper()
	raw := DSN(t, name)
	switch name {
	case dialect.SQLite:
		return "file:" + strings.TrimPrefix(raw, "sqlite://") + "?" + query
	case dialect.Postgres:
		if query == "" {
			return raw
		}
		return raw + "&" + query
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return u.User.Username() + "@tcp(" + u.Host + ")" + u.Path + "?" + query
}
