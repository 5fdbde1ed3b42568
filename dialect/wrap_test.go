package dialect_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
)

// TestWrapAdoptsAnApplicationsPool adopts a pool opened with the driver's
// own DSN, without the settings only Open adds where tandem does not need
// them (clientFoundRows on MySQL, WAL on SQLite).
func TestWrapAdoptsAnApplicationsPool(t *testing.T) {
	ok := map[dialect.Name]string{
		dialect.SQLite:   "_busy_timeout=5000&_txlock=immediate&_foreign_keys=1",
		dialect.Postgres: "",
		dialect.MySQL:    "parseTime=true",
	}
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			ctx := context.Background()
			raw, err := sql.Open(dbtest.Driver(e.Name), dbtest.DriverDSN(t, e.Name, ok[e.Name]))
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			db, err := dialect.Wrap(ctx, raw)
			if err != nil {
				t.Fatalf("Wrap: %v", err)
			}
			if db.Engine() != e.Name || db.DB() != raw {
				t.Fatalf("Engine = %s, DB() is the pool: %v", db.Engine(), db.DB() == raw)
			}
			if db.DSN().Redacted() == "" || db.DSN().Engine != e.Name {
				t.Fatalf("DSN = %+v", db.DSN())
			}
			if e.Name == dialect.SQLite {
				var mode string
				if err := db.GetContext(ctx, &mode, `PRAGMA journal_mode`); err != nil || mode != "wal" {
					t.Fatalf("journal_mode = %q (%v), want wal set by Wrap", mode, err)
				}
				if db.DSN().Path() == "" {
					t.Fatal("no SQLite path")
				}
			}
			// sqlx rebinds '?' for the engine.
			var n int
			if err := db.GetContext(ctx, &n, db.Rebind(`SELECT ? + 1`), 1); err != nil || n != 2 {
				t.Fatalf("rebound query: %d, %v", n, err)
			}
			x, err := dialect.WrapSQLX(ctx, sqlx.NewDb(raw, "wrong-name"))
			if err != nil || x.Rebind("?") != db.Rebind("?") {
				t.Fatalf("WrapSQLX: %v, rebinds %q", err, x.Rebind("?"))
			}
		})
	}
}

// TestWrapRefusesWhatItCannotFix opens pools without what tandem relies
// on and checks each refusal names the setting.
func TestWrapRefusesWhatItCannotFix(t *testing.T) {
	cases := []struct {
		engine  dialect.Name
		name    string
		query   string
		setup   func(*sql.DB)
		setting string
	}{
		{dialect.SQLite, "no busy timeout", "_busy_timeout=0&_txlock=immediate&_foreign_keys=1", nil, "_busy_timeout"},
		{dialect.SQLite, "no foreign keys", "_busy_timeout=5000&_txlock=immediate", nil, "_foreign_keys"},
		{dialect.SQLite, "deferred transactions", "_busy_timeout=5000&_foreign_keys=1", nil, "_txlock=immediate"},
		{dialect.SQLite, "one connection", "_busy_timeout=5000&_txlock=immediate&_foreign_keys=1", func(db *sql.DB) { db.SetMaxOpenConns(1) }, "open connection"},
		{dialect.Postgres, "no schema", "search_path=nope", nil, "no current schema"},
		{dialect.Postgres, "two connections", "", func(db *sql.DB) { db.SetMaxOpenConns(2) }, "open connection"},
		{dialect.MySQL, "no parseTime", "", nil, "parseTime=true"},
		{dialect.MySQL, "local times", "parseTime=true&loc=Europe%2FParis", nil, "loc=Europe/Paris"},
	}
	for _, c := range cases {
		t.Run(string(c.engine)+"/"+c.name, func(t *testing.T) {
			raw, err := sql.Open(dbtest.Driver(c.engine), dbtest.DriverDSN(t, c.engine, c.query))
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if c.setup != nil {
				c.setup(raw)
			}
			_, err = dialect.Wrap(context.Background(), raw)
			var pe *dialect.PoolError
			if !errors.As(err, &pe) || !errors.Is(err, dialect.ErrPoolUnfit) {
				t.Fatalf("Wrap = %v, want a *PoolError", err)
			}
			if pe.Engine != c.engine || !strings.Contains(err.Error(), c.setting) || !strings.Contains(err.Error(), "dialect.Open") {
				t.Fatalf("error %q: want engine %s and %q named, and dialect.Open offered", err, c.engine, c.setting)
			}
		})
	}
	t.Run("mysql/no database", func(t *testing.T) {
		dsn := dbtest.DriverDSN(t, dialect.MySQL, "parseTime=true")
		i, j := strings.Index(dsn, ")/"), strings.Index(dsn, "?")
		raw, err := sql.Open("mysql", dsn[:i+2]+dsn[j:])
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := dialect.Wrap(context.Background(), raw); !errors.Is(err, dialect.ErrPoolUnfit) || !strings.Contains(err.Error(), "no database") {
			t.Fatalf("Wrap = %v", err)
		}
	})
	t.Run("sqlite/in memory", func(t *testing.T) {
		raw, err := sql.Open("sqlite3", "file::memory:?_busy_timeout=5000&_txlock=immediate&_foreign_keys=1")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := dialect.Wrap(context.Background(), raw); !errors.Is(err, dialect.ErrPoolUnfit) || !strings.Contains(err.Error(), "in-memory") {
			t.Fatalf("Wrap = %v", err)
		}
	})
	t.Run("other driver", func(t *testing.T) {
		raw := sql.OpenDB(otherConnector{})
		defer raw.Close()
		_, err := dialect.Wrap(context.Background(), raw)
		if !errors.Is(err, dialect.ErrPoolUnfit) || !strings.Contains(err.Error(), "otherDriver") {
			t.Fatalf("Wrap = %v", err)
		}
	})
	t.Run("nil", func(t *testing.T) {
		if _, err := dialect.Wrap(context.Background(), nil); !errors.Is(err, dialect.ErrPoolUnfit) {
			t.Fatalf("Wrap(nil) = %v", err)
		}
	})
}

// otherConnector stands for a driver tandem does not support; Wrap refuses
// it before connecting.
type otherConnector struct{}

type otherDriver struct{}

func (otherConnector) Connect(context.Context) (driver.Conn, error) {
	return nil, errors.New("not used")
}
func (otherConnector) Driver() driver.Driver         { return otherDriver{} }
func (otherDriver) Open(string) (driver.Conn, error) { return nil, errors.New("not used") }

func ExampleWrap() {
	dir, _ := os.MkdirTemp("", "tandem-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	// The application's own pool, opened with its driver's DSN.
	own, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "app.db")+"?_busy_timeout=10000&_txlock=immediate&_foreign_keys=1")
	if err != nil {
		fmt.Println(err)
		return
	}
	db, err := dialect.Wrap(ctx, own)
	fmt.Println(db.Engine(), err)
	defer db.Close() // closes own too

	// A pool opened with the driver's defaults (no foreign keys, deferred
	// transactions) is refused, with what to add to its DSN.
	bare, _ := sql.Open("sqlite3", "file:"+filepath.Join(dir, "app.db"))
	defer bare.Close()
	_, err = dialect.Wrap(ctx, bare)
	fmt.Println(errors.Is(err, dialect.ErrPoolUnfit))
	// Output:
	// sqlite <nil>
	// true
}
