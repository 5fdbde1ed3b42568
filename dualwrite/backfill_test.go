package dualwrite_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
)

func TestBackfillResumesAfterKill(t *testing.T) {
	for _, mode := range []string{"sql", "go"} {
		t.Run(mode, func(t *testing.T) {
			dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
				e := newEnv(t, db, 3000, priceMove())
				e.toWriteBoth()
				opts := []dualwrite.Option{dualwrite.WithBatchSize(100, 100, 100)}
				if mode == "go" {
					opts = append(opts, dualwrite.WithGoTransforms())
				}
				killAt := 2 + rand.IntN(20)
				ctx, cancel := context.WithCancel(context.Background())
				_, err := e.mg.Backfill(ctx, e.m.Name, append(opts, dualwrite.WithProgress(func(p dualwrite.Progress) {
					if p.Batch == killAt {
						cancel()
					}
				}))...)
				cancel()
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("killed backfill: %v", err)
				}
				st := e.status()
				if st.Backfill.Complete || st.Backfill.RowsDone != int64(killAt*100) || st.Backfill.Cursor != fmt.Sprintf("[%d]", killAt*100) {
					t.Fatalf("after kill at batch %d: %+v", killAt, st.Backfill)
				}
				// The rows past the cursor were not touched.
				if n := e.count(`SELECT COUNT(*) FROM products WHERE price_cents IS NOT NULL`); n != int64(killAt*100) {
					t.Fatalf("%d rows backfilled after a kill at batch %d", n, killAt)
				}
				if g, _ := e.mg.Gate(e.ctx, e.m.Name, move.ReadNew); g.Open || g.Blockers[0].Kind != dualwrite.BlockBackfill || g.Blockers[0].Rows != int64(3000-killAt*100) {
					t.Fatalf("gate after kill: %+v", g)
				}
				res, err := e.mg.Backfill(e.ctx, e.m.Name, opts...)
				if err != nil {
					t.Fatal(err)
				}
				if !res.Resumed || !res.Complete || res.Rows != int64(3000-killAt*100) || res.Done != 3000 {
					t.Fatalf("resumed run: %+v", res)
				}
				v, err := e.mg.Verify(e.ctx, e.m.Name)
				if err != nil || v.Mismatches != 0 || v.Checked != 3000 {
					t.Fatalf("verify: %+v %v", v, err)
				}
				e.advance(move.ReadNew)
			})
		})
	}
}

