package dualwrite_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// openTwice opens a fresh database on engine name through two pools, so
// two Managers run as two runners would: each with its own connections.
func openTwice(t *testing.T, name dialect.Name) (*dialect.DB, *dialect.DB) {
	t.Helper()
	dsn := dbtest.DSN(t, name)
	var dbs [2]*dialect.DB
	for i := range dbs {
		db, err := dialect.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	return dbs[0], dbs[1]
}

// historyLen counts the move's recorded transitions.
func (e *env) historyLen() int64 {
	e.t.Helper()
	return e.count(`SELECT COUNT(*) FROM `+dualwrite.HistoryTable+` WHERE move = ?`, e.m.Name)
}

// TestConcurrentAdvanceMakesOneTransition starts two runners, each a
// Manager on its own pool, on the same transition with the next two gates
// open (write-both -> read-new -> write-new), 20 times per engine: the
// history must gain exactly one transition each time, and the runner that
// lost the race must say so and change nothing. Half the tries take "the
// next phase" from a phase read before (as `tandem moves advance NAME`
// does), half name the target (as `--to` does).
func TestConcurrentAdvanceMakesOneTransition(t *testing.T) {
	for _, eng := range dbtest.Engines {
		t.Run(string(eng.Name), func(t *testing.T) {
			db1, db2 := openTwice(t, eng.Name)
			e := newEnv(t, db1, 50, priceMove())
			// No instance registered: every instance wait is satisfied, so
			// both read-new and write-new are open once verified.
			e.advance(move.WriteBoth)
			if _, err := e.mg.Backfill(e.ctx, e.m.Name); err != nil {
				t.Fatal(err)
			}
			if _, err := e.mg.Verify(e.ctx, e.m.Name); err != nil {
				t.Fatal(err)
			}
			reg2, err := services.New(e.ctx, db2)
			if err != nil {
				t.Fatal(err)
			}
			mg2, err := dualwrite.New(e.ctx, db2, []move.Move{e.m}, dualwrite.WithRegistry(reg2))
			if err != nil {
				t.Fatal(err)
			}
			runners := []*dualwrite.Manager{e.mg, mg2}
			const tries = 20
			for try := range tries {
				expectFrom := try%2 == 0
				before := e.historyLen()
				var wg sync.WaitGroup
				var read sync.WaitGroup
				read.Add(len(runners))
				start := make(chan struct{})
				trs := make([]dualwrite.Transition, len(runners))
				errs := make([]error, len(runners))
				for i, mg := range runners {
					wg.Add(1)
					go func() {
						defer wg.Done()
						to := move.ReadNew
						var opts []dualwrite.Option
						if expectFrom {
							cur, err := mg.Phase(e.ctx, e.m.Name)
							if err != nil {
								errs[i] = err
								read.Done()
								return
							}
							to, _ = cur.Next()
							opts = append(opts, dualwrite.WithExpectFrom(cur))
						}
						read.Done()
						<-start
						trs[i], errs[i] = mg.Advance(e.ctx, e.m.Name, to, opts...)
					}()
				}
				read.Wait() // both decided where they start from
				close(start)
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("try %d: runner %d: %v", try, i, err)
					}
				}
				if n := e.historyLen(); n != before+1 {
					t.Fatalf("try %d (expect from: %v): %d transitions recorded, want 1: %+v", try, expectFrom, n-before, trs)
				}
				if p := e.phase(); p != move.ReadNew {
					t.Fatalf("try %d: phase %s", try, p)
				}
				changed, already := 0, 0
				for _, tr := range trs {
					switch {
					case tr.Changed && !tr.Already && tr.From == move.WriteBoth && tr.Done:
						changed++
					case tr.Already && !tr.Changed && tr.Done && tr.From == move.ReadNew && tr.ByOther == expectFrom:
						already++
					}
				}
				if changed != 1 || already != 1 {
					t.Fatalf("try %d: %+v", try, trs)
				}
				// Back to write-both for the next try (the rollback window
				// is open and old was never stale).
				if tr, err := e.mg.Advance(e.ctx, e.m.Name, move.WriteBoth); err != nil || !tr.Changed {
					t.Fatalf("try %d: rollback: %+v %v", try, tr, err)
				}
			}
			if h := e.historyLen(); h != 1+2*tries {
				t.Fatalf("history has %d transitions, want %d", h, 1+2*tries)
			}
		})
	}
}

// A runner that started before another's transition but read the phase
// only after it was written must not advance again.
func TestAdvanceStartedBeforeAnotherTransition(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 20, priceMove())
		started := time.Now()
		e.advance(move.WriteBoth) // the other runner, first
		cur := e.phase()
		next, _ := cur.Next()
		before := e.historyLen()
		tr, err := e.mg.Advance(e.ctx, e.m.Name, next, dualwrite.WithExpectFrom(cur), dualwrite.WithStartedAt(started))
		if err != nil || tr.Changed || tr.Done || tr.Already || !tr.ByOther || tr.Other == nil ||
			tr.Other.From != "legacy" || tr.Other.To != "write-both" || tr.From != move.WriteBoth || e.historyLen() != before {
			t.Fatalf("advance started before the other's: %+v %v", tr, err)
		}
		// Started after it: the advance goes on (and is blocked here by
		// the backfill, which has not run).
		_, err = e.mg.Advance(e.ctx, e.m.Name, next, dualwrite.WithExpectFrom(cur), dualwrite.WithStartedAt(time.Now()))
		if !errors.Is(err, dualwrite.ErrBlocked) {
			t.Fatalf("advance started after the other's: %v", err)
		}
	})
}

func TestAdvanceToWhereTheMoveStandsChangesNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 20, priceMove())
		e.toWriteBoth()
		before := e.historyLen()
		for _, opts := range [][]dualwrite.Option{nil, {dualwrite.WithDryRun()}, {dualwrite.WithExpectFrom(move.Legacy)}} {
			tr, err := e.mg.Advance(e.ctx, e.m.Name, move.WriteBoth, opts...)
			if err != nil || !tr.Already || tr.Changed || !tr.Done || tr.From != move.WriteBoth || len(tr.Steps) != 0 {
				t.Fatalf("advance to write-both at write-both: %+v %v", tr, err)
			}
		}
		if n := e.historyLen(); n != before {
			t.Fatalf("history grew by %d", n-before)
		}
		// Expecting a phase the move is not at, for a target it is not
		// at either, is still refused.
		_, err := e.mg.Advance(e.ctx, e.m.Name, move.ReadNew, dualwrite.WithExpectFrom(move.Legacy))
		var pc *dualwrite.PhaseChangedError
		if !errors.As(err, &pc) || pc.Actual != move.WriteBoth || pc.Target != move.ReadNew {
			t.Fatalf("expect legacy at write-both: %v", err)
		}
	})
}
