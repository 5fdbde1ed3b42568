package dualwrite_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
)

// TestBackfillTotalNeverAboveTable: the batch that finishes a backfill
// records completion and its rows once, on every engine (MySQL and MariaDB
// evaluate a single-table SET from left to right, which once added the last
// batch twice to the total), whether the batches are ranges of key values,
// probed, or read in Go, and whether the run was resumed.
func TestBackfillTotalNeverAboveTable(t *testing.T) {
	cases := []struct {
		name    string
		gaps    bool // keys with gaps: each batch probes for its end
		goMode  bool
		resumed bool
	}{
		{name: "dense"},
		{name: "probe", gaps: true},
		{name: "go", goMode: true},
		{name: "dense-resumed", resumed: true},
		{name: "probe-resumed", gaps: true, resumed: true},
		{name: "go-resumed", goMode: true, resumed: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
				e := newEnv(t, db, 1050, priceMove())
				if c.gaps {
					e.exec(`DELETE FROM products WHERE id % 3 <> 0`)
				}
				rows := e.count(`SELECT COUNT(*) FROM products`)
				e.toWriteBoth()
				opts := []dualwrite.Option{dualwrite.WithBatchSize(100, 100, 100)}
				if c.goMode {
					opts = append(opts, dualwrite.WithGoTransforms())
				}
				if c.resumed {
					ctx, cancel := context.WithCancel(e.ctx)
					_, err := e.mg.Backfill(ctx, e.m.Name, append(opts, dualwrite.WithProgress(func(p dualwrite.Progress) {
						if p.Batch == 2 {
							cancel()
						}
					}))...)
					cancel()
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("interrupted run: %v", err)
					}
				}
				res, err := e.mg.Backfill(e.ctx, e.m.Name, opts...)
				if err != nil {
					t.Fatal(err)
				}
				st := e.status().Backfill
				if !st.Complete || st.RowsTotal != rows || st.RowsDone != rows || res.Total != rows || res.Done != rows || res.Resumed != c.resumed {
					t.Fatalf("%d rows in the table; status %+v; result %+v", rows, st, res)
				}
			})
		})
	}
}

// TestFailedRowsCountedOnce: failed_rows is what tandem_move_failures
// holds. A row that fails again on a rerun (a restart, a retry, a verify)
// is still one row, and a restart forgets them.
func TestFailedRowsCountedOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := priceMove()
		m.Forward = move.Transform{Go: func(v any) (any, error) {
			f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
			if err != nil {
				return nil, err
			}
			if c := int64(f*100 + 0.5); c%100 != 13 {
				return c, nil
			}
			return nil, fmt.Errorf("unlucky price %v", v)
		}}
		e := newEnv(t, db, 500, m)
		e.toWriteBoth()
		check := func(step string, want int64, got int64) {
			t.Helper()
			st := e.status()
			table := e.count(`SELECT COUNT(*) FROM `+dualwrite.FailuresTable+` WHERE move = ?`, m.Name)
			if got != want || st.FailedRows != want || table != want {
				t.Fatalf("%s: result %d, status %d, table %d; want %d", step, got, st.FailedRows, table, want)
			}
		}
		res, err := e.mg.Backfill(e.ctx, m.Name, dualwrite.WithBatchSize(100, 100, 100))
		if err != nil {
			t.Fatal(err)
		}
		check("backfill", 5, res.Failed)
		res, err = e.mg.Backfill(e.ctx, m.Name, dualwrite.WithRetryFailed())
		if err != nil {
			t.Fatal(err)
		}
		check("retry that fails again", 5, res.Failed)
		v, err := e.mg.Verify(e.ctx, m.Name)
		if err != nil {
			t.Fatal(err)
		}
		check("verify", 5, v.Failed)
		e.exec(`UPDATE products SET price = price + 0.01 WHERE id IN (13, 113)`)
		if res, err = e.mg.Backfill(e.ctx, m.Name, dualwrite.WithRetryFailed()); err != nil {
			t.Fatal(err)
		}
		check("retry that converts two", 3, res.Failed)
		if res, err = e.mg.Backfill(e.ctx, m.Name, dualwrite.WithRestart(), dualwrite.WithBatchSize(100, 100, 100)); err != nil {
			t.Fatal(err)
		}
		check("restart", 3, res.Failed)
	})
}
