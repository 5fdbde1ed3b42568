package sqldialect_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

func TestQuoteRefusesWhatCannotBeQuotedSafely(t *testing.T) {
	for _, name := range []dialect.Name{dialect.SQLite, dialect.Postgres, dialect.MySQL} {
		d, _ := sqldialect.For(name)
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
		ok, err := sqldialect.Of(db).TableExists(ctx, db, "items")
		if err != nil || !ok {
			t.Fatalf("TableExists(items) = %v, %v", ok, err)
		}
		if ok, _ := sqldialect.Of(db).TableExists(ctx, db, "nope"); ok {
			t.Fatal("TableExists(nope) = true")
		}
		cols, err := sqldialect.Of(db).Columns(ctx, db, "items")
		if err != nil || len(cols) != 3 {
			t.Fatalf("Columns = %+v, %v", cols, err)
		}
		if cols[1].Name != "price" || !cols[1].Nullable || cols[2].Nullable {
			t.Fatalf("columns = %+v", cols)
		}
		if ok, err := sqldialect.Of(db).IndexExists(ctx, db, "items", "items_price"); err != nil || !ok {
			t.Fatalf("IndexExists = %v, %v", ok, err)
		}
		_, err = db.ExecContext(ctx, `INSERT INTO items (id, price, note) VALUES (1, 'a', 'b')`)
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.ExecContext(ctx, `INSERT INTO items (id, price, note) VALUES (1, 'a', 'b')`)
		if !sqldialect.Of(db).IsUniqueViolation(err) {
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
				errs <- sqldialect.Of(db).Locked(ctx, db.SQLX(), "test", 30*time.Second, func(ctx context.Context, q dialect.Querier) error {
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
