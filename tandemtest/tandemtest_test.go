package tandemtest_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/history"
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
		r, err := dualwrite.NewRouter(m, db.Engine())
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		// Row 4 is written and read by both releases at once, each at its
		// own phase: its history, across every boundary, must be
		// linearizable, one register.
		hist := history.NewRecorder()
		var n atomic.Int64
		code := func(side string) tandemtest.Code {
			client := map[string]int{"old": 0, "new": 1}[side]
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
				shared := fmt.Sprintf("%s-%s-%d", side, p, n.Add(1))
				call := time.Now()
				err = r.Write(ctx, db, p, shared, 4)
				outcome := history.Applied
				if err != nil {
					outcome = history.Unknown
					t.Errorf("%s write of row 4 at %s: %v", side, p, err)
				}
				hist.Write(client, "users/4", shared, call, time.Now(), outcome)
				call = time.Now()
				if got, err := r.Read(ctx, db, p, 4); err == nil {
					hist.Read(client, "users/4", fmt.Sprint(got), got != nil, call, time.Now())
				} else {
					t.Errorf("%s read of row 4 at %s: %v", side, p, err)
				}
			}
		}
		start := time.Now()
		hist.Write(2, "users/4", "d", start, start, history.Applied) // the setup's row
		bs := tandemtest.Run(t, db, tandemtest.Case{
			Move: m,
			Setup: func(ctx context.Context, t testing.TB, db *dialect.DB) {
				db.MustExec(`CREATE TABLE users (id BIGINT PRIMARY KEY, fullname VARCHAR(200))`)
				db.MustExec(`INSERT INTO users (id, fullname) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')`)
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
		rep := hist.Check(history.CheckOptions{})
		if !rep.Linearizable() || rep.Keys != 1 || rep.Ops < 2*4*3 {
			for _, f := range rep.Failures {
				t.Error(f)
			}
			t.Fatalf("history of row 4: %d keys, %d operations, not linearizable or undecided (%v)", rep.Keys, rep.Ops, rep.Undecided)
		}
		t.Logf("history of row 4: %d operations across %d boundaries, linearizable", rep.Ops, len(bs))
	})
}
