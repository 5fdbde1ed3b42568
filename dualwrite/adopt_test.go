package dualwrite_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
)

// TestAdoptedPoolRoutesWrites runs a move on a pool the application opened
// itself with its driver's DSN and adopted with dialect.Wrap. On MySQL the
// pool lacks clientFoundRows, so an UPDATE that writes a row's current
// values reports 0 rows: a write must still find the row, and a write of a
// missing row must still be refused.
func TestAdoptedPoolRoutesWrites(t *testing.T) {
	query := map[dialect.Name]string{
		dialect.SQLite: "_busy_timeout=5000&_txlock=immediate&_foreign_keys=1",
		dialect.MySQL:  "parseTime=true",
	}
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			ctx := context.Background()
			raw, err := sql.Open(dbtest.Driver(e.Name), dbtest.DriverDSN(t, e.Name, query[e.Name]))
			if err != nil {
				t.Fatal(err)
			}
			db, err := dialect.Wrap(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			mustExec(t, db, `CREATE TABLE products (id BIGINT PRIMARY KEY, price BIGINT, price_cents BIGINT)`)
			mustExec(t, db, `INSERT INTO products (id, price, price_cents) VALUES (1, 1, 100)`)
			if e.Name == dialect.MySQL {
				res, err := db.ExecContext(ctx, `UPDATE products SET price = 1 WHERE id = 1`)
				if n, _ := res.RowsAffected(); err != nil || n != 0 {
					t.Fatalf("the pool counts %d row(s) for an unchanged row (%v): the test needs one that counts changed rows", n, err)
				}
			}
			m := move.Move{Name: "price_cents", Table: "products", Key: []string{"id"}, Old: "price",
				New:      move.Target{Column: "price_cents"},
				Forward:  move.Transform{SQL: "{value} * 100"},
				Backward: move.Transform{SQL: "{value} / 100", Dialects: map[dialect.Name]string{dialect.MySQL: "{value} DIV 100"}}}
			ensureLedger(t, db)
			if _, err := dualwrite.New(ctx, db, []move.Move{m}); err != nil {
				t.Fatalf("dualwrite.New on the adopted pool: %v", err)
			}
			r, err := dualwrite.NewRouter(m, db.Engine())
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 { // the second write changes nothing
				if err := dialect.InTx(ctx, db, func(q dialect.Querier) error {
					return r.Write(ctx, q, move.WriteBoth, int64(500), 1)
				}); err != nil {
					t.Fatalf("write %d of an existing row: %v", i+1, err)
				}
				if err := dualwrite.WriteValue(ctx, db.DB(), r, move.WriteBoth, int64(500), 1); err != nil {
					t.Fatalf("typed write %d of an existing row: %v", i+1, err)
				}
			}
			if err := r.Write(ctx, db, move.WriteBoth, int64(500), 2); !errors.Is(err, dualwrite.ErrNoRow) {
				t.Fatalf("write of a missing row: %v, want ErrNoRow", err)
			}
			if err := dualwrite.WriteValue(ctx, db.DB(), r, move.WriteBoth, int64(500), 2); !errors.Is(err, dualwrite.ErrNoRow) {
				t.Fatalf("typed write of a missing row: %v, want ErrNoRow", err)
			}
			got, err := r.Read(ctx, db, move.ReadNew, 1)
			if err != nil || !dualwrite.SameValue(got, int64(500)) {
				t.Fatalf("read = %v, %v", got, err)
			}
		})
	}
}
