package triggers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/dialect"
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

const (
	benchBatch   = 100   // rows per INSERT or UPDATE statement
	benchTxRows  = 1000  // rows per transaction
	benchPrefill = 20000 // rows the update benchmark cycles over
)

// BenchmarkTriggers measures bulk insert and update cost per row, per engine
// in the same run, with no trigger, with the minimal one-way trigger and with
// the generated two-way triggers, and reports the ratios. One op is one row
// written to each of the three tables; writers set only old, so every
// trigger has to derive new.
func BenchmarkTriggers(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e.Name), func(b *testing.B) {
			db := dbtest.Open(b, e.Name)
			d := e.Name
			ctx := context.Background()
			variants := []string{"none", "minimal", "generated"}
			for _, v := range variants {
				for _, op := range []string{"ins", "upd"} {
					table := "bench_" + v + "_" + op
					db.MustExec(`CREATE TABLE ` + table + ` (id INTEGER PRIMARY KEY, price_cents INTEGER NULL, price_mills INTEGER NULL)`)
					if op == "upd" {
						prefill(b, db, table)
					}
					switch v {
					case "minimal":
						for _, s := range minimalTrigger(d, table) {
							s = strings.NewReplacer("min_", "min_"+op+"_").Replace(s)
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
			for _, op := range []string{"insert", "update"} {
				b.Run(op, func(b *testing.B) {
					tables := make([]string, len(variants))
					for i, v := range variants {
						tables[i] = "bench_" + v + "_" + op[:3]
					}
					spent := interleave(b, db, op, tables)
					for i, v := range variants {
						b.ReportMetric(float64(spent[i].Nanoseconds())/float64(b.N), v+"-ns/row")
						if v != "none" {
							var bad int
							if err := db.GetContext(ctx, &bad, `SELECT COUNT(*) FROM `+tables[i]+` WHERE price_mills IS NULL OR price_mills <> price_cents * 10`); err != nil || bad != 0 {
								b.Fatalf("%s: %d rows out of sync (%v)", tables[i], bad, err)
							}
						}
					}
					b.ReportMetric(float64(spent[1])/float64(spent[0]), "minimal/none")
					b.ReportMetric(float64(spent[2])/float64(spent[0]), "generated/none")
					b.ReportMetric(float64(spent[2])/float64(spent[1]), "generated/minimal")
				})
			}
		})
	}
}

// interleave writes b.N rows to each table, one transaction of benchTxRows
// rows at a time, taking the tables in turn (and in a rotating order), so
// that all three see the same load on a shared machine; it returns the time
// spent on each.
func interleave(b *testing.B, db *dialect.DB, op string, tables []string) []time.Duration {
	ctx := context.Background()
	spent := make([]time.Duration, len(tables))
	b.ResetTimer()
	for done, round := 0, 0; done < b.N; round++ {
		n := min(benchTxRows, b.N-done)
		for k := range tables {
			i := (k + round) % len(tables)
			start := time.Now()
			tx, err := db.BeginTxx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			for inTx := 0; inTx < n; inTx += benchBatch {
				var q string
				if op == "insert" {
					q = insertBatch(tables[i], min(benchBatch, n-inTx))
				} else {
					q = updateBatch(tables[i], min(benchBatch, n-inTx))
				}
				if _, err := tx.ExecContext(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			spent[i] += time.Since(start)
		}
		done += n
	}
	return spent
}

// nextID keeps insert keys unique across the benchmark's repeated runs.
var nextID = map[string]int{}

func insertBatch(table string, n int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + table + " (id, price_cents) VALUES ")
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		id := nextID[table]
		nextID[table]++
		fmt.Fprintf(&sb, "(%d, %d)", id, id%1000)
	}
	return sb.String()
}

var nextUpdate = map[string]int{}

func updateBatch(table string, n int) string {
	from := nextUpdate[table] % benchPrefill
	if from+n > benchPrefill {
		from = 0
	}
	nextUpdate[table] = from + n
	return fmt.Sprintf("UPDATE %s SET price_cents = price_cents + 1 WHERE id >= %d AND id < %d", table, from, from+n)
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
