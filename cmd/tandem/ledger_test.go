package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// ledgerPlan declares three moves of one table; the test carries them to
// different phases. %s is replaced to make a drifted copy.
const ledgerPlan = `version: 1
moves:
  - name: cents_legacy
    table: products
    key: [id]
    old: price
    new: {column: cents_a, type: BIGINT}
    forward:
      sql: "CAST(ROUND({value} * 100) AS BIGINT)"
      dialects: {mysql: "CAST(ROUND({value} * 100) AS SIGNED)", sqlite: "CAST(ROUND({value} * 100) AS INTEGER)"}
    backward: {sql: "{value} / 100.0"}
  - name: cents_wb
    table: products
    key: [id]
    old: price
    new: {column: cents_b, type: BIGINT}
    forward:
      sql: "CAST(ROUND({value} * 100) AS BIGINT)"
      dialects: {mysql: "CAST(ROUND({value} * 100) AS SIGNED)", sqlite: "CAST(ROUND({value} * 100) AS INTEGER)"}
    backward: {sql: "{value} / 100.0"}
    releases: {write_both: 2, read_new: 3, write_new: 4, contracted: 5}
  - name: label_done
    table: products
    key: [id]
    old: label
    new: {column: label2, type: "VARCHAR(40)"}
    triggers: true
  - name: label_wb
    table: products
    key: [id]
    old: note
    new: {column: label3, type: "VARCHAR(40)"}
    triggers: true
`

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ledgerDB makes a database with the products table and tandem's tables.
func ledgerDB(t *testing.T, e dbtest.Engine) (string, *dialect.DB) {
	t.Helper()
	dsn := dbtest.DSN(t, e.Name)
	db, err := dialect.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.MustExec(`CREATE TABLE products (id BIGINT PRIMARY KEY, price DECIMAL(12,2), label VARCHAR(40), note VARCHAR(40))`)
	db.MustExec(`INSERT INTO products (id, price, label, note) VALUES (1, 1.50, 'a', 'x'), (2, 2.25, 'b', 'y'), (3, 3.00, 'c', 'z')`)
	if _, _, code := tandem(t, "--db", dsn, "schema", "ensure"); code != exitOK {
		t.Fatal("schema ensure failed")
	}
	return dsn, db
}

