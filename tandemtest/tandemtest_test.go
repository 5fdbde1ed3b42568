package tandemtest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/tandemtest"
)

// A user's own code, release before and after: users.fullname moves to
// users.display_name. The old code reads and writes through the Router at
// the phase it is given, as application code using tandem does.
func TestRunWalksEveryBoundary(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := move.Move{Name: "display_name", Table: "users", Key: []string{"id"}, Old: "fullname",
			New: move.Target{Column: "display_name", Type: move.ColumnType{SQL: "VARCHAR(200)"}}}
		r, err := dualwrite.NewRouter(m, db.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		code := func(side string) tandemtest.Code {
			return func(ctx context.Context, t testing.TB, db *dialect.DB, p move.Phase) {
				id := map[string]int{"old": 1, "new": 2}[side]
				v := fmt.Sprintf("%s-%s", side, p)
				if err := r.Write(ctx, db, p, v, id); err != nil {
					t.Errorf("%s write at %s: %v", side, p, err)
				}
				got, err := r.Read(ctx, db, p, id)
				if err != nil || got != v {
					t.Errorf("%s at %s: read %v (%v) after writing %s", side, p, got, err, v)
				}
			}
		}
		bs := tandemtest.Run(t, db, tandemtest.Case{
			Move: m,
			Setup: func(ctx context.Context, t testing.TB, db *dialect.DB) {
				db.MustExec(`CREATE TABLE users (id BIGINT PRIMARY KEY, fullname VARCHAR(200))`)
				db.MustExec(`INSERT INTO users (id, fullname) VALUES (1, 'a'), (2, 'b'), (3, 'c')`)
			},
			Old: code("old"), New: code("new"),
			Check: func(ctx context.Context, t testing.TB, db *dialect.DB, p move.Phase) { seen[p.String()]++ },
		})
		if len(bs) != 4 || len(seen) != 4 || bs[3].To != move.Contracted || bs[1].Verify == nil || bs[1].Verify.Mismatches != 0 {
			t.Fatalf("boundaries %+v, checks %v", bs, seen)
		}
		if got, _ := r.Read(context.Background(), db, move.Contracted, 3); got != "c" {
			t.Fatalf("untouched row 3 reads %v after the walk", got)
		}
	})
}
