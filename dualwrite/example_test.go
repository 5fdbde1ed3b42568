package dualwrite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// Example walks a move from legacy to read-new on SQLite with one instance.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "tandem-example")
	defer os.RemoveAll(dir)
	db, _ := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "shop.db"))
	defer db.Close()
	db.MustExec(`CREATE TABLE products (id INTEGER PRIMARY KEY, price DECIMAL(12,2))`)
	db.MustExec(`INSERT INTO products (id, price) VALUES (1, 9.99), (2, 12.50)`)
	_, _ = schema.Ensure(ctx, db, append(services.Tables(), dualwrite.Tables()...))
	reg, _ := services.New(ctx, db)

	m := move.Move{Name: "price_cents", Table: "products", Key: []string{"id"}, Old: "price",
		New:      move.Target{Column: "price_cents", Type: move.ColumnType{SQL: "INTEGER"}},
		Forward:  move.Transform{SQL: "CAST(ROUND({value} * 100) AS INTEGER)"},
		Backward: move.Transform{SQL: "{value} / 100.0"}}
	mg, _ := dualwrite.New(ctx, db, []move.Move{m}, dualwrite.WithRegistry(reg))
	_ = reg.Register(ctx, services.Instance{ID: "web-1", Service: "shop", Release: 42})

	tr, _ := mg.Advance(ctx, "price_cents", move.WriteBoth)
	fmt.Println(tr.Steps[0].SQL[0])

	// The instance picks the phase up and reports it with its heartbeat.
	tracker, _ := dualwrite.NewTracker(ctx, db, 42, []move.Move{m})
	_ = reg.Heartbeat(ctx, "web-1", services.Heartbeat{Phases: tracker.Phases()})

	_, err := mg.Advance(ctx, "price_cents", move.ReadNew)
	fmt.Println(err)

	res, _ := mg.Backfill(ctx, "price_cents")
	v, _ := mg.Verify(ctx, "price_cents")
	fmt.Println(res.Done, "rows backfilled,", v.Mismatches, "mismatches")
	_, err = mg.Advance(ctx, "price_cents", move.ReadNew)
	fmt.Println(err)

	_ = tracker.Refresh(ctx)
	r, _ := dualwrite.NewRouter(m, db.Engine())
	// Each operation acts on the phase Begin gives it until done.
	phase, done := tracker.Begin("price_cents")
	cents, _ := r.Read(ctx, db, phase, 1)
	done()
	fmt.Println(phase, cents)
	// Output:
	// ALTER TABLE "products" ADD COLUMN "price_cents" INTEGER
	// move "price_cents" cannot go from write-both to read-new: the backfill has not run: tandem moves backfill price_cents
	// 2 rows backfilled, 0 mismatches
	// <nil>
	// read-new 999
}

func ExampleParsePlan() {
	p, err := dualwrite.LoadPlan("testdata/plan.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range p.Moves {
		fmt.Printf("%s: %s.%s -> %s.%s (triggers %v)\n", m.Name, m.Table, m.Old, m.NewTable(), m.New.Column, m.Triggers)
	}
	// Output:
	// price_cents: products.price -> products.price_cents (triggers false)
	// resource_props: resource.properties -> resource_properties_data.data (triggers true)
}
