package dualwrite_test

import (
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/triggers"
)

// With triggers the database writes both for instances that only know old:
// the backfill and read-new need no instance to write both, and a legacy
// build can stay on until contract.
func TestTriggersShortPath(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := priceMove()
		m.Forward.Go, m.Backward.Go = nil, nil
		m.Triggers = true
		e := newEnv(t, db, 200, m)
		e.register("legacy", 1, move.Legacy) // never upgraded before contract
		tr := e.advance(move.WriteBoth)
		if len(tr.Steps) != 2 || !strings.Contains(tr.Steps[1].ID, "install-triggers") {
			t.Fatalf("steps: %+v", tr.Steps)
		}
		// A legacy writer: the trigger fills new.
		e.exec(`INSERT INTO products (id, name, price) VALUES (9001, 'x', 12.34)`)
		if n := e.count(`SELECT price_cents FROM products WHERE id = 9001`); n != 1234 {
			t.Fatalf("trigger filled new with %d", n)
		}
		if _, err := e.mg.Backfill(e.ctx, m.Name); err != nil {
			t.Fatalf("backfill with a legacy instance and triggers: %v", err)
		}
		if _, err := e.mg.Verify(e.ctx, m.Name); err != nil {
			t.Fatal(err)
		}
		e.advance(move.ReadNew)
		e.advance(move.WriteNew)
		// A new-only writer: the reverse trigger keeps old for the legacy reader.
		e.exec(`UPDATE products SET price_cents = 4321 WHERE id = 9001`)
		var price string
		if err := db.GetContext(e.ctx, &price, `SELECT price FROM products WHERE id = 9001`); err != nil || !strings.HasPrefix(price, "43.21") {
			t.Fatalf("reverse trigger: %q %v", price, err)
		}
		st := e.status()
		if st.OldStale || !strings.Contains(st.Shortcut, "triggers keep old and new in sync") {
			t.Fatalf("status: stale %v, shortcut %q", st.OldStale, st.Shortcut)
		}
		if !strings.Contains(st.SyncTriggers, "present and as generated") {
			t.Fatalf("status of installed triggers: %q", st.SyncTriggers)
		}
		// Status notices triggers someone dropped by hand.
		drop := `DROP TRIGGER ` + sqldialect.MustQuote(sqldialect.Of(db), firstTrigger(t, db, m))
		if db.Engine() == dialect.Postgres {
			drop += ` ON products`
		}
		e.exec(drop)
		if st := e.status(); !strings.Contains(st.SyncTriggers, "not as generated") {
			t.Fatalf("status after a trigger was dropped: %q", st.SyncTriggers)
		}
		if _, err := triggers.Install(e.ctx, db, mustSet(t, db, m)); err != nil {
			t.Fatal(err)
		}
		// Contract still needs every instance off old.
		_, err := e.mg.Advance(e.ctx, m.Name, move.Contracted)
		if bs := blockers(t, err); kinds(bs) != "instances,finalize" || bs[0].Instances[0].ID != "legacy" {
			t.Fatalf("contract with a legacy instance: %v", err)
		}
		e.ack("legacy", move.WriteNew)
		if _, err := e.mg.Finalize(e.ctx, m.Name, ""); err != nil {
			t.Fatal(err)
		}
		tr = e.advance(move.Contracted)
		if len(tr.Steps) != 2 || !strings.Contains(tr.Steps[0].ID, "drop-triggers") {
			t.Fatalf("contract steps: %+v", tr.Steps)
		}
		e.exec(`INSERT INTO products (id, name, price_cents) VALUES (9002, 'y', 5)`)
	})
}

func mustSet(t *testing.T, db *dialect.DB, m move.Move) triggers.Set {
	t.Helper()
	set, err := triggers.ForMove(db.Engine(), m)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// firstTrigger names one trigger of m's set (on PostgreSQL a trigger, not
// its function).
func firstTrigger(t *testing.T, db *dialect.DB, m move.Move) string {
	t.Helper()
	for _, n := range mustSet(t, db, m).Names() {
		if !strings.Contains(n, "_f") {
			return n
		}
	}
	t.Fatal("no trigger in the set")
	return ""
}