func TestBackfillTerminatesUnderInserts(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 2000, priceMove())
		e.toWriteBoth()
		r, err := dualwrite.NewRouter(e.m, db.Engine())
		if err != nil {
			t.Fatal(err)
		}
		// Writers acting on write-both insert rows above and below... above
		// the bound, as fast as they can, for as long as the backfill runs.
		// The writers stop on a flag, not by cancelling their context: a
		// commit cancelled in flight can still land on the server after
		// the writer returned, after the rows were counted.
		ctx := e.ctx
		var stopped atomic.Bool
		stop := func() { stopped.Store(true) }
		var wg sync.WaitGroup
		var inserted atomic.Int64
		next := atomic.Int64{}
		next.Store(2000)
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stopped.Load() && ctx.Err() == nil {
					k := next.Add(1)
					tx, err := db.BeginTxx(ctx, nil)
					if err != nil {
						return
					}
					if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO products (id, name) VALUES (?, 'n')`), k); err != nil {
						_ = tx.Rollback()
						continue
					}
					if err := r.Write(ctx, tx, move.WriteBoth, k%5000, k); err != nil {
						_ = tx.Rollback()
						continue
					}
					if tx.Commit() == nil {
						inserted.Add(1)
					}
				}
			}()
		}
		// Slow enough that inserts land throughout the run.
		bctx, cancel := context.WithTimeout(e.ctx, 2*time.Minute)
		res, err := e.mg.Backfill(bctx, e.m.Name, dualwrite.WithBatchSize(50, 50, 50), dualwrite.WithRateLimit(20000))
		cancel()
		stop()
		wg.Wait()
		if err != nil {
			t.Fatalf("backfill under inserts: %v", err)
		}
		// The run is bounded by the highest key when it started: rows
		// inserted later are left to the writers, which write both.
		total := e.count(`SELECT COUNT(*) FROM products`)
		// A writer's row committed below the bound after the total was
		// counted raises the total at the end.
		counted := res.Done == res.Total
		if !res.Complete || res.Total < 2000 || !counted || total <= res.Total {
			t.Fatalf("backfill under inserts: %+v, %d rows in the table", res, total)
		}
		v, err := e.mg.Verify(e.ctx, e.m.Name)
		if err != nil || v.Mismatches != 0 || v.Checked != total {
			t.Fatalf("verify after %d inserts: %+v %v", inserted.Load(), v, err)
		}
	})
}

func TestFailedRowsBlockReadNew(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := priceMove()
		// A Go-only transform that refuses prices ending in .13.
		m.Forward = move.Transform{Go: func(v any) (any, error) {
			f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
			if err != nil {
				return nil, err
			}
			c := int64(f*100 + 0.5)
			if c%100 == 13 {
				return nil, fmt.Errorf("unlucky price %v", v)
			}
			return c, nil
		}}
		e := newEnv(t, db, 500, m)
		e.toWriteBoth()
		res, err := e.mg.Backfill(e.ctx, m.Name)
		if err != nil {
			t.Fatal(err)
		}
		if res.Mode != "go" || res.Failed != 5 || !res.Complete {
			t.Fatalf("backfill: %+v", res)
		}
		v, err := e.mg.Verify(e.ctx, m.Name)
		if err != nil || v.Mismatches != 0 || v.Failed != 5 || len(v.FailedRows) != 5 || v.FailedRows[0].Key != "[13]" {
			t.Fatalf("verify: %+v %v", v, err)
		}
		_, err = e.mg.Advance(e.ctx, m.Name, move.ReadNew)
		var ge *dualwrite.GateError
		if !errors.As(err, &ge) || ge.Gate.Blockers[0].Kind != dualwrite.BlockFailedRows || ge.Gate.Blockers[0].Rows != 5 {
			t.Fatalf("advance with failed rows: %v", err)
		}
		// Fix the data, retry the failed rows, verify again: the gate opens.
		e.exec(`UPDATE products SET price = price + 0.01 WHERE id IN (13, 113, 213, 313, 413)`)
		if res, err = e.mg.Backfill(e.ctx, m.Name, dualwrite.WithRetryFailed()); err != nil || res.Failed != 0 {
			t.Fatalf("retry: %+v %v", res, err)
		}
		if v, err = e.mg.Verify(e.ctx, m.Name); err != nil || v.Mismatches != 0 || v.Failed != 0 {
			t.Fatalf("verify: %+v %v", v, err)
		}
		e.advance(move.ReadNew)
	})
}

func TestVerifyListsMismatches(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 300, priceMove())
		e.toWriteBoth()
		if _, err := e.mg.Backfill(e.ctx, e.m.Name); err != nil {
			t.Fatal(err)
		}
		e.exec(`UPDATE products SET price_cents = 1 WHERE id IN (7, 70)`)
		e.exec(`UPDATE products SET price_cents = NULL WHERE id = 200`)
		for _, opt := range []dualwrite.Option{dualwrite.WithListMismatches(2), dualwrite.WithGoTransforms()} {
			v, err := e.mg.Verify(e.ctx, e.m.Name, opt, dualwrite.WithListMismatches(2))
			if err != nil || v.Mismatches != 3 || len(v.Listed) != 2 || fmt.Sprint(v.Listed[0].Key) != "[7]" || !dualwrite.SameValue(v.Listed[0].Want, 707) {
				t.Fatalf("verify (%s): %+v %v", v.Mode, v, err)
			}
		}
		g, err := e.mg.Gate(e.ctx, e.m.Name, move.ReadNew)
		if err != nil || g.Open || g.Blockers[0].Kind != dualwrite.BlockMismatches || g.Blockers[0].Rows != 3 {
			t.Fatalf("gate: %+v %v", g, err)
		}
	})
}

// TestBackfillRunnerLock: a second runner beside a live one is refused,
// naming it, and status shows it; a run whose record another runner took
// over stops at its next batch without writing.
func TestBackfillRunnerLock(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 2000, priceMove())
		e.toWriteBoth()
		other, err := dualwrite.New(e.ctx, db, []move.Move{e.m}, dualwrite.WithRegistry(e.reg))
		if err != nil {
			t.Fatal(err)
		}
		var busy, verify error
		var during dualwrite.MoveStatus
		_, err = e.mg.Backfill(e.ctx, e.m.Name, dualwrite.WithBatchSize(100, 100, 100), dualwrite.WithProgress(func(p dualwrite.Progress) {
			if p.Batch == 2 && busy == nil {
				_, busy = other.Backfill(e.ctx, e.m.Name)
				if busy == nil {
					busy = errors.New("second runner was not refused")
				}
				_, verify = other.Verify(e.ctx, e.m.Name)
				during = e.status()
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{busy, verify} {
			var be *dualwrite.BusyError
			if !errors.As(err, &be) || !errors.Is(err, dualwrite.ErrBusy) || be.Holder == nil || be.Holder.PID != os.Getpid() || be.Holder.Op != "backfill" ||
				!strings.Contains(err.Error(), fmt.Sprintf("a backfill is running (host %s, pid %d, since ", be.Holder.Host, os.Getpid())) {
				t.Fatalf("second runner: %v", err)
			}
		}
		if r := during.Runner; r == nil || !r.Alive || r.PID != os.Getpid() || r.Op != "backfill" {
			t.Fatalf("status during the run: %+v", during.Runner)
		}
		if r := e.status().Runner; r != nil {
			t.Fatalf("status after the run: %+v", r)
		}

		// Taken over: the record names another run.
		_, err = e.mg.Backfill(e.ctx, e.m.Name, dualwrite.WithRestart(), dualwrite.WithBatchSize(100, 100, 100), dualwrite.WithProgress(func(p dualwrite.Progress) {
			if p.Batch == 3 {
				e.exec(`UPDATE ` + dualwrite.MovesTable + ` SET lease_owner = 'someone else'`)
			}
		}))
		var be *dualwrite.BusyError
		if !errors.As(err, &be) || !be.Lost {
			t.Fatalf("run taken over: %v", err)
		}
		if st := e.status().Backfill; st.RowsDone != 300 || st.Complete {
			t.Fatalf("after the takeover: %+v", st)
		}
	})
}
