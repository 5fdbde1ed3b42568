package dualwrite_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// BenchmarkUnanalysedBackfill measures, in one run on PostgreSQL, a
// backfill of TANDEM_BENCH_ROWS rows (default 1,000,000) on a table that
// was loaded and never analysed (autovacuum is off for it, so it stays
// that way) against the same backfill after ANALYZE. The planner has no
// statistics for the first: a batch query whose plan depends on them (a
// bitmap scan of every row left, then a sort) makes each batch cost what
// is left of the table. Run it once:
//
//	go test -run XXX -bench BenchmarkUnanalysedBackfill -benchtime 1x -timeout 30m ./dualwrite/
//
// Three shapes, TANDEM_BENCH_PASSES times each (default 3; the two sides
// alternate which goes first): "probe", a SQL transform over a key with
// gaps (every third value), where each batch first probes for its upper
// key; "dense", a SQL transform over consecutive keys, where batches are
// ranges of values and need no probe; and "go", a Go transform, which reads
// each batch's rows. Reported per shape: the medians of both sides in
// rows/s, unanalysed over analysed, and the median of the per-pass ratios
// (each pass runs both sides back to back, so load weighs on both alike). TANDEM_BENCH_SHAPES (a comma-separated
// list, default all three) picks shapes.
func BenchmarkUnanalysedBackfill(b *testing.B) {
	rows := benchEnv(b, "TANDEM_BENCH_ROWS", 1_000_000)
	passes := benchEnv(b, "TANDEM_BENCH_PASSES", 3)
	for range b.N {
		db := dbtest.Open(b, dialect.Postgres)
		benchUnanalysed(b, db, rows, passes)
	}
}

func benchUnanalysed(b *testing.B, db *dialect.DB, rows, passes int) {
	ctx := context.Background()
	exec := func(q string, args ...any) {
		if _, err := db.ExecContext(ctx, db.Rebind(q), args...); err != nil {
			b.Fatalf("%.80s: %v", q, err)
		}
	}
	if _, err := schema.Ensure(ctx, db, append(services.Tables(), dualwrite.Tables()...)); err != nil {
		b.Fatal(err)
	}
	reg, err := services.New(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	// run loads a fresh table (the step of the key: 1 dense, 3 with gaps),
	// analyses it or not, and backfills it.
	run := func(shape string, step int, analysed bool, i int) float64 {
		exec(`DROP TABLE IF EXISTS stats_bench`)
		exec(`CREATE TABLE stats_bench (id BIGINT PRIMARY KEY, price DECIMAL(12,2)) WITH (autovacuum_enabled = false)`)
		exec(fmt.Sprintf(`INSERT INTO stats_bench (id, price) SELECT g * %d, (g %% 100000) + (g %% 100) / 100.0 FROM generate_series(1, %d) g`, step, rows))
		m := priceMove()
		m.Name, m.Table = fmt.Sprintf("stats_%s_%v_%d", shape, analysed, i), "stats_bench"
		m.New = move.Target{Column: "cents", Type: move.ColumnType{SQL: "BIGINT"}}
		mg, err := dualwrite.New(ctx, db, []move.Move{m}, dualwrite.WithRegistry(reg))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := mg.Advance(ctx, m.Name, move.WriteBoth); err != nil {
			b.Fatal(err)
		}
		// Both sides read the whole table once first, which sets the
		// rows' hint bits (ANALYZE's sample would set them on one side
		// only): what differs is the statistics alone.
		exec(`SELECT COUNT(*) FROM stats_bench WHERE price >= 0`)
		if analysed {
			exec(`ANALYZE stats_bench`)
		}
		var never bool
		if err := db.GetContext(ctx, &never, `SELECT last_analyze IS NULL AND last_autoanalyze IS NULL FROM pg_stat_user_tables WHERE relname = 'stats_bench'`); err != nil {
			b.Fatal(err)
		}
		if never == analysed {
			b.Fatalf("stats_bench: never analysed %v, want %v", never, !analysed)
		}
		var opts []dualwrite.Option
		if shape == "go" {
			opts = append(opts, dualwrite.WithGoTransforms())
		}
		t0 := time.Now()
		res, err := mg.Backfill(ctx, m.Name, opts...)
		if err != nil {
			b.Fatal(err)
		}
		rate := float64(rows) / time.Since(t0).Seconds()
		if res.Done != int64(rows) || !res.Complete {
			b.Fatalf("backfill %s: %+v", m.Name, res)
		}
		b.Logf("%s pass %d, analysed %v: %.0f rows/s, %d batches, p50 %s, p99 %s, last batch size %d",
			shape, i, analysed, rate, res.Batches, res.P50Batch.Round(time.Microsecond), res.P99Batch.Round(time.Microsecond), res.LastBatch)
		return rate
	}
	median := func(xs []float64) float64 {
		s := slices.Clone(xs)
		slices.Sort(s)
		if len(s)%2 == 0 {
			return (s[len(s)/2-1] + s[len(s)/2]) / 2
		}
		return s[len(s)/2]
	}
	for _, sh := range []struct {
		name string
		step int
	}{{"probe", 3}, {"dense", 1}, {"go", 1}} {
		if only := os.Getenv("TANDEM_BENCH_SHAPES"); only != "" && !slices.Contains(strings.Split(only, ","), sh.name) {
			continue
		}
		var cold, warm, ratios []float64
		for i := 1; i <= passes; i++ {
			var c, w float64
			if i%2 == 1 {
				c = run(sh.name, sh.step, false, i)
				w = run(sh.name, sh.step, true, i)
			} else {
				w = run(sh.name, sh.step, true, i)
				c = run(sh.name, sh.step, false, i)
			}
			cold, warm, ratios = append(cold, c), append(warm, w), append(ratios, c/w)
		}
		c, w := median(cold), median(warm)
		b.ReportMetric(c, sh.name+"-unanalysed-rows/s")
		b.ReportMetric(w, sh.name+"-analysed-rows/s")
		b.ReportMetric(c/w, sh.name+"-ratio")
		b.ReportMetric(median(ratios), sh.name+"-ratio-median-of-passes")
		b.Logf("%s, %d rows, medians of %d: never analysed %.0f rows/s, analysed %.0f rows/s: %.2fx (per-pass ratios' median %.2fx)", sh.name, rows, passes, c, w, c/w, median(ratios))
	}
}
