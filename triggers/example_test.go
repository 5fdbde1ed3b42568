package triggers_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/triggers"
)

// Print the SQLite triggers for a move within one table.
func ExampleForMove() {
	m := move.Move{
		Name: "price", Table: "items", Key: []string{"id"},
		Old: "price_cents", New: move.Target{Column: "price_mills"},
		Forward:  move.Transform{SQL: "{value} * 10"},
		Backward: move.Transform{SQL: "{value} / 10"},
		Triggers: true,
	}
	set, err := triggers.ForMove(dialect.SQLite, m)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(set.Objects[0].Create)
	// Output:
	// CREATE TRIGGER "tandem_price_1" AFTER INSERT ON "items" FOR EACH ROW
	// WHEN NEW."price_mills" IS NULL AND NEW."price_cents" IS NOT NULL OR NEW."price_cents" IS NULL AND NEW."price_mills" IS NOT NULL
	// BEGIN
	//   UPDATE "items" SET "price_mills" = COALESCE(NEW."price_mills", (NEW."price_cents" * 10)), "price_cents" = COALESCE(NEW."price_cents", (NEW."price_mills" / 10)) WHERE "id" = NEW."id";
	// END
}

// Install, check and use the triggers: an old writer fills only old.
func ExampleInstall() {
	dir, _ := os.MkdirTemp("", "tandem-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "app.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	db.MustExec(`CREATE TABLE items (id INTEGER PRIMARY KEY, price_cents INTEGER, price_mills INTEGER)`)

	m := move.Move{
		Name: "price", Table: "items", Key: []string{"id"},
		Old: "price_cents", New: move.Target{Column: "price_mills"},
		Forward:  move.Transform{SQL: "{value} * 10"},
		Backward: move.Transform{SQL: "{value} / 10"},
		Triggers: true,
	}
	set, _ := triggers.ForMove(db.Engine(), m)
	res, err := triggers.Install(ctx, db, set)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res)
	res, _ = triggers.Install(ctx, db, set)
	fmt.Println(res)

	db.MustExec(`INSERT INTO items (id, price_cents) VALUES (1, 250)`)
	db.MustExec(`INSERT INTO items (id, price_mills) VALUES (2, 990)`)
	var rows []struct {
		ID    int `db:"id"`
		Cents int `db:"price_cents"`
		Mills int `db:"price_mills"`
	}
	_ = db.SelectContext(ctx, &rows, `SELECT id, price_cents, price_mills FROM items ORDER BY id`)
	for _, r := range rows {
		fmt.Println(r.ID, r.Cents, r.Mills)
	}
	_, err = triggers.Check(ctx, db, set)
	fmt.Println("check:", err)
	// Output:
	// Triggers of move 'price': created tandem_price_1, tandem_price_2
	// Triggers of move 'price' are up to date (2 objects)
	// 1 250 2500
	// 2 99 990
	// check: <nil>
}
