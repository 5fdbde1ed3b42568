package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

const testPlan = `version: 1
moves:
  - name: price_cents
    table: products
    key: [id]
    old: price
    new: {column: price_cents, type: BIGINT}
    forward:
      sql: "CAST(ROUND({value} * 100) AS BIGINT)"
      dialects:
        mysql: "CAST(ROUND({value} * 100) AS SIGNED)"
        sqlite: "CAST(ROUND({value} * 100) AS INTEGER)"
    backward: {sql: "{value} / 100.0"}
`

// productsFixture gives a test its own database on engine with the
// products table testPlan moves, and the plan in a file: the start of
// every CLI test that walks that move.
func productsFixture(t *testing.T, engine dialect.Name) (dsn, plan string, db *dialect.DB) {
	t.Helper()
	dsn = dbtest.DSN(t, engine)
	plan = filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(plan, []byte(testPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := dialect.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.MustExec(`CREATE TABLE products (id BIGINT PRIMARY KEY, price DECIMAL(12,2))`)
	return dsn, plan, db
}

func TestMovesCommands(t *testing.T) {
	plan := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(plan, []byte(testPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	// Without a database: the SQL for migration files.
	out, errOut, code := tandem(t, "moves", "--plan", plan, "sql", "price_cents", "--phase", "write-both", "--dialect", "postgres")
	if code != exitOK || !strings.Contains(out, `ALTER TABLE "products" ADD COLUMN "price_cents" BIGINT;`) {
		t.Fatalf("moves sql: %d %s %s", code, out, errOut)
	}
	if _, _, code := tandem(t, "moves", "--plan", plan, "sql", "nope", "--phase", "write-both", "--dialect", "mysql"); code != exitBadInput {
		t.Fatalf("sql of an unknown move: exit %d", code)
	}
	if _, _, code := tandem(t, "moves", "--plan", plan, "sql", "price_cents", "--phase", "sideways", "--dialect", "mysql"); code != exitBadInput {
		t.Fatalf("sql with a bad phase: exit %d", code)
	}
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn := dbtest.DSN(t, e.Name)
			ctx := context.Background()
			db, err := dialect.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.MustExec(`CREATE TABLE products (id BIGINT PRIMARY KEY, price DECIMAL(12,2))`)
			db.MustExec(`INSERT INTO products (id, price) VALUES (1, 1.50), (2, 2.25), (3, 3.00)`)
			if _, _, code := tandem(t, "--db", dsn, "schema", "ensure"); code != exitOK {
				t.Fatal("schema ensure failed")
			}
			mv := func(args ...string) (string, string, int) {
				return tandem(t, append([]string{"--db", dsn, "moves", "--plan", plan}, args...)...)
			}
			out, errOut, code := mv("advance", "price_cents", "--dry-run")
			if code != exitOK || !strings.Contains(out, "Would advance move price_cents from legacy to write-both") || !strings.Contains(out, "ADD COLUMN") {
				t.Fatalf("dry run: %d %s %s", code, out, errOut)
			}
			if _, _, code := mv("advance", "price_cents", "--to", "read-new"); code != exitBadInput {
				t.Fatalf("skipping a phase: exit %d", code)
			}
			if _, errOut, code := mv("advance", "nope"); code != exitBadInput {
				t.Fatalf("unknown move: exit %d %s", code, errOut)
			}
			if out, errOut, code = mv("advance", "price_cents"); code != exitOK {
				t.Fatalf("advance: %d %s %s", code, out, errOut)
			}
			reg, err := services.New(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.Register(ctx, services.Instance{ID: "web-1", Service: "shop", Release: 7}); err != nil {
				t.Fatal(err)
			}
			out, _, code = mv("backfill", "price_cents")
			if code != exitBlocked || !strings.Contains(out, "web-1") {
				t.Fatalf("backfill with web-1 on legacy: %d %s", code, out)
			}
			if err := reg.Heartbeat(ctx, "web-1", services.Heartbeat{Phases: map[string]string{"price_cents": "write-both"}}); err != nil {
				t.Fatal(err)
			}
			out, errOut, code = tandem(t, "--db", dsn, "--json", "moves", "--plan", plan, "backfill", "price_cents")
			if code != exitOK {
				t.Fatalf("backfill: %d %s %s", code, out, errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			var ev struct {
				Done     int64 `json:"done"`
				Finished bool  `json:"finished"`
			}
			if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil || ev.Done == 0 {
				t.Fatalf("progress event %q: %v", lines[0], err)
			}
			// Status: the move is there and names the next step; the
			// verify is missing: someone must run it (exit 5).
			t.Setenv("TANDEM_PLAN", plan)
			out, _, code = tandem(t, "--db", dsn, "status")
			if code != exitAttention || !strings.Contains(out, "price_cents: products.price -> products.price_cents") || !strings.Contains(out, "[verify]") {
				t.Fatalf("status: %d %s", code, out)
			}
			if out, _, code = mv("verify", "price_cents"); code != exitOK || !strings.Contains(out, "3 rows checked, 0 mismatch(es)") {
				t.Fatalf("verify: %d %s", code, out)
			}
			if out, _, code = mv("advance", "price_cents"); code != exitOK || !strings.Contains(out, "Advanced move price_cents from write-both to read-new") {
				t.Fatalf("advance to read-new: %d %s", code, out)
			}
			out, _, code = tandem(t, "--db", dsn, "--json", "status")
			var rep struct {
				Moves []struct {
					Phase string `json:"phase"`
				} `json:"moves"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Moves) != 1 || rep.Moves[0].Phase != "read-new" {
				t.Fatalf("status --json (%d): %v\n%s", code, err, out)
			}
			// Finalize needs write-new: advance first (exit 5).
			if out, _, code = mv("finalize", "price_cents"); code != exitAttention || !strings.Contains(out, "finalize needs the move at write-new") {
				t.Fatalf("finalize at read-new: %d %s", code, out)
			}
		})
	}
}
