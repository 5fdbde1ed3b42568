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

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/dialect"
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
// Reported per engine: the single UPDATE's rows/s, the SQL-expression
// backfill's rows/s, their ratio, the backfill's p50/p99/max batch time and
// final batch size, and the same for a Go-function transform.
func BenchmarkBackfill(b *testing.B) {
	rows := 1_000_000
	if s := os.Getenv("TANDEM_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("TANDEM_BENCH_ROWS=%q", s)
		}
		rows = n
	}
	for _, e := range dbtest.Engines {
		b.Run(string(e.Name), func(b *testing.B) {
			for range b.N {
				benchBackfill(b, dbtest.Open(b, e.Name), rows)
			}
		})
	}
}

func benchBackfill(b *testing.B, db *dialect.DB, rows int) {
	ctx := context.Background()
	exec := func(q string, args ...any) {
		if _, err := db.ExecContext(ctx, db.Rebind(q), args...); err != nil {
			b.Fatalf("%.80s: %v", q, err)
		}
	}
	// On SQLite a table's key is its rowid (INTEGER PRIMARY KEY), as
	// SQLite schemas declare it; BIGINT PRIMARY KEY would add an index.
	idType := "BIGINT"
	if db.Dialect.Name() == dialect.SQLite {
		idType = "INTEGER"
	}
	exec(`CREATE TABLE bench (id ` + idType + ` PRIMARY KEY, price DECIMAL(12,2), base_1 BIGINT, base_2 BIGINT, base_3 BIGINT, sql_1 BIGINT, sql_2 BIGINT, sql_3 BIGINT, go_cents BIGINT)`)
	t0 := time.Now()
	const chunk = 1000
	for lo := 1; lo <= rows; lo += chunk {
		hi := min(rows, lo+chunk-1)
		var sb strings.Builder
		// The target columns start filled with a value of the same width
		// as the results, so no pass pays for rows growing and the order
		// of the passes does not matter.
		sb.WriteString("INSERT INTO bench (id, price, base_1, base_2, base_3, sql_1, sql_2, sql_3, go_cents) VALUES ")
		for i := lo; i <= hi; i++ {
			if i > lo {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "(%d, %d.%02d, %s)", i, i%100000, i%100, strings.TrimSuffix(strings.Repeat("1073741824, ", 7), ", "))
		}
		exec(sb.String())
	}
	settle := func() {
		// Fair ground for each measurement: PostgreSQL's UPDATE leaves
		// dead row versions behind, which the next pass would pay for.
		// SQLite's WAL is checkpointed likewise, or the next commit
		// pays for the previous pass's pages.
		switch db.Dialect.Name() {
		case dialect.Postgres:
			exec(`VACUUM ANALYZE bench`)
		case dialect.SQLite:
			exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		}
		var n int64
		if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM bench WHERE price >= 0`); err != nil {
			b.Fatal(err)
		}
	}
	settle()
	b.Logf("%s: seeded %d rows in %s", db.Dialect.Name(), rows, time.Since(t0).Round(time.Millisecond))

	fwd := priceMove().Forward
	expr, err := fwd.Render(db.Dialect.Name(), `"price"`)
	if err != nil {
		b.Fatal(err)
	}
	if db.Dialect.Name() == dialect.MySQL {
		expr = strings.ReplaceAll(expr, `"price"`, "`price`")
	}
	if _, err := schema.Ensure(ctx, db, services.Tables()); err != nil {
		b.Fatal(err)
	}
	reg, err := services.New(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	// Three passes of each, interleaved, each on a column of its own: the
	// machine is shared and one pass of SQLite takes a fraction of a
	// second, so medians say more than one sample.
	var sqlMoves []move.Move
	for i := 1; i <= 3; i++ {
		m := priceMove()
		m.Name, m.Table, m.New = fmt.Sprintf("bench_sql_%d", i), "bench", move.Target{Column: fmt.Sprintf("sql_%d", i)}
		sqlMoves = append(sqlMoves, m)
	}
	goMove := priceMove()
	goMove.Name, goMove.Table, goMove.New = "bench_go", "bench", move.Target{Column: "go_cents"}
	mg, err := dualwrite.New(ctx, db, append(sqlMoves, goMove), dualwrite.WithRegistry(reg))
	if err != nil {
		b.Fatal(err)
	}
	run := func(m move.Move, opts ...dualwrite.BackfillOption) dualwrite.BackfillResult {
		if _, err := mg.Advance(ctx, m.Name, move.WriteBoth); err != nil {
			b.Fatal(err)
		}
		res, err := mg.Backfill(ctx, m.Name, opts...)
		if err != nil {
			b.Fatal(err)
		}
		v, err := mg.Verify(ctx, m.Name)
		if err != nil || v.Mismatches != 0 || v.Checked != int64(rows) {
			b.Fatalf("verify %s: %+v %v", m.Name, v, err)
		}
		settle()
		return res
	}
	var singles, backfills []float64
	var batches []time.Duration
	var rs dualwrite.BackfillResult
	for i := 1; i <= 3; i++ {
		t0 := time.Now()
		exec(fmt.Sprintf(`UPDATE bench SET base_%d = `, i) + expr)
		single := time.Since(t0)
		singles = append(singles, float64(rows)/single.Seconds())
		settle()
		rs = run(sqlMoves[i-1], dualwrite.OnProgress(func(p dualwrite.Progress) {
			if !p.Finished {
				batches = append(batches, p.BatchTime)
			}
		}))
		backfills = append(backfills, rs.RowsPerS)
		b.Logf("%s pass %d: single UPDATE %s (%.0f rows/s); sql backfill %s (%.0f rows/s, %.2fx), %d batches, p99 %.1f ms, last batch size %d",
			db.Dialect.Name(), i, single.Round(time.Millisecond), singles[i-1], rs.Elapsed.Round(time.Millisecond), rs.RowsPerS, rs.RowsPerS/singles[i-1], rs.Batches, float64(rs.P99Batch.Microseconds())/1000, rs.LastBatch)
	}
	median := func(xs []float64) float64 { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
	singleRate := median(singles)
	sqlRate := median(backfills)
	slices.Sort(batches)
	p99 := batches[max(0, int(0.99*float64(len(batches))+0.5)-1)]
	rg := run(goMove, dualwrite.UseGo())
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(singleRate, "single-update-rows/s")
	b.ReportMetric(sqlRate, "sql-backfill-rows/s")
	b.ReportMetric(sqlRate/singleRate, "sql-ratio")
	b.ReportMetric(ms(p99), "sql-p99-batch-ms")
	b.ReportMetric(rg.RowsPerS, "go-backfill-rows/s")
	b.ReportMetric(rg.RowsPerS/singleRate, "go-ratio")
	b.ReportMetric(ms(rg.P99Batch), "go-p99-batch-ms")
	b.Logf("%s, %d rows: medians of 3: single UPDATE %.0f rows/s, sql backfill %.0f rows/s (%.2fx), p99 batch over %d batches %.1f ms",
		db.Dialect.Name(), rows, singleRate, sqlRate, sqlRate/singleRate, len(batches), ms(p99))
	for _, r := range []dualwrite.BackfillResult{rg} {
		b.Logf("%s, %d rows: %s backfill %s (%.0f rows/s, %.2fx), %d batches, p50 %.1f ms, p99 %.1f ms, max %.1f ms, last batch size %d",
			db.Dialect.Name(), rows, r.Mode, r.Elapsed.Round(time.Millisecond), r.RowsPerS, r.RowsPerS/singleRate, r.Batches, ms(r.P50Batch), ms(r.P99Batch), ms(r.MaxBatch), r.LastBatch)
	}
}
