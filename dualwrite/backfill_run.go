package dualwrite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"
	"time"

	"github.com/tandem-go/tandem/internal/sqldialect"
)

func (b *bf) run(ctx context.Context, res *BackfillResult) (err error) {
	start := time.Now()
	conn, err := b.mg.db.Connx(ctx)
	if err != nil {
		return err
	}
	undo, err := sqldialect.BulkSession(ctx, conn, b.d)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("set up the backfill's connection: %w", err)
	}
	b.conn = conn
	defer func() {
		// Undo even when ctx is done: the connection goes back to the pool.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if uerr := undo(uctx); uerr != nil {
			// Never hand anyone a connection with the run's settings.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			if err == nil {
				err = fmt.Errorf("restore the backfill's connection: %w", uerr)
			}
		}
		_ = conn.Close()
	}()
	sz := &batchSizer{target: b.cfg.target, minRows: b.cfg.minBatch, maxRows: b.cfg.maxBatch}
	size := max(b.cfg.minBatch, min(b.cfg.maxBatch, b.cfg.initial))
	var ranRows int64
	if err := b.detectDense(ctx, res); err != nil {
		return err
	}
	emit := func(p Progress) {
		if b.cfg.progress != nil {
			b.cfg.progress(p)
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		n, full, done, err := b.batch(ctx, size, res)
		if err != nil {
			return err
		}
		el := time.Since(t0)
		if n > 0 || b.dense {
			b.batchTimes = append(b.batchTimes, el)
			res.Batches++
			ranRows += int64(n)
			res.Rows = ranRows
			res.Done += int64(n)
			res.LastBatch = size
			rate := float64(ranRows) / time.Since(start).Seconds()
			b.mg.met.batch(b.m.Name, b.direction, n, el, rate)
			b.mg.log.Debug("dualwrite: batch done", "move", b.m.Name, "op", b.direction, "mode", b.mode, "batch", res.Batches,
				"rows", n, "size", size, "took", el, "done", res.Done, "total", res.Total, "failed", res.Failed)
			emit(Progress{Move: b.m.Name, Op: b.direction, Mode: b.mode, Batch: res.Batches, BatchRows: n, BatchSize: size,
				BatchTime: el, Done: res.Done, Total: res.Total, Failed: res.Failed, Elapsed: time.Since(start),
				RowsPerS: rate})
			if full {
				size = sz.observe(size, el)
			}
		}
		if done {
			break
		}
		if b.cfg.rate > 0 {
			want := time.Duration(float64(ranRows) / b.cfg.rate * float64(time.Second))
			if wait := want - time.Since(start); wait > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
			}
		}
	}
	res.Complete = true
	// A row that failed again on a rerun is recorded once: the table, not
	// this run's count, says how many there are.
	if res.Failed, err = countFailures(ctx, b.mg.db, b.m.Name); err != nil {
		return err
	}
	res.Elapsed = time.Since(start)
	if res.Elapsed > 0 {
		res.RowsPerS = float64(ranRows) / res.Elapsed.Seconds()
	}
	res.P50Batch, res.P99Batch, res.MaxBatch = percentiles(b.batchTimes)
	emit(Progress{Move: b.m.Name, Op: b.direction, Mode: b.mode, Batch: res.Batches, Done: res.Done, Total: res.Total,
		Failed: res.Failed, Elapsed: res.Elapsed, RowsPerS: res.RowsPerS, Finished: true})
	return nil
}

func percentiles(ts []time.Duration) (p50, p99, mx time.Duration) {
	if len(ts) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ts)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.5) - 1
		return s[max(0, min(len(s)-1, i))]
	}
	return at(0.50), at(0.99), s[len(s)-1]
}

// batch does one batch in its own transaction: it finds the batch's upper
// key, moves the rows in (cursor, upper], and saves upper as the cursor.
func (b *bf) batch(ctx context.Context, size int, res *BackfillResult) (n int, full, done bool, err error) {
	if b.bound == nil {
		return 0, false, true, b.finish(ctx)
	}
	tx, err := b.conn.BeginTxx(ctx, nil)
	if err != nil {
		return 0, false, false, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var upper []any
	var failed int64
	switch {
	case b.dense:
		hi := min(b.lower+int64(size), b.bound[0].(int64))
		upper = []any{hi}
		var affected int64
		affected, err = b.applySQL(ctx, tx, upper)
		n, full = int(affected), hi-b.lower == int64(size)
	case b.mode == "sql":
		upper, n, err = b.probe(ctx, tx, size)
		if err == nil && n > 0 {
			_, err = b.applySQL(ctx, tx, upper)
		}
		full = n == size
	default:
		upper, n, failed, err = b.applyGo(ctx, tx, size)
		full = n == size
	}
	if err != nil {
		return 0, false, false, err
	}
	if n == 0 && !b.dense {
		if err := tx.Rollback(); err != nil {
			return 0, false, false, err
		}
		return 0, false, true, b.finish(ctx)
	}
	last := keyEqual(upper, b.bound)
	if err := b.saveBatch(ctx, tx, upper, n, failed, last, res); err != nil {
		return 0, false, false, err
	}
	if err := tx.Commit(); err != nil {
		return 0, false, false, err
	}
	b.cursor = upper
	if b.dense {
		b.lower = upper[0].(int64)
	}
	return n, full, last, nil
}

// detectDense decides whether batches can be ranges of key values: one
// integer key column, SQL mode, and at least one row per two key values in
// what is left. It saves the probe query of each batch, which costs a fifth
// of the update itself on SQLite and on InnoDB (whose probe reads the
// clustered index). A batch's row count is then the engine's affected-row
// count: exact on SQLite and PostgreSQL; on MySQL/MariaDB the rows changed,
// so rows already holding the right value are not counted and progress can
// end short of 100% on a rerun. Completion is recorded either way.
func (b *bf) detectDense(ctx context.Context, res *BackfillResult) error {
	if b.mode != "sql" || len(b.keys) != 1 || b.bound == nil {
		return nil
	}
	hi, ok := b.bound[0].(int64)
	if !ok {
		return nil
	}
	var lo int64
	if b.cursor != nil {
		c, ok := b.cursor[0].(int64)
		if !ok {
			return nil
		}
		lo = c
	} else {
		var mn sql.NullInt64
		if err := b.mg.db.GetContext(ctx, &mn, `SELECT MIN(`+b.keys[0]+`) FROM `+b.tbl); err != nil {
			return err
		}
		if !mn.Valid {
			return nil
		}
		lo = mn.Int64 - 1
	}
	left := res.Total - res.Done
	if span := hi - lo; span > 0 && left*2 >= span {
		b.dense, b.lower = true, lo
	}
	return nil
}