func must(t *testing.T, want int, args ...string) string {
	t.Helper()
	out, errOut, code := tandem(t, args...)
	if code != want {
		t.Fatalf("tandem %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out + errOut
}

// TestStatusFromTheLedger carries three moves to legacy, write-both and
// contracted with a plan, then asks every read command without it: the
// ledger alone tells the truth, and none of them writes a byte.
func TestStatusFromTheLedger(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	plan := writeFile(t, "plan.yaml", ledgerPlan)
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn, db := ledgerDB(t, e)
			withPlan := func(want int, args ...string) string {
				return must(t, want, append([]string{"--db", dsn, "--plan", plan}, args...)...)
			}
			before := dbtest.Dump(t, db)
			if out := withPlan(exitOK, "moves", "apply", "--dry-run"); strings.Count(out, "Would record move") != 4 {
				t.Fatalf("apply --dry-run: %s", out)
			}
			if after := dbtest.Dump(t, db); after != before {
				t.Fatalf("apply --dry-run changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			out := withPlan(exitOK, "moves", "apply")
			for _, m := range []string{"cents_legacy", "cents_wb", "label_done", "label_wb"} {
				if !strings.Contains(out, "Recorded move "+m) {
					t.Fatalf("apply: %s", out)
				}
			}
			if out := withPlan(exitOK, "moves", "apply"); strings.Count(out, "is as recorded") != 4 {
				t.Fatalf("second apply: %s", out)
			}
			withPlan(exitOK, "moves", "advance", "cents_wb")
			withPlan(exitOK, "moves", "advance", "label_wb")
			for _, to := range []string{"write-both", "read-new", "write-new"} {
				withPlan(exitOK, "moves", "advance", "label_done", "--to", to)
				if to == "write-both" {
					withPlan(exitOK, "moves", "backfill", "label_done")
					withPlan(exitOK, "moves", "verify", "label_done")
				}
			}
			withPlan(exitOK, "moves", "finalize", "label_done", "--yes")
			withPlan(exitOK, "moves", "advance", "label_done", "--to", "contracted", "--yes")
			reg, err := services.New(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.Register(context.Background(), services.Instance{ID: "web-1", Service: "shop", Release: 2,
				Phases: map[string]string{"cents_wb": "write-both", "label_done": "contracted", "label_wb": "write-both"}}); err != nil {
				t.Fatal(err)
			}

			// From here on, no plan: the ledger alone.
			noPlan := func(want int, args ...string) string {
				return must(t, want, append([]string{"--db", dsn}, args...)...)
			}
			// Backfill and verify of a move with SQL transforms need no plan.
			noPlan(exitOK, "moves", "backfill", "label_wb")
			if out := noPlan(exitOK, "moves", "verify", "label_wb"); !strings.Contains(out, "3 rows checked, 0 mismatch(es)") {
				t.Fatalf("verify from the ledger: %s", out)
			}
			out, _, _ = tandem(t, "--db", dsn, "--json", "status") // stdout only: stderr has the error object
			var rep struct {
				Moves []struct {
					Name  string     `json:"name"`
					Phase move.Phase `json:"phase"`
				} `json:"moves"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("status --json: %v\n%s", err, out)
			}
			got := map[string]move.Phase{}
			for _, m := range rep.Moves {
				got[m.Name] = m.Phase
			}
			want := map[string]move.Phase{"cents_legacy": move.Legacy, "cents_wb": move.WriteBoth, "label_done": move.Contracted, "label_wb": move.WriteBoth}
			if len(got) != len(want) {
				t.Fatalf("status sees moves %v, want %v", got, want)
			}
			for n, p := range want {
				if got[n] != p {
					t.Fatalf("status: %s at %s, want %s", n, got[n], p)
				}
			}
			out = noPlan(exitAttention, "status")
			if !strings.Contains(out, "cents_wb: products.price -> products.cents_b") || !strings.Contains(out, "backfill") || strings.Contains(out, "Nothing blocks") ||
				strings.Count(out, "definition: version 1, digest") != 4 {
				t.Fatalf("status text: %s", out)
			}
			if out = noPlan(exitOK, "moves", "sql", "cents_wb", "--phase", "contracted", "--dialect", "postgres"); !strings.Contains(out, `DROP COLUMN "price"`) {
				t.Fatalf("moves sql from the ledger: %s", out)
			}
			if out = noPlan(exitOK, "moves", "show", "label_done"); !strings.Contains(out, "name: label_done") || !strings.Contains(out, "triggers: true") {
				t.Fatalf("moves show: %s", out)
			}
			// What show prints is a plan that matches the ledger.
			shown := writeFile(t, "shown.yaml", noPlan(exitOK, "moves", "show"))
			must(t, exitOK, "--db", dsn, "--plan", shown, "moves", "apply")

			// Every read command leaves the database as it found it.
			reads := [][]string{
				{"status"}, {"--json", "status"},
				{"moves", "list"}, {"--json", "moves", "list"},
				{"moves", "show"}, {"--json", "moves", "show"},
				{"moves", "sql", "cents_legacy", "--phase", "write-both", "--dialect", string(e.Name)},
				{"moves", "advance", "cents_legacy", "--dry-run"},
				{"moves", "advance", "cents_wb", "--dry-run"},
				{"--plan", plan, "moves", "advance", "cents_legacy", "--dry-run"},
				{"--plan", plan, "status"},
				{"triggers", "sql", "label_done"},
				{"triggers", "check", "label_done"}, {"triggers", "check", "label_wb"}, {"triggers", "sql", "label_wb", "--drop"},
				{"triggers", "install", "label_wb", "--dry-run"},
				{"moves", "advance", "label_wb", "--dry-run"},
				{"triggers", "drop", "label_done", "--dry-run"},
				{"services", "list"}, {"services", "list", "--all"}, {"services", "floor"}, {"services", "cluster"},
				{"schema", "ensure", "--dry-run"},
				{"path"}, {"--json", "path"}, {"path", "--to", "3"}, {"--json", "path", "--to", "3"},
				{"--plan", plan, "path"}, {"--plan", plan, "path", "--to", "2"},
			}
			for _, args := range reads {
				before := dbtest.Dump(t, db)
				out, errOut, code := tandem(t, append([]string{"--db", dsn}, args...)...)
				if code == exitFailed || code == exitBadInput || code == exitUnreachable {
					t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
				}
				if after := dbtest.Dump(t, db); after != before {
					t.Fatalf("%v changed the database:\nbefore:\n%s\nafter:\n%s", args, before, after)
				}
			}
		})
	}
}

// TestReadsOnANewLedger runs the read commands with a plan on a database
// whose ledger tables do not exist yet: moves read as legacy, and nothing
// is created.
func TestReadsOnANewLedger(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	plan := writeFile(t, "plan.yaml", ledgerPlan)
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			ctx := context.Background()
			dsn := dbtest.DSN(t, e.Name)
			db, err := dialect.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.MustExec(`CREATE TABLE products (id BIGINT PRIMARY KEY, price DECIMAL(12,2), label VARCHAR(40), note VARCHAR(40))`)
			if _, err := schema.Ensure(ctx, db, append(services.Tables(), dualwrite.Tables()...)); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				{"status"}, {"moves", "list"}, {"--json", "moves", "list"},
				{"moves", "advance", "cents_wb", "--dry-run"},
				{"moves", "sql", "cents_wb", "--phase", "write-both", "--dialect", "mysql"},
				{"triggers", "sql", "label_done"}, {"moves", "show"},
			} {
				before := dbtest.Dump(t, db)
				out, errOut, code := tandem(t, append([]string{"--db", dsn, "--plan", plan}, args...)...)
				if code != exitOK && code != exitBlocked {
					t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
				}
				if args[0] == "moves" && args[1] == "list" && !strings.Contains(out, "legacy") ||
					args[0] == "status" && !strings.Contains(out, "definition: not recorded in the ledger yet") {
					t.Fatalf("%v: %s", args, out)
				}
				if after := dbtest.Dump(t, db); after != before {
					t.Fatalf("%v changed the database:\nbefore:\n%s\nafter:\n%s", args, before, after)
				}
			}
		})
	}
}

// TestPlanDrift changes the plan after the moves were recorded: every
// command refuses it (exit 2) naming the field and the command that
// records it; an amendment safe at the move's phase is recorded in the
// history, one that would change written data is refused.
func TestPlanDrift(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	plan := writeFile(t, "plan.yaml", ledgerPlan)
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn, db := ledgerDB(t, e)
			must(t, exitOK, "--db", dsn, "--plan", plan, "moves", "advance", "cents_wb")
			later := writeFile(t, "later.yaml", strings.Replace(ledgerPlan, "contracted: 5}", "contracted: 6}", 1))
			for _, args := range [][]string{{"status"}, {"moves", "list"}, {"moves", "advance", "cents_wb"}, {"triggers", "check", "label_done"}} {
				out := must(t, exitBadInput, append([]string{"--db", dsn, "--plan", later}, args...)...)
				if !strings.Contains(out, "releases.contracted: recorded 5, declared 6") || !strings.Contains(out, "tandem moves apply --plan "+later+" --amend cents_wb") {
					t.Fatalf("%v with a drifted plan: %s", args, out)
				}
			}
			before := dbtest.Dump(t, db)
			if out := must(t, exitOK, "--db", dsn, "--plan", later, "moves", "apply", "--amend", "cents_wb", "--dry-run"); !strings.Contains(out, "Would amend move cents_wb: definition version 2") {
				t.Fatalf("amend --dry-run: %s", out)
			}
			if after := dbtest.Dump(t, db); after != before {
				t.Fatalf("apply --amend --dry-run changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			out := must(t, exitOK, "--db", dsn, "--plan", later, "moves", "apply", "--amend", "cents_wb", "--note", "contract ships later")
			if !strings.Contains(out, "Amended move cents_wb: definition version 2") {
				t.Fatalf("amend: %s", out)
			}
			must(t, exitOK, "--db", dsn, "--plan", later, "moves", "list")
			// The plan as it was (an earlier recorded version) is accepted;
			// the ledger's current version governs, and nothing is written.
			before = dbtest.Dump(t, db)
			for _, dry := range [][]string{{"--dry-run"}, nil} {
				if out := must(t, exitOK, append([]string{"--db", dsn, "--plan", plan, "moves", "apply"}, dry...)...); !strings.Contains(out, "the plan declares definition version 1, an earlier one; the ledger's version 2") {
					t.Fatalf("apply %v with the earlier plan: %s", dry, out)
				}
			}
			if out, errOut, code := tandem(t, "--db", dsn, "--plan", plan, "status"); code == exitBadInput || strings.Contains(out+errOut, "differs") {
				t.Fatalf("status with the earlier plan: exit %d\n%s%s", code, out, errOut)
			}
			if after := dbtest.Dump(t, db); after != before {
				t.Fatalf("the earlier plan changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			var doc struct {
				Moves []struct {
					Version int64 `json:"version"`
					History []struct {
						Change string `json:"change"`
					} `json:"history"`
				} `json:"moves"`
			}
			err := json.Unmarshal([]byte(must(t, exitOK, "--db", dsn, "--json", "moves", "show", "cents_wb")), &doc)
			shown := doc.Moves
			if err != nil || len(shown) != 1 || shown[0].Version != 2 ||
				len(shown[0].History) != 2 || !strings.Contains(shown[0].History[1].Change, "releases.contracted: 5 -> 6 (contract ships later)") {
				t.Fatalf("show after amend: %v %+v", err, shown)
			}
			var notes []string
			if err := db.Select(&notes, db.Rebind(`SELECT note FROM tandem_move_history WHERE move = ? AND from_phase = to_phase`), "cents_wb"); err != nil || len(notes) != 1 || !strings.Contains(notes[0], "definition amended") {
				t.Fatalf("phase history: %v %q", err, notes)
			}
			// Triggers cannot be switched on once the move is at write-both.
			trig := writeFile(t, "trig.yaml", strings.Replace(strings.Replace(ledgerPlan, "contracted: 5}", "contracted: 6}", 1), "contracted: 6}\n", "contracted: 6}\n    triggers: true\n", 1))
			out = must(t, exitBadInput, "--db", dsn, "--plan", trig, "moves", "apply", "--amend", "cents_wb")
			if !strings.Contains(out, "triggers: recorded false, declared true (cannot change: the move is at write-both") {
				t.Fatalf("refused amendment: %s", out)
			}
			// A missing plan named explicitly is bad input, for every command.
			missing := filepath.Join(t.TempDir(), "nope.yaml")
			for _, args := range [][]string{{"status"}, {"services", "list"}, {"moves", "list"}, {"schema", "ensure", "--dry-run"}, {"triggers", "sql", "label_done"}} {
				if out := must(t, exitBadInput, append([]string{"--db", dsn, "--plan", missing}, args...)...); !strings.Contains(out, "nope.yaml") {
					t.Fatalf("%v: %s", args, out)
				}
			}
			t.Setenv("TANDEM_PLAN", missing)
			must(t, exitBadInput, "--db", dsn, "status")
		})
	}
}

// TestGoOnlyTransform records a move whose transform exists only in Go:
// the CLI reads it from the ledger and says what to do where it would need
// the transform.
func TestGoOnlyTransform(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn, db := ledgerDB(t, e)
			ctx := context.Background()
			m := move.Move{Name: "upper_label", Table: "products", Key: []string{"id"}, Old: "label",
				New:      move.Target{Column: "label_up", Type: move.ColumnType{SQL: "VARCHAR(40)"}},
				Forward:  move.Transform{Go: func(v any) (any, error) { return strings.ToUpper(v.(string)), nil }},
				Backward: move.Transform{Go: func(v any) (any, error) { return strings.ToLower(v.(string)), nil }}}
			reg, err := services.New(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			mg, err := dualwrite.New(ctx, db, []move.Move{m}, dualwrite.WithRegistry(reg))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mg.Advance(ctx, m.Name, move.WriteBoth); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"moves", "backfill", m.Name}, {"moves", "verify", m.Name}} {
				out := must(t, exitBadInput, append([]string{"--db", dsn}, args...)...)
				if !strings.Contains(out, "exists only in Go") || !strings.Contains(out, "run the backfill from the application, or declare a SQL transform") {
					t.Fatalf("%v: %s", args, out)
				}
			}
			if out := must(t, exitOK, "--db", dsn, "moves", "show", m.Name); !strings.Contains(out, "the forward transform exists only in the application's Go code") {
				t.Fatalf("show: %s", out)
			}
			must(t, exitAttention, "--db", dsn, "status")
		})
	}
}
