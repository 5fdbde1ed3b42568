package dualwrite_test

import (
	"context"
	"fmt"
	"os"
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
	exec(`CREATE TABLE bench (id BIGINT PRIMARY KEY, price DECIMAL(12,2), baseline_cents BIGINT, sql_cents BIGINT, go_cents BIGINT)`)
	t0 := time.Now()
	const chunk = 1000
	for lo := 1; lo <= rows; lo += chunk {
		hi := min(rows, lo+chunk-1)
		var sb strings.Builder
		sb.WriteString("INSERT INTO bench (id, price) VALUES ")
		for i := lo; i <= hi; i++ {
			if i > lo {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "(%d, %d.%02d)", i, i%100000, i%100)
		}
		exec(sb.String())
	}
	settle := func() {
		// Fair ground for each measurement: PostgreSQL's UPDATE leaves
		// dead row versions behind, which the next pass would pay for.
		if db.Dialect.Name() == dialect.Postgres {
			exec(`VACUUM ANALYZE bench`)
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
	t0 = time.Now()
	exec(`UPDATE bench SET baseline_cents = ` + expr)
	single := time.Since(t0)
	singleRate := float64(rows) / single.Seconds()
	settle()

	if _, err := schema.Ensure(ctx, db, services.Tables()); err != nil {
		b.Fatal(err)
	}
	reg, err := services.New(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	sqlMove := priceMove()
	sqlMove.Name, sqlMove.Table, sqlMove.New = "bench_sql", "bench", move.Target{Column: "sql_cents"}
	goMove := sqlMove
	goMove.Name, goMove.New = "bench_go", move.Target{Column: "go_cents"}
	mg, err := dualwrite.New(ctx, db, []move.Move{sqlMove, goMove}, dualwrite.WithRegistry(reg))
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
	rs := run(sqlMove)
	rg := run(goMove, dualwrite.UseGo())
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(singleRate, "single-update-rows/s")
	b.ReportMetric(rs.RowsPerS, "sql-backfill-rows/s")
	b.ReportMetric(rs.RowsPerS/singleRate, "sql-ratio")
	b.ReportMetric(ms(rs.P99Batch), "sql-p99-batch-ms")
	b.ReportMetric(rg.RowsPerS, "go-backfill-rows/s")
	b.ReportMetric(rg.RowsPerS/singleRate, "go-ratio")
	b.ReportMetric(ms(rg.P99Batch), "go-p99-batch-ms")
	b.Logf("%s, %d rows: single UPDATE %s (%.0f rows/s)", db.Dialect.Name(), rows, single.Round(time.Millisecond), singleRate)
	for _, r := range []dualwrite.BackfillResult{rs, rg} {
		b.Logf("%s, %d rows: %s backfill %s (%.0f rows/s, %.2fx), %d batches, p50 %.1f ms, p99 %.1f ms, max %.1f ms, last batch size %d",
			db.Dialect.Name(), rows, r.Mode, r.Elapsed.Round(time.Millisecond), r.RowsPerS, r.RowsPerS/singleRate, r.Batches, ms(r.P50Batch), ms(r.P99Batch), ms(r.MaxBatch), r.LastBatch)
	}
}
