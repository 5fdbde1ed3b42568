package inventory_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/move"
)

// phaseOf acts on one phase; a real instance passes its *dualwrite.Tracker.
type phaseOf move.Phase

func (p phaseOf) Begin(string) (move.Phase, func()) { return move.Phase(p), func() {} }

// A release acting on write-both writes the price to both columns and
// reads the old one; price_cents holds cents, price whole units.
func ExampleSQLStore() {
	dir, _ := os.MkdirTemp("", "inventory-example-*")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "app.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	create, _ := inventory.CreateTableSQL("items")
	db.MustExec(create)
	db.MustExec(`ALTER TABLE items ADD COLUMN price_cents BIGINT`) // the move's expand step

	m := inventory.PriceMove("items_price_cents", "items", move.Releases{WriteBoth: 42, ReadNew: 43, WriteNew: 44}, false)
	store, err := inventory.NewSQLStore(db, m, phaseOf(move.WriteBoth))
	if err != nil {
		panic(err)
	}
	if err := store.Put(ctx, &pb.Item{Id: "bolt", Name: "Bolt", Quantity: 10, PriceCents: 1200}, false); err != nil {
		panic(err)
	}
	it, _ := store.Get(ctx, "bolt")
	var price, cents int64
	_ = db.QueryRowx(`SELECT price, price_cents FROM items WHERE id = 'bolt'`).Scan(&price, &cents)
	fmt.Printf("read %d cents; stored price %d, price_cents %d\n", it.PriceCents, price, cents)
	// Output: read 1200 cents; stored price 12, price_cents 1200
}
