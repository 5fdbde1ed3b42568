package dialect_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
)

func TestParseDSN(t *testing.T) {
	cases := []struct {
		in       string
		engine   dialect.Name
		redacted string
		wantErr  bool
	}{
		{in: "sqlite:///var/lib/app.db", engine: dialect.SQLite, redacted: "sqlite:///var/lib/app.db"},
		{in: "/var/lib/app.db", engine: dialect.SQLite, redacted: "sqlite:///var/lib/app.db"},
		{in: "postgres://u:s3cret@db:5432/app?sslmode=disable", engine: dialect.Postgres, redacted: "postgres://u:xxxxx@db:5432/app?sslmode=disable"},
		{in: "postgresql://u@db/app", engine: dialect.Postgres, redacted: "postgres://u@db/app"},
		{in: "mysql://root:pw@127.0.0.1:3306/test", engine: dialect.MySQL, redacted: "mysql://root:xxxxx@127.0.0.1:3306/test"},
		{in: "mysql://root@127.0.0.1/test", engine: dialect.MySQL, redacted: "mysql://root@127.0.0.1/test"},
		{in: "", wantErr: true},
		{in: "oracle://u:p@h/db", wantErr: true},
		{in: "postgres://u:p@/db", wantErr: true},
		{in: "postgres://u:p@host", wantErr: true},
		{in: "mysql://u:p@host/a/b", wantErr: true},
		{in: "mysql://u:p@host", wantErr: true},
		{in: "postgres:nohost", wantErr: true},
		{in: "sqlite://", wantErr: true},
		{in: "postgres://u:p%zz@h/db", wantErr: true},
		{in: "postgres://u@h:5432/db?password=S3CRETpw&sslmode=disable", engine: dialect.Postgres, redacted: "postgres://u@h:5432/db?password=xxxxx&sslmode=disable"},
		{in: "postgres://u:pa@ss word@127.0.0.1/x", wantErr: true},
		{in: "postgres://u:p@h/db\nDROP", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			d, err := dialect.ParseDSN(tc.in)
			if tc.wantErr {
				if !errors.Is(err, dialect.ErrBadDSN) {
					t.Fatalf("ParseDSN(%q) = %v, want ErrBadDSN", tc.in, err)
				}
				for _, secret := range []string{":p@", "p%zz", "ss word", "pa@"} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("error leaks the password: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Engine != tc.engine || d.Redacted() != tc.redacted {
				t.Fatalf("got %s %q, want %s %q", d.Engine, d.Redacted(), tc.engine, tc.redacted)
			}
			if strings.Contains(d.String(), "s3cret") || strings.Contains(d.String(), ":pw@") || strings.Contains(d.String(), "S3CRETpw") {
				t.Fatal("String() shows the password")
			}
		})
	}
}

func TestUnreachableDatabaseNeverShowsPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:hunter2@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
		"postgres://u@127.0.0.1:1/db?password=hunter2&sslmode=disable&connect_timeout=2",
		"mysql://u:hunter2@127.0.0.1:1/db",
		"sqlite:///nonexistent-dir-for-tandem/sub/app.db",
	} {
		_, err := dialect.Open(context.Background(), dsn, dialect.WithPingTimeout(3*time.Second))
		if !errors.Is(err, dialect.ErrUnreachable) {
			t.Fatalf("Open(%s) = %v, want ErrUnreachable", dsn, err)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error shows the password: %v", err)
		}
	}
}

func TestQuoteRefusesWhatCannotBeQuotedSafely(t *testing.T) {
	for _, name := range []dialect.Name{dialect.SQLite, dialect.Postgres, dialect.MySQL} {
		d, _ := dialect.For(name)
		for _, bad := range []string{"", `a"b`, "a`b", "a;DROP TABLE x", "a b", "1abc", "a-b", strings.Repeat("x", 64), "a\x00"} {
			if _, err := d.Quote(bad); !errors.Is(err, dialect.ErrBadIdentifier) {
				t.Errorf("%s: Quote(%q) = %v, want ErrBadIdentifier", name, bad, err)
			}
		}
		q, err := d.Quote("price_cents")
		if err != nil || !strings.Contains(q, "price_cents") || len(q) != len("price_cents")+2 {
			t.Errorf("%s: Quote(price_cents) = %q, %v", name, q, err)
		}
	}
}

func TestIntrospectionOnEveryEngine(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE items (id INTEGER NOT NULL PRIMARY KEY, price VARCHAR(20), note TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `CREATE INDEX items_price ON items (price)`); err != nil {
			t.Fatal(err)
		}
		ok, err := db.Dialect.TableExists(ctx, db, "items")
		if err != nil || !ok {
			t.Fatalf("TableExists(items) = %v, %v", ok, err)
		}
		if ok, _ := db.Dialect.TableExists(ctx, db, "nope"); ok {
			t.Fatal("TableExists(nope) = true")
		}
		cols, err := db.Dialect.Columns(ctx, db, "items")
		if err != nil || len(cols) != 3 {
			t.Fatalf("Columns = %+v, %v", cols, err)
		}
		if cols[1].Name != "price" || !cols[1].Nullable || cols[2].Nullable {
			t.Fatalf("columns = %+v", cols)
		}
		if ok, err := db.Dialect.IndexExists(ctx, db, "items", "items_price"); err != nil || !ok {
			t.Fatalf("IndexExists = %v, %v", ok, err)
		}
		_, err = db.ExecContext(ctx, `INSERT INTO items (id, price, note) VALUES (1, 'a', 'b')`)
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.ExecContext(ctx, `INSERT INTO items (id, price, note) VALUES (1, 'a', 'b')`)
		if !db.Dialect.IsUniqueViolation(err) {
			t.Fatalf("IsUniqueViolation(%v) = false", err)
		}
	})
}

func TestLockSerializesRunners(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE counter (n INTEGER NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO counter (n) VALUES (0)`); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 6)
		for range 6 {
			go func() {
				errs <- db.Dialect.Locked(ctx, db.DB, "test", 30*time.Second, func(ctx context.Context, q dialect.Querier) error {
					var n int
					if err := q.GetContext(ctx, &n, `SELECT n FROM counter`); err != nil {
						return err
					}
					time.Sleep(5 * time.Millisecond) // widen the race a lost update needs
					_, err := q.ExecContext(ctx, q.Rebind(`UPDATE counter SET n = ?`), n+1)
					return err
				})
			}()
		}
		for range 6 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := db.GetContext(ctx, &n, `SELECT n FROM counter`); err != nil || n != 6 {
			t.Fatalf("counter = %d (%v), want 6: the lock let two runners in", n, err)
		}
	})
}

func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"sqlite:///a.db", "postgres://u:p@h:5432/db", "mysql://r@h/db", "/tmp/x.db", "mysql://u:p%@h/db", "::::", "postgres://[::1]:5/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := dialect.ParseDSN(s)
		if err != nil {
			if !errors.Is(err, dialect.ErrBadDSN) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if d.Engine == "" {
			t.Fatal("parsed DSN has no engine")
		}
		if u := d.Redacted(); strings.Contains(s, ":secretpw@") && strings.Contains(u, "secretpw") {
			t.Fatalf("redacted form shows the password: %s", u)
		}
	})
}
