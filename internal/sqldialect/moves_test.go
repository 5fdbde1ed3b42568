package sqldialect_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestRowsSQLGolden pins the multi-row write statements of the Go-function
// backfill per engine.
func TestRowsSQLGolden(t *testing.T) {
	for _, name := range []dialect.Name{dialect.SQLite, dialect.Postgres, dialect.MySQL} {
		t.Run(string(name), func(t *testing.T) {
			d, err := sqldialect.For(name)
			if err != nil {
				t.Fatal(err)
			}
			q := func(s string) string { return sqldialect.MustQuote(d, s) }
			var b strings.Builder
			for _, c := range []struct {
				label string
				sql   string
			}{
				{"update, one key, 1 row", sqldialect.UpdateRowsSQL(d, q("items"), []string{q("id")}, q("cents"), 1)},
				{"update, one key, 3 rows", sqldialect.UpdateRowsSQL(d, q("items"), []string{q("id")}, q("cents"), 3)},
				{"update, two keys, 2 rows", sqldialect.UpdateRowsSQL(d, q("lines"), []string{q("order_id"), q("line")}, q("cents"), 2)},
				{"upsert, one key, 3 rows", sqldialect.UpsertRowsSQL(d, q("item_cents"), []string{q("item_id")}, q("cents"), 3)},
				{"upsert, two keys, 2 rows", sqldialect.UpsertRowsSQL(d, q("line_cents"), []string{q("order_id"), q("line")}, q("cents"), 2)},
			} {
				fmt.Fprintf(&b, "-- %s\n%s;\n\n", c.label, c.sql)
			}
			path := filepath.Join("testdata", "rows."+string(name)+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if b.String() != string(want) {
				t.Errorf("SQL differs from %s (rerun with -update if intended):\n%s", path, b.String())
			}
		})
	}
}

// TestUpdateRows runs the multi-row update on every engine over columns of
// several types, NULL included, with a composite key one of whose columns
// is text: on PostgreSQL every parameter must get the column's type.
func TestUpdateRows(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		d := sqldialect.Of(db)
		q := func(s string) string { return sqldialect.MustQuote(d, s) }
		exec := func(s string, args ...any) {
			t.Helper()
			if _, err := db.ExecContext(ctx, db.Rebind(s), args...); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		exec(`CREATE TABLE rows_t (region VARCHAR(20) NOT NULL, id BIGINT NOT NULL, price DECIMAL(12,2) NOT NULL, note VARCHAR(50), cents BIGINT, PRIMARY KEY (region, id))`)
		exec(`INSERT INTO rows_t (region, id, price, note) VALUES ('eu', 1, 1.50, 'a'), ('eu', 2, 2.25, 'b'), ('us', 1, 3.00, 'c'), ('us', 2, 4.00, 'd')`)
		keys := []string{q("region"), q("id")}
		for _, c := range []struct {
			col  string
			args []any
		}{
			{"cents", []any{"eu", int64(1), int64(150), "us", int64(1), nil, "us", int64(2), int64(400)}},
			{"note", []any{"eu", int64(2), "changed", "us", int64(2), nil, "zz", int64(9), "no such row"}},
		} {
			r, err := db.ExecContext(ctx, db.Rebind(sqldialect.UpdateRowsSQL(d, q("rows_t"), keys, q(c.col), 3)), c.args...)
			if err != nil {
				t.Fatalf("update %s: %v", c.col, err)
			}
			// MySQL counts rows changed: ('us', 1) already had a NULL cents.
			if n, _ := r.RowsAffected(); n < 2 || n > 3 {
				t.Fatalf("update %s: %d rows affected", c.col, n)
			}
		}
		var got []string
		rows, err := db.QueryxContext(ctx, `SELECT region, id, note, cents FROM rows_t ORDER BY region, id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var region, note *string
			var id int64
			var cents *int64
			if err := rows.Scan(&region, &id, &note, &cents); err != nil {
				t.Fatal(err)
			}
			s := fmt.Sprintf("%s/%d:", *region, id)
			if note != nil {
				s += *note
			}
			s += ":"
			if cents != nil {
				s += fmt.Sprint(*cents)
			}
			got = append(got, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := "eu/1:a:150 eu/2:changed: us/1:c: us/2::400"
		if g := strings.Join(got, " "); g != want {
			t.Fatalf("after the updates: %s, want %s", g, want)
		}
		exec(`CREATE TABLE rows_n (region VARCHAR(20) NOT NULL, id BIGINT NOT NULL, cents BIGINT, PRIMARY KEY (region, id))`)
		exec(`INSERT INTO rows_n (region, id, cents) VALUES ('eu', 1, 1)`)
		nkeys := []string{q("region"), q("id")}
		exec(sqldialect.UpsertRowsSQL(d, q("rows_n"), nkeys, q("cents"), 2), "eu", int64(1), int64(150), "us", int64(2), nil)
		var n, sum int64
		if err := db.QueryRowxContext(ctx, `SELECT COUNT(*), COALESCE(SUM(cents), 0) FROM rows_n`).Scan(&n, &sum); err != nil || n != 2 || sum != 150 {
			t.Fatalf("after the upsert: %d rows, sum %d, %v", n, sum, err)
		}
	})
}

func TestMaxRowsPerStatement(t *testing.T) {
	for _, c := range []struct{ cols, want int }{{1, 1000}, {2, 1000}, {31, 967}, {30000, 1}, {0, 1000}} {
		if got := sqldialect.MaxRowsPerStatement(c.cols); got != c.want {
			t.Errorf("MaxRowsPerStatement(%d) = %d, want %d", c.cols, got, c.want)
		}
	}
}

// TestBulkSession checks that a bulk session's settings hold on its
// connection only until undo, which restores what was there.
func TestBulkSession(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		var setting string
		switch db.Engine() {
		case dialect.Postgres:
			setting = `SHOW synchronous_commit`
		case dialect.SQLite:
			setting = `PRAGMA wal_autocheckpoint`
		default:
			setting = `SELECT 'none'`
		}
		conn, err := db.Connx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		read := func() string {
			t.Helper()
			var v string
			if err := conn.GetContext(ctx, &v, setting); err != nil {
				t.Fatal(err)
			}
			return v
		}
		before := read()
		undo, err := sqldialect.BulkSession(ctx, conn, sqldialect.Of(db))
		if err != nil {
			t.Fatal(err)
		}
		during := read()
		want := map[dialect.Name]string{dialect.Postgres: "off", dialect.SQLite: "5000", dialect.MySQL: "none"}[db.Engine()]
		if during != want {
			t.Errorf("during the session: %s, want %s", during, want)
		}
		tx, err := conn.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if q := sqldialect.DurableCommitSQL(sqldialect.Of(db)); q != "" {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := undo(ctx); err != nil {
			t.Fatal(err)
		}
		if after := read(); after != before {
			t.Errorf("after undo: %s, want %s as before", after, before)
		}
	})
}
