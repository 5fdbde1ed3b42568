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
)

const triggersPlan = `version: 1
moves:
  - name: price_mills
    table: items
    key: [id]
    old: price_cents
    new:
      column: price_mills
      type: BIGINT
    forward:
      sql: "{value} * 10"
    backward:
      sql: "{value} / 10"
      dialects:
        mysql: "{value} DIV 10"
    triggers: true
`

func TestTriggersCommands(t *testing.T) {
	plan := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(plan, []byte(triggersPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	// sql needs no database: the engine comes from --dialect or the DSN's scheme.
	out, errOut, code := tandem(t, "triggers", "sql", "price_mills", "--plan", plan, "--dialect", "postgres")
	if code != 0 || !strings.Contains(out, `CREATE OR REPLACE FUNCTION "tandem_price_mills_f1"()`) || strings.Contains(strings.ToUpper(out), "DELIMITER") {
		t.Fatalf("sql: %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := tandem(t, "triggers", "sql", "nope", "--plan", plan, "--dialect", "sqlite"); code != exitBadInput || !strings.Contains(errOut, "price_mills") {
		t.Fatalf("unknown move: %d %s", code, errOut)
	}
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		dsn := db.DSN().Redacted()
		args := func(a ...string) []string { return append([]string{"--db", dsn}, append(a, "--plan", plan)...) }
		// Only schema ensure creates tandem's tables.
		if _, errOut, code := tandem(t, args("triggers", "install", "price_mills")...); code != exitFailed || !strings.Contains(errOut, "tandem schema ensure") {
			t.Fatalf("install before schema ensure: %d %s", code, errOut)
		}
		if _, errOut, code := tandem(t, "--db", dsn, "schema", "ensure"); code != exitOK {
			t.Fatalf("schema ensure: %d %s", code, errOut)
		}
		if _, errOut, code := tandem(t, args("triggers", "install", "price_mills")...); code != exitBadInput || !strings.Contains(errOut, "expand") {
			t.Fatalf("install before the table exists: %d %s", code, errOut)
		}
		db.MustExec(`CREATE TABLE items (id INTEGER PRIMARY KEY, price_cents INTEGER, price_mills INTEGER)`)
		// At legacy the move needs no triggers yet: none is fine.
		out, errOut, code := tandem(t, args("triggers", "check", "price_mills")...)
		if code != exitOK || !strings.Contains(out, "at legacy: not installed yet: entering write-both installs them") {
			t.Fatalf("check before install: %d\n%s%s", code, out, errOut)
		}
		out, _, code = tandem(t, args("triggers", "install", "price_mills", "--dry-run")...)
		if code != 0 || !strings.Contains(out, "would create") {
			t.Fatalf("dry run: %d %s", code, out)
		}
		out, _, code = tandem(t, args("triggers", "install", "price_mills")...)
		if code != 0 || !strings.Contains(out, "created tandem_price_mills_") {
			t.Fatalf("install: %d %s", code, out)
		}
		out, _, code = tandem(t, args("triggers", "install", "price_mills")...)
		if code != 0 || !strings.Contains(out, "up to date") {
			t.Fatalf("second install: %d %s", code, out)
		}
		out, _, code = tandem(t, args("--json", "triggers", "check", "price_mills")...)
		var rep struct {
			Objects []struct{ State string } `json:"objects"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || len(rep.Objects) == 0 || rep.Objects[0].State != "ok" {
			t.Fatalf("check --json: %d %v %s", code, err, out)
		}
		db.MustExec(`INSERT INTO items (id, price_cents) VALUES (1, 7)`)
		var mills int
		if err := db.GetContext(context.Background(), &mills, `SELECT price_mills FROM items WHERE id = 1`); err != nil || mills != 70 {
			t.Fatalf("trigger: %d %v", mills, err)
		}
		out, _, code = tandem(t, args("triggers", "drop", "price_mills")...)
		if code != 0 || !strings.Contains(out, "dropped") {
			t.Fatalf("drop: %d %s", code, out)
		}
		out, _, code = tandem(t, args("triggers", "drop", "price_mills")...)
		if code != 0 || !strings.Contains(out, "no triggers installed") {
			t.Fatalf("second drop: %d %s", code, out)
		}
		// The ledger logs the install and the drop that changed something,
		// not the dry run nor the repeats.
		var logged []string
		if err := db.SelectContext(context.Background(), &logged, `SELECT description FROM tandem_steps WHERE move = 'price_mills' ORDER BY proposed_at`); err != nil {
			t.Fatal(err)
		}
		if len(logged) != 2 || !strings.Contains(logged[0], "install") || !strings.Contains(logged[1], "drop") {
			t.Fatalf("tandem_steps = %q, want the install then the drop", logged)
		}
	})
}
