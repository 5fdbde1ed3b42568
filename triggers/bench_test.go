package triggers_test

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/triggers"
)

// minimalTrigger is the floor the generated triggers are measured against:
// hand-written, one way only, new := forward(old) when new is missing on
// insert or when old changed on update. Nothing cheaper keeps new filled.
func minimalTrigger(d dialect.Name, table string) []string {
	switch d {
	case dialect.SQLite:
		return []string{
			`CREATE TRIGGER min_ai AFTER INSERT ON ` + table + ` WHEN NEW.price_mills IS NULL BEGIN UPDATE ` + table + ` SET price_mills = NEW.price_cents * 10 WHERE id = NEW.id; END`,
			`CREATE TRIGGER min_au AFTER UPDATE OF price_cents ON ` + table + ` WHEN NEW.price_cents IS NOT OLD.price_cents BEGIN UPDATE ` + table + ` SET price_mills = NEW.price_cents * 10 WHERE id = NEW.id; END`,
		}
	case dialect.Postgres:
		return []string{
			`CREATE FUNCTION min_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.price_mills IS NULL THEN NEW.price_mills := NEW.price_cents * 10; END IF;
  ELSIF NEW.price_cents IS DISTINCT FROM OLD.price_cents THEN
    NEW.price_mills := NEW.price_cents * 10;
  END IF;
  RETURN NEW;
END $$`,
			`CREATE TRIGGER min_t BEFORE INSERT OR UPDATE ON ` + table + ` FOR EACH ROW EXECUTE FUNCTION min_fn()`,
		}
	case dialect.MySQL:
		return []string{
			`CREATE TRIGGER min_bi BEFORE INSERT ON ` + table + ` FOR EACH ROW BEGIN IF NEW.price_mills IS NULL THEN SET NEW.price_mills = NEW.price_cents * 10; END IF; END`,
			`CREATE TRIGGER min_bu BEFORE UPDATE ON ` + table + ` FOR EACH ROW BEGIN IF NOT (NEW.price_cents <=> OLD.price_cents) THEN SET NEW.price_mills = NEW.price_cents * 10; END IF; END`,
		}
	}
	return nil
}

// watchTrigger is added to the minimal trigger to make the "floor" variant
// on SQLite: the least any two-way design pays there. A writer of new only
// must be seen, so some trigger watches new; SQLite cannot assign NEW, so the
// minimal trigger fills new with an UPDATE, which fires that watcher, and the
// watcher can tell the fill from a writer's change only by its value
// (new = forward(old)). This one does nothing else (it would not keep a pair
// consistent on its own: no insert of new only, no writer of both).
func watchTrigger(table string) string {
	return `CREATE TRIGGER min_watch AFTER UPDATE OF price_mills ON ` + table + ` WHEN NEW.price_mills IS NOT NEW.price_cents * 10 BEGIN UPDATE ` + table + ` SET price_cents = NEW.price_mills / 10 WHERE id = NEW.id; END`
}

const (
	benchBatch   = 100   // rows per INSERT or UPDATE statement
	benchTxRows  = 1000  // rows per transaction
	benchPrefill = 20000 // rows the update benchmark cycles over
)

// BenchmarkTriggers measures bulk insert and update cost per row, per engine
// in the same run, with no trigger, with the minimal one-way trigger and with
// the generated two-way triggers, and reports the ratios. On SQLite a fourth
// table carries the floor (watchTrigger). One op is one row written to each
// table; writers set only old, so every trigger has to derive new.
//
// The plain operations send each 100-row statement as SQL text, so the
// engine compiles every statement, triggers included; the "-prepared" ones
// prepare the statement once and bind the rows, as a bulk loader does,
// which leaves the cost of running the triggers alone.
func BenchmarkTriggers(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e.Name), func(b *testing.B) {
			db := dbtest.Open(b, e.Name)
			d := e.Name
			ctx := context.Background()
			variants := []string{"none", "minimal", "generated"}
			if d == dialect.SQLite {
				variants = append(variants, "floor")
			}
			for _, v := range variants {
				for _, op := range []string{"ins", "upd"} {
					table := "bench_" + v + "_" + op
					db.MustExec(`CREATE TABLE ` + table + ` (id INTEGER PRIMARY KEY, price_cents INTEGER NULL, price_mills INTEGER NULL)`)
					if op == "upd" {
						prefill(b, db, table)
					}
					switch v {
					case "minimal", "floor":
						stmts := minimalTrigger(d, table)
						if v == "floor" {
							stmts = append(stmts, watchTrigger(table))
						}
						for _, s := range stmts {
							s = strings.NewReplacer("min_", v+"_"+op+"_").Replace(s)
							db.MustExec(s)
						}
					case "generated":
						m := move.Move{
							Name: table, Table: table, Key: []string{"id"},
							Old: "price_cents", New: move.Target{Column: "price_mills"},
							Forward:  toMills,
							Backward: fromMills,
							Triggers: true,
						}
						set, err := triggers.ForMove(d, m)
						if err != nil {
							b.Fatal(err)
						}
						if _, err := triggers.Install(ctx, db, set); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			for _, op := range []string{"insert", "update", "insert-prepared", "update-prepared"} {
				b.Run(op, func(b *testing.B) {
					tables := make([]string, len(variants))
					for i, v := range variants {
						tables[i] = "bench_" + v + "_" + op[:3]
					}
					rounds := interleave(b, db, op, tables)
					for i, v := range variants {
						b.ReportMetric(medianOf(rounds, func(r round) float64 { return float64(r.spent[i].Nanoseconds()) / float64(r.rows) }), v+"-ns/row")
						if v != "none" {
							var bad int
							if err := db.GetContext(ctx, &bad, `SELECT COUNT(*) FROM `+tables[i]+` WHERE price_mills IS NULL OR price_mills <> price_cents * 10`); err != nil || bad != 0 {
								b.Fatalf("%s: %d rows out of sync (%v)", tables[i], bad, err)
							}
						}
					}
					ratio := func(a, c int) float64 {
						return medianOf(rounds, func(r round) float64 { return float64(r.spent[a]) / float64(r.spent[c]) })
					}
					b.ReportMetric(ratio(1, 0), "minimal/none")
					b.ReportMetric(ratio(2, 0), "generated/none")
					b.ReportMetric(ratio(2, 1), "generated/minimal")
					if len(variants) > 3 {
						b.ReportMetric(ratio(3, 1), "floor/minimal")
					}
				})
			}
		})
	}
}

