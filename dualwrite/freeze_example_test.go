package dualwrite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// ExampleTracker_BeginWrite freezes writes on a move, as tandem freeze
// does: the instance's tracker refuses writes with the freeze's reason,
// reads go on, and the heartbeat acknowledges the freeze once no write
// begun before it runs.
func ExampleTracker_BeginWrite() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "tandem-example")
	defer os.RemoveAll(dir)
	db, _ := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "shop.db"))
	defer db.Close()
	db.MustExec(`CREATE TABLE products (id INTEGER PRIMARY KEY, price DECIMAL(12,2))`)
	_, _ = schema.Ensure(ctx, db, append(services.Tables(), dualwrite.Tables()...))
	reg, _ := services.New(ctx, db)
	m := move.Move{Name: "price_cents", Table: "products", Key: []string{"id"}, Old: "price",
		New:      move.Target{Column: "price_cents", Type: move.ColumnType{SQL: "INTEGER"}},
		Forward:  move.Transform{SQL: "CAST(ROUND({value} * 100) AS INTEGER)"},
		Backward: move.Transform{SQL: "{value} / 100.0"}}
	mg, _ := dualwrite.New(ctx, db, []move.Move{m}, dualwrite.WithRegistry(reg))
	tracker, _ := dualwrite.NewTracker(ctx, db, 42, []move.Move{m})
	_ = reg.Register(ctx, services.Instance{ID: "web-1", Service: "shop", Release: 42, Phases: tracker.Phases(), Freeze: tracker.FreezeAck()})

	// A write begun before the freeze is still running.
	_, inFlight, _ := tracker.BeginWrite("price_cents")

	st, _ := mg.Freeze(ctx, dualwrite.FreezeScope{Moves: []string{"price_cents"}}, "restore of the catalog")
	_ = tracker.Refresh(ctx) // what Run does every interval

	_, _, err := tracker.BeginWrite("price_cents")
	var fe *dualwrite.FrozenError
	fmt.Println(errors.Is(err, dualwrite.ErrFrozen), errors.As(err, &fe) && fe.Reason == "restore of the catalog")
	_, read := tracker.Begin("price_cents") // reads go on
	read()

	heartbeat := func() {
		_ = reg.Heartbeat(ctx, "web-1", services.Heartbeat{Phases: tracker.Phases(), Freeze: tracker.FreezeAck()})
	}
	heartbeat()
	fs, _ := mg.FreezeStatus(ctx)
	fmt.Println("frozen everywhere:", fs.Everywhere())
	inFlight() // its transaction ended
	heartbeat()
	fs, _ = mg.FreezeStatus(ctx)
	fmt.Println("frozen everywhere:", fs.Everywhere(), "at state", st.Seq)
	// Output:
	// true true
	// frozen everywhere: false
	// frozen everywhere: true at state 1
}
