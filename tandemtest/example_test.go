package tandemtest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/tandemtest"
)

// A test of your own code: users.fullname moves to users.display_name,
// and the application, wired as it is in production, takes each
// operation's phase from its tracker and writes through a Router. Both
// releases of every boundary write the same row.
//
// In your own test it is one call, run on every engine you configure:
//
//	func TestDisplayNameMove(t *testing.T) {
//		tandemtest.ForEachEngine(t, func(t *testing.T, db *dialect.DB) {
//			tandemtest.Run(t, db, tandemtest.Case{Move: m, Setup: setup, App: app})
//		})
//	}
//
// An example has no test of its own, so this one borrows the real
// testing.TB that testing.Benchmark lends, and walks once.
func ExampleRun() {
	m := move.Move{Name: "display_name", Table: "users", Key: []string{"id"}, Old: "fullname",
		New:      move.Target{Column: "display_name", Type: move.ColumnType{SQL: "VARCHAR(200)"}},
		Releases: move.Releases{WriteBoth: 2, ReadNew: 3, WriteNew: 4, Contracted: 4}}
	setup := func(ctx context.Context, t testing.TB, db *dialect.DB) {
		db.MustExec(`CREATE TABLE users (id BIGINT PRIMARY KEY, fullname VARCHAR(200))`)
		db.MustExec(`INSERT INTO users (id, fullname) VALUES (1, 'Ada')`)
	}
	// app is the application's wiring over its tracker.
	app := func(ctx context.Context, t testing.TB, db *dialect.DB, tr *dualwrite.Tracker) tandemtest.Code {
		r, err := dualwrite.NewRouter(m, db.Engine())
		if err != nil {
			t.Fatal(err)
		}
		return func(ctx context.Context, t testing.TB, db *dialect.DB, _ move.Phase) {
			phase, done := tr.Begin(m.Name)
			defer done() // after the commit
			tx, err := db.BeginTxx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
			if err := r.Write(ctx, tx, phase, "Ada Lovelace", 1); err != nil {
				t.Fatalf("write at %s: %v", phase, err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var once sync.Once
	testing.Benchmark(func(b *testing.B) {
		once.Do(func() {
			db := tandemtest.Open(b, dialect.SQLite)
			for _, bd := range tandemtest.Run(b, db, tandemtest.Case{Move: m, Setup: setup, App: app}) {
				fmt.Printf("%s -> %s\n", bd.From, bd.To)
			}
		})
	})
	// Output:
	// legacy -> write-both
	// write-both -> read-new
	// read-new -> write-new
	// write-new -> contracted
}
