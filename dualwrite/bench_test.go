package dualwrite_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// BenchmarkBackfill measures a backfill against a single UPDATE of the
// whole table in the same run, per engine, on TANDEM_BENCH_ROWS rows
// (default 1,000,000). Run it once:
//
//	go test -run XXX -bench BenchmarkBackfill -benchtime 1x -timeout 60m ./dualwrite/
//
// Every pass starts from the state a real move starts from: the table
// freshly copied from a pristine source, then a NULL column added to it.
// The single UPDATE and the SQL-expression backfill alternate which goes
// first, TANDEM_BENCH_PASSES times each (default 5), and their medians are
// compared. The Go-function transform runs TANDEM_BENCH_GO_PASSES times
// (default 1; 0 skips it) after them and is reported separately.
// TANDEM_BENCH_BATCH fixes the rows per batch instead of letting the size
// adapt (default 0: adaptive), to see what the batch size alone costs;
// TANDEM_BENCH_TARGET_MS sets the target time per batch instead of the
// default.
//
// Reported per engine: the single UPDATE's rows/s, the backfill's rows/s,
// their ratio (of the medians, and the median of the per-pass ratios), and
// the backfill's p50/p99/max batch time over every batch of every pass.
func BenchmarkBackfill(b *testing.B) {
	rows := benchEnv(b, "TANDEM_BENCH_ROWS", 1_000_000)
	passes := benchEnv(b, "TANDEM_BENCH_PASSES", 5)
	goPasses := benchEnv(b, "TANDEM_BENCH_GO_PASSES", 1)
	var opts []dualwrite.Option
	if n := benchEnv(b, "TANDEM_BENCH_BATCH", 0); n > 0 {
		opts = append(opts, dualwrite.WithBatchSize(n, n, n))
	}
	if ms := benchEnv(b, "TANDEM_BENCH_TARGET_MS", 0); ms > 0 {
		opts = append(opts, dualwrite.WithTargetBatchTime(time.Duration(ms)*time.Millisecond))
	}
	for _, e := range dbtest.Engines {
		b.Run(string(e.Name), func(b *testing.B) {
			for range b.N {
				benchBackfill(b, dbtest.Open(b, e.Name), rows, passes, goPasses, opts...)
			}
		})
	}
}

func benchEnv(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q: want a count", name, s)
	}
	return n
}