// round is one transaction of rows written to each table in turn.
type round struct {
	rows  int
	spent []time.Duration // per table
}

// medianOf returns the median of f over the rounds. Each round writes every
// table back to back, so a ratio taken within a round compares them under
// the same load, and the median leaves out the rounds that a burst of
// activity elsewhere on a shared machine slowed down.
func medianOf(rounds []round, f func(round) float64) float64 {
	xs := make([]float64, len(rounds))
	for i, r := range rounds {
		xs[i] = f(r)
	}
	sort.Float64s(xs)
	if n := len(xs); n%2 == 0 {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[len(xs)/2]
}

// interleave writes b.N rows to each table, one transaction of benchTxRows
// rows at a time, taking the tables in turn (and in a rotating order), so
// that all of them see the same load on a shared machine; it returns the time
// each round spent on each table.
func interleave(b *testing.B, db *dialect.DB, op string, tables []string) []round {
	ctx := context.Background()
	var rounds []round
	prepared := strings.HasSuffix(op, "-prepared")
	// Statements prepared on the pool: a transaction reuses the one already
	// prepared on its connection.
	stmts := map[string]*sql.Stmt{}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	b.ResetTimer()
	for done, r := 0, 0; done < b.N; r++ {
		n := min(benchTxRows, b.N-done)
		spent := make([]time.Duration, len(tables))
		for k := range tables {
			i := (k + r) % len(tables)
			start := time.Now()
			tx, err := db.BeginTxx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			for inTx := 0; inTx < n; inTx += benchBatch {
				rows := min(benchBatch, n-inTx)
				var q string
				var args []any
				if strings.HasPrefix(op, "insert") {
					q, args = insertBatch(tables[i], rows, prepared)
				} else {
					q, args = updateBatch(tables[i], rows, prepared)
				}
				if prepared {
					st, ok := stmts[q]
					if !ok {
						if st, err = db.PrepareContext(ctx, db.Rebind(q)); err != nil {
							b.Fatal(err)
						}
						stmts[q] = st
					}
					_, err = tx.StmtContext(ctx, st).ExecContext(ctx, args...)
				} else {
					_, err = tx.ExecContext(ctx, q)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			spent[i] = time.Since(start)
		}
		rounds = append(rounds, round{rows: n, spent: spent})
		done += n
	}
	return rounds
}

// nextID keeps insert keys unique across the benchmark's repeated runs.
var nextID = map[string]int{}

// insertBatch returns an n-row INSERT of old only: the values in the SQL
// text, or, when bind is set, as placeholders and their arguments.
func insertBatch(table string, n int, bind bool) (string, []any) {
	var sb strings.Builder
	var args []any
	sb.WriteString("INSERT INTO " + table + " (id, price_cents) VALUES ")
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		id := nextID[table]
		nextID[table]++
		if bind {
			sb.WriteString("(?, ?)")
			args = append(args, id, id%1000)
		} else {
			fmt.Fprintf(&sb, "(%d, %d)", id, id%1000)
		}
	}
	return sb.String(), args
}

var nextUpdate = map[string]int{}

// updateBatch returns an UPDATE of old in n consecutive rows, cycling over
// the prefilled ones.
func updateBatch(table string, n int, bind bool) (string, []any) {
	from := nextUpdate[table] % benchPrefill
	if from+n > benchPrefill {
		from = 0
	}
	nextUpdate[table] = from + n
	if bind {
		return "UPDATE " + table + " SET price_cents = price_cents + 1 WHERE id >= ? AND id < ?", []any{from, from + n}
	}
	return fmt.Sprintf("UPDATE %s SET price_cents = price_cents + 1 WHERE id >= %d AND id < %d", table, from, from+n), nil
}

func prefill(b *testing.B, db *dialect.DB, table string) {
	tx := db.MustBegin()
	for start := 0; start < benchPrefill; start += benchBatch {
		var sb strings.Builder
		sb.WriteString("INSERT INTO " + table + " (id, price_cents, price_mills) VALUES ")
		for i := start; i < start+benchBatch; i++ {
			if i > start {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "(%d, %d, %d)", i, i%1000, (i%1000)*10)
		}
		tx.MustExec(sb.String())
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
