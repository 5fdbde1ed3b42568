package sqldialect_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

func ExampleDialect_Quote() {
	for _, name := range []dialect.Name{dialect.SQLite, dialect.Postgres, dialect.MySQL} {
		d, _ := sqldialect.For(name)
		q, _ := d.Quote("price_cents")
		_, err := d.Quote(`x"; DROP TABLE users; --`)
		fmt.Println(name, q, err != nil)
	}
	// Output:
	// sqlite "price_cents" true
	// postgres "price_cents" true
	// mysql `price_cents` true
}

func ExampleTryRunnerLock() {
	dir, _ := os.MkdirTemp("", "tandem-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "app.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	lk, err := sqldialect.TryRunnerLock(ctx, db, "move:price_cents")
	fmt.Println("first runner:", err)
	_, err = sqldialect.TryRunnerLock(ctx, db, "move:price_cents")
	fmt.Println("second runner refused:", errors.Is(err, sqldialect.ErrHeld))
	held, _ := sqldialect.RunnerLockHeld(ctx, db, "move:price_cents")
	fmt.Println("held:", held)
	_ = lk.Release(ctx) // or the process ends, however it ends
	held, _ = sqldialect.RunnerLockHeld(ctx, db, "move:price_cents")
	fmt.Println("held after release:", held)
	// Output:
	// first runner: <nil>
	// second runner refused: true
	// held: true
	// held after release: false
}