func benchBackfill(b *testing.B, db *dialect.DB, rows, passes, goPasses int, opts ...dualwrite.Option) {
	ctx := context.Background()
	name := db.Engine()
	exec := func(q string, args ...any) {
		if _, err := db.ExecContext(ctx, db.Rebind(q), args...); err != nil {
			b.Fatalf("%.80s: %v", q, err)
		}
	}
	// On SQLite a table's key is its rowid (INTEGER PRIMARY KEY), as
	// SQLite schemas declare it; BIGINT PRIMARY KEY would add an index.
	idType := "BIGINT"
	if name == dialect.SQLite {
		idType = "INTEGER"
	}
	t0 := time.Now()
	exec(`CREATE TABLE bench_src (id ` + idType + ` PRIMARY KEY, price DECIMAL(12,2))`)
	const chunk = 1000
	for lo := 1; lo <= rows; lo += chunk {
		hi := min(rows, lo+chunk-1)
		var sb strings.Builder
		sb.WriteString("INSERT INTO bench_src (id, price) VALUES ")
		for i := lo; i <= hi; i++ {
			if i > lo {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "(%d, %d.%02d)", i, i%100000, i%100)
		}
		exec(sb.String())
	}
	b.Logf("%s: seeded %d rows in %s", name, rows, time.Since(t0).Round(time.Millisecond))

	fwd := priceMove().Forward
	expr, err := fwd.Render(name, sqldialect.MustQuote(sqldialect.Of(db), "price"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := schema.Ensure(ctx, db, append(services.Tables(), dualwrite.Tables()...)); err != nil {
		b.Fatal(err)
	}
	reg, err := services.New(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	newMove := func(label string, i int) (*dualwrite.Manager, move.Move) {
		m := priceMove()
		m.Name, m.Table = fmt.Sprintf("bench_%s_%d", label, i), "bench"
		m.New = move.Target{Column: "cents", Type: move.ColumnType{SQL: "BIGINT"}}
		mg, err := dualwrite.New(ctx, db, []move.Move{m}, dualwrite.WithRegistry(reg))
		if err != nil {
			b.Fatal(err)
		}
		return mg, m
	}

	// fresh rebuilds bench as a real move finds it: rows written long ago,
	// then the new column added, NULL everywhere. expand adds the column
	// (the move's own expand step for a backfill, the same ALTER TABLE for
	// the baseline). Then the engine is settled, so no pass pays for the
	// previous one: PostgreSQL's hint bits and visibility map are set by
	// VACUUM, SQLite's WAL is checkpointed, and every engine has read the
	// whole table once.
	fresh := func(expand func()) {
		exec(`DROP TABLE IF EXISTS bench`)
		exec(`CREATE TABLE bench (id ` + idType + ` PRIMARY KEY, price DECIMAL(12,2))`)
		exec(`INSERT INTO bench (id, price) SELECT id, price FROM bench_src`)
		expand()
		switch name {
		case dialect.Postgres:
			exec(`VACUUM ANALYZE bench`)
		case dialect.SQLite:
			exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		case dialect.MySQL:
			exec(`ANALYZE TABLE bench`)
		}
		var n int64
		if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM bench WHERE price >= 0`); err != nil || n != int64(rows) {
			b.Fatalf("fresh table: %d rows, %v", n, err)
		}
	}
	single := func() float64 {
		fresh(func() { exec(sqldialect.AddColumnSQL(sqldialect.Of(db), "bench", "cents", "BIGINT")) })
		t0 := time.Now()
		exec(`UPDATE bench SET cents = ` + expr)
		return float64(rows) / time.Since(t0).Seconds()
	}
	// backfill returns the run's result and the rows/s of the whole
	// Backfill call, which also counts the rows to do and takes the runner lock:
	// that, not the batches' loop alone, is what the single UPDATE is
	// compared with.
	backfill := func(label string, i int, opts ...dualwrite.Option) (dualwrite.BackfillResult, float64) {
		mg, m := newMove(label, i)
		fresh(func() {
			if _, err := mg.Advance(ctx, m.Name, move.WriteBoth); err != nil {
				b.Fatal(err)
			}
		})
		t0 := time.Now()
		res, err := mg.Backfill(ctx, m.Name, opts...)
		if err != nil {
			b.Fatal(err)
		}
		wall := float64(rows) / time.Since(t0).Seconds()
		v, err := mg.Verify(ctx, m.Name)
		if err != nil || v.Mismatches != 0 || v.Checked != int64(rows) {
			b.Fatalf("verify %s: %+v %v", m.Name, v, err)
		}
		return res, wall
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	median := func(xs []float64) float64 {
		s := slices.Clone(xs)
		slices.Sort(s)
		if len(s)%2 == 0 {
			return (s[len(s)/2-1] + s[len(s)/2]) / 2
		}
		return s[len(s)/2]
	}

	var singles, backfills, ratios []float64
	var batches []time.Duration
	for i := 1; i <= passes; i++ {
		var s, wall float64
		var r dualwrite.BackfillResult
		// Alternate which goes first: whatever the previous statement
		// left (dirty pages being flushed, a purge running) then weighs
		// on both sides equally.
		var first string
		sqlRun := func() {
			r, wall = backfill("sql", i, slices.Concat(opts, []dualwrite.Option{dualwrite.WithProgress(func(p dualwrite.Progress) {
				if !p.Finished {
					batches = append(batches, p.BatchTime)
				}
			})})...)
		}
		if i%2 == 1 {
			first = "UPDATE first"
			s = single()
			sqlRun()
		} else {
			first = "backfill first"
			sqlRun()
			s = single()
		}
		singles, backfills, ratios = append(singles, s), append(backfills, wall), append(ratios, wall/s)
		b.Logf("%s pass %d (%s): single UPDATE %.0f rows/s; sql backfill %.0f rows/s (%.2fx; batches alone %.0f rows/s), %d batches, p50 %.1f ms, p99 %.1f ms, max %.1f ms, last batch size %d",
			name, i, first, s, wall, wall/s, r.RowsPerS, r.Batches, ms(r.P50Batch), ms(r.P99Batch), ms(r.MaxBatch), r.LastBatch)
	}
	if passes > 0 {
		singleRate, sqlRate := median(singles), median(backfills)
		p50, p99, mx := dualwrite.BatchPercentiles(batches)
		b.ReportMetric(singleRate, "single-update-rows/s")
		b.ReportMetric(sqlRate, "sql-backfill-rows/s")
		b.ReportMetric(sqlRate/singleRate, "sql-ratio")
		b.ReportMetric(median(ratios), "sql-ratio-median-of-passes")
		b.ReportMetric(ms(p50), "sql-p50-batch-ms")
		b.ReportMetric(ms(p99), "sql-p99-batch-ms")
		b.ReportMetric(ms(mx), "sql-max-batch-ms")
		b.Logf("%s, %d rows, medians of %d: single UPDATE %.0f rows/s, sql backfill %.0f rows/s (%.2fx; per-pass ratios' median %.2fx); over %d batches p50 %.1f ms, p99 %.1f ms, max %.1f ms",
			name, rows, passes, singleRate, sqlRate, sqlRate/singleRate, median(ratios), len(batches), ms(p50), ms(p99), ms(mx))
	}

	var goRates, goSingles []float64
	var goBatches []time.Duration
	for i := 1; i <= goPasses; i++ {
		s := single()
		r, wall := backfill("go", i, slices.Concat(opts, []dualwrite.Option{dualwrite.WithGoTransforms(), dualwrite.WithProgress(func(p dualwrite.Progress) {
			if !p.Finished {
				goBatches = append(goBatches, p.BatchTime)
			}
		})})...)
		goSingles, goRates = append(goSingles, s), append(goRates, wall)
		b.Logf("%s go pass %d: single UPDATE %.0f rows/s; go backfill %.0f rows/s (%.2fx; batches alone %.0f rows/s), %d batches, p50 %.1f ms, p99 %.1f ms, max %.1f ms, last batch size %d",
			name, i, s, wall, wall/s, r.RowsPerS, r.Batches, ms(r.P50Batch), ms(r.P99Batch), ms(r.MaxBatch), r.LastBatch)
	}
	if goPasses > 0 {
		goRate, singleRate := median(goRates), median(goSingles)
		p50, p99, mx := dualwrite.BatchPercentiles(goBatches)
		b.ReportMetric(goRate, "go-backfill-rows/s")
		b.ReportMetric(goRate/singleRate, "go-ratio")
		b.ReportMetric(ms(p50), "go-p50-batch-ms")
		b.ReportMetric(ms(p99), "go-p99-batch-ms")
		b.ReportMetric(ms(mx), "go-max-batch-ms")
	}
}
