package triggers_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/triggers"
)

const (
	createWriters = 8   // concurrent writers
	createRows    = 250 // rows each writer creates, one transaction each
)

// createMove moves a product's price to a table of its own, with the
// cross-table triggers that fill it for writers that know only the old
// column.
var createMove = move.Move{
	Name: "product_price", Table: "products", Key: []string{"id"}, Old: "price",
	New:     move.Target{Table: "product_prices", Key: []string{"product_id"}, Column: "price_cents"},
	Forward: move.Transform{SQL: "{value} * 100"},
	Backward: move.Transform{SQL: "{value} / 100",
		Dialects: map[dialect.Name]string{dialect.MySQL: "{value} DIV 100"}},
	Triggers: true,
}

// BenchmarkConcurrentCreates has createWriters writers create rows of the
// source table at once, each row in a transaction of its own, with neighbour
// keys (writer w creates w, w+8, w+16...), and reports how many of the
// transactions the engine refused as conflicts (dialect.IsRetryable),
// without retrying them: deadlocks/op and conflicts/op count them per run
// of 2,000 creates. "plain" has no trigger; "triggers" has the move's
// generated cross-table triggers, so every create also writes the new
// table. The "update" runs change the old column of 2,000 rows created
// before the triggers were installed, as old writers do before the
// backfill, so each update creates the row of the new table; on MySQL,
// "triggers-update-read-committed" runs them at READ COMMITTED, which takes
// no gap locks.
//
//	go test ./triggers -run '^$' -bench BenchmarkConcurrentCreates -benchtime 5x
func BenchmarkConcurrentCreates(b *testing.B) {
	for _, e := range dbtest.Engines {
		for _, v := range []struct {
			name             string
			triggers, update bool
			readCommitted    bool
		}{{"plain", false, false, false}, {"triggers", true, false, false}, {"plain-update", false, true, false}, {"triggers-update", true, true, false},
			{"triggers-update-read-committed", true, true, true}} {
			if v.readCommitted && e.Name != dialect.MySQL {
				continue // the gap locks it avoids are InnoDB's
			}
			withTriggers := v.triggers
			b.Run(string(e.Name)+"/"+v.name, func(b *testing.B) {
				db := dbtest.Open(b, e.Name)
				ctx := context.Background()
				for _, s := range []string{
					`CREATE TABLE products (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, price BIGINT)`,
					`CREATE TABLE product_prices (product_id BIGINT NOT NULL PRIMARY KEY, price_cents BIGINT, FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE CASCADE)`,
				} {
					if _, err := db.ExecContext(ctx, s); err != nil {
						b.Fatalf("%s: %v", s, err)
					}
				}
				if v.update {
					for id := 1; id <= createWriters*createRows; id++ {
						if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO products (id, name, price) VALUES (?, ?, ?)`), id, fmt.Sprint("product ", id), id%1000); err != nil {
							b.Fatal(err)
						}
					}
				}
				if withTriggers {
					set, err := triggers.ForMove(e.Name, createMove)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := triggers.Install(ctx, db, set); err != nil {
						b.Fatal(err)
					}
				}
				stmt := db.Rebind(`INSERT INTO products (id, name, price) VALUES (?, ?, ?)`)
				if v.update {
					stmt = db.Rebind(`UPDATE products SET name = ?, price = ? WHERE id = ?`)
				}
				var deadlocks, conflicts, created int
				b.ResetTimer()
				for run := range b.N {
					var mu sync.Mutex
					var wg sync.WaitGroup
					var failed error
					base := run * createWriters * createRows
					if v.update {
						base = 0
					}
					for w := range createWriters {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := range createRows {
								id := base + i*createWriters + w + 1
								var opts *sql.TxOptions
								if v.readCommitted {
									opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
								}
								tx, err := db.BeginTxx(ctx, opts)
								if err != nil {
									b.Error(err)
									return
								}
								err = dialect.InTx(ctx, tx, func(q dialect.Querier) error {
									if v.update {
										_, err := q.ExecContext(ctx, stmt, fmt.Sprint("product ", id), run+id%1000+1, id)
										return err
									}
									_, err := q.ExecContext(ctx, stmt, id, fmt.Sprint("product ", id), id%1000)
									return err
								})
								if err == nil {
									err = tx.Commit()
								} else {
									_ = tx.Rollback()
								}
								mu.Lock()
								switch {
								case err == nil:
									created++
								case dialect.IsRetryable(err):
									conflicts++
									if dialect.Classify(err) == dialect.Deadlock {
										deadlocks++
									}
								case failed == nil:
									failed = err
								}
								mu.Unlock()
							}
						}()
					}
					wg.Wait()
					if failed != nil {
						b.Fatal(failed)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(deadlocks)/float64(b.N), "deadlocks/op")
				b.ReportMetric(float64(conflicts)/float64(b.N), "conflicts/op")
				if withTriggers && !v.update {
					var n int
					if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM product_prices`); err != nil || n != created {
						b.Fatalf("%d rows in the new table for %d created (%v)", n, created, err)
					}
				}
			})
		}
	}
}
