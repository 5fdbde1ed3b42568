package dualwrite_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
)

func mustExec(t *testing.T, db *dialect.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), db.Rebind(q), args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// A Backward expression may hold a '?' of its own: the value is bound once,
// whatever the expression's text.
func TestRouterWriteBindsTheValueOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		mustExec(t, db, `CREATE TABLE products (id BIGINT PRIMARY KEY, price DECIMAL(12,2), price_cents BIGINT)`)
		mustExec(t, db, `INSERT INTO products (id, price, price_cents) VALUES (1, 1.00, 100)`)
		m := move.Move{Name: "price_cents", Table: "products", Key: []string{"id"}, Old: "price",
			New:      move.Target{Column: "price_cents"},
			Backward: move.Transform{SQL: "CASE WHEN '?' = '?' AND {value} >= 0 THEN {value} / 100.0 ELSE NULL END"}}
		r, err := dualwrite.NewRouter(m, db.Engine())
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			p       move.Phase
			value   int64
			price   float64
			wantNew int64
		}{
			{move.Legacy, 250, 2.5, 100},
			{move.WriteBoth, 12345, 123.45, 12345},
			{move.ReadNew, 777, 7.77, 777},
		} {
			if err := r.Write(ctx, db, tt.p, tt.value, 1); err != nil {
				t.Fatalf("%s: %v", tt.p, err)
			}
			var price, cents any
			if err := db.QueryRowxContext(ctx, `SELECT price, price_cents FROM products WHERE id = 1`).Scan(&price, &cents); err != nil {
				t.Fatal(err)
			}
			if !dualwrite.SameValue(price, tt.price) || !dualwrite.SameValue(cents, tt.wantNew) {
				t.Fatalf("%s wrote price %v, price_cents %v; want %v, %v", tt.p, move.Normalize(price), move.Normalize(cents), tt.price, tt.wantNew)
			}
		}
		// Every engine tells a missing row, MySQL included.
		for _, p := range []move.Phase{move.Legacy, move.WriteBoth, move.WriteNew} {
			if err := r.Write(ctx, db, p, int64(1), 999); !errors.Is(err, dualwrite.ErrNoRow) {
				t.Fatalf("%s on a missing row: %v", p, err)
			}
		}
		// An unchanged row is still found (MySQL reports 0 rows changed).
		if err := r.Write(ctx, db, move.ReadNew, int64(777), 1); err != nil {
			t.Fatalf("rewriting the same value: %v", err)
		}
	})
}

// PostgreSQL's jsonb ? operator in a Backward expression.
func TestRouterWriteJSONBOperator(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		if db.Engine() != dialect.Postgres {
			t.Skip("the jsonb ? operator is PostgreSQL's")
		}
		ctx := context.Background()
		mustExec(t, db, `CREATE TABLE docs (id BIGINT PRIMARY KEY, has_a BOOLEAN, doc JSONB)`)
		mustExec(t, db, `INSERT INTO docs (id, has_a) VALUES (1, false)`)
		m := move.Move{Name: "docs", Table: "docs", Key: []string{"id"}, Old: "has_a", New: move.Target{Column: "doc"},
			Backward: move.Transform{SQL: "CAST({value} AS jsonb) ? 'a'"}}
		r, err := dualwrite.NewRouter(m, db.Engine())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Write(ctx, db, move.WriteBoth, `{"a": 1}`, 1); err != nil {
			t.Fatal(err)
		}
		var hasA bool
		var doc string
		if err := db.QueryRowxContext(ctx, `SELECT has_a, doc::text FROM docs WHERE id = 1`).Scan(&hasA, &doc); err != nil || !hasA || doc != `{"a": 1}` {
			t.Fatalf("has_a %v, doc %s, %v", hasA, doc, err)
		}
	})
}

// Across tables, write-new writes only the destination table: a key the
// source table does not have is refused, not given a destination row.
func TestRouterCrossTableWriteNeedsTheSourceRow(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		mustExec(t, db, `CREATE TABLE resource (id BIGINT PRIMARY KEY, properties TEXT)`)
		mustExec(t, db, `CREATE TABLE resource_properties_data (resource_id BIGINT PRIMARY KEY, data TEXT)`)
		mustExec(t, db, `INSERT INTO resource (id, properties) VALUES (1, 'x')`)
		r, err := dualwrite.NewRouter(propsMove(), db.Engine())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []move.Phase{move.WriteBoth, move.ReadNew, move.WriteNew, move.Contracted} {
			if err := r.Write(ctx, db, p, "y", 2); !errors.Is(err, dualwrite.ErrNoRow) {
				t.Fatalf("%s for a missing source row: %v", p, err)
			}
		}
		var n int
		if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM resource_properties_data`); err != nil || n != 0 {
			t.Fatalf("destination rows for a missing source: %d %v", n, err)
		}
		if err := r.Write(ctx, db, move.WriteNew, "y", 1); err != nil {
			t.Fatal(err)
		}
		if v, err := r.Read(ctx, db, move.WriteNew, 1); err != nil || v != "y" {
			t.Fatalf("read back %v %v", v, err)
		}
	})
}
