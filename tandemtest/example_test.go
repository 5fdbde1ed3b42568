package tandemtest_test

import (
	"context"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/tandemtest"
)

// The shape of a test of your own code: users.fullname moves to
// users.display_name; the old and new releases' code paths read and write
// through a Router at the phase they are given.
func ExampleRun() {
	m := move.Move{Name: "display_name", Table: "users", Key: []string{"id"}, Old: "fullname",
		New: move.Target{Column: "display_name", Type: move.ColumnType{SQL: "VARCHAR(200)"}}}
	code := func(ctx context.Context, t testing.TB, db *dialect.DB, p move.Phase) {
		r, _ := dualwrite.NewRouter(m, db.Dialect)
		if err := r.Write(ctx, db, p, "Ada Lovelace", 1); err != nil {
			t.Errorf("write at %s: %v", p, err)
		}
		if v, err := r.Read(ctx, db, p, 1); err != nil || v != "Ada Lovelace" {
			t.Errorf("read at %s: %v %v", p, v, err)
		}
	}
	_ = tandemtest.Case{
		Move: m,
		Setup: func(ctx context.Context, t testing.TB, db *dialect.DB) {
			db.MustExec(`CREATE TABLE users (id BIGINT PRIMARY KEY, fullname VARCHAR(200))`)
			db.MustExec(`INSERT INTO users (id, fullname) VALUES (1, 'Ada')`)
		},
		Old: code,
		New: code,
	}
	// In a test: dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) { tandemtest.Run(t, db, c) })
}
