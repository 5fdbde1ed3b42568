package triggers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/promreg"
	"github.com/tandem-go/tandem/triggers"
)

// TestCollector checks the triggers metrics against the database on each
// engine: nothing installed, installed as generated, one object dropped,
// one edited, one stale left over, and a catalog that cannot be read.
func TestCollector(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		d := db.Engine()
		createSchema(t, db)
		set, err := triggers.ForMove(d, testMoves["same_xform"])
		if err != nil {
			t.Fatal(err)
		}
		pr := prometheus.NewPedanticRegistry()
		pr.MustRegister(triggers.NewCollector(db, set))
		mv := "move=" + set.Move
		want := func(name string, w float64, labels ...string) {
			t.Helper()
			if got, ok := promreg.Value(pr, name, labels...); !ok || got != w {
				t.Errorf("%s%v = %v (found %v), want %v", name, labels, got, ok, w)
			}
		}
		n := float64(len(set.Objects))
		want("tandem_triggers_check_up", 1)
		want("tandem_triggers_present", 0, mv)
		want("tandem_triggers_unchanged", 1, mv)
		want("tandem_triggers_objects", n, mv, "state=missing")

		if _, err := triggers.Install(ctx, db, set); err != nil {
			t.Fatal(err)
		}
		want("tandem_triggers_present", 1, mv)
		want("tandem_triggers_unchanged", 1, mv)
		want("tandem_triggers_objects", n, mv, "state=ok")

		victim := set.Objects[len(set.Objects)-1]
		if _, err := db.ExecContext(ctx, victim.Drop); err != nil {
			t.Fatal(err)
		}
		want("tandem_triggers_present", 0, mv)
		want("tandem_triggers_objects", 1, mv, "state=missing")
		if _, err := triggers.Install(ctx, db, set); err != nil {
			t.Fatal(err)
		}

		edited := set.Objects[0]
		body := strings.Replace(edited.Create, "IS NOT NULL", "IS NOT NULL AND 1 = 1", 1)
		if body == edited.Create {
			body = strings.Replace(edited.Create, "IS NULL", "IS NULL AND 1 = 1", 1)
		}
		if edited.Kind == triggers.KindTrigger {
			if _, err := db.ExecContext(ctx, edited.Drop); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, body); err != nil {
			t.Fatal(err)
		}
		want("tandem_triggers_present", 1, mv)
		want("tandem_triggers_unchanged", 0, mv)
		want("tandem_triggers_objects", 1, mv, "state=changed")
		if _, err := triggers.Install(ctx, db, set); err != nil {
			t.Fatal(err)
		}

		// A stale object left by an older generation: present, but not
		// as generated.
		stale := set.Objects[len(set.Objects)-1]
		staleName := strings.TrimSuffix(stale.Name, stale.Name[strings.LastIndex(stale.Name, "_")+1:]) + "9"
		if _, err := db.ExecContext(ctx, strings.Replace(stale.Create, quote(t, d, stale.Name), quote(t, d, staleName), 1)); err != nil {
			t.Fatal(err)
		}
		want("tandem_triggers_present", 1, mv)
		want("tandem_triggers_unchanged", 0, mv)
		want("tandem_triggers_objects", 1, mv, "state=unexpected")
		want("tandem_triggers_objects", n, mv, "state=ok")
		want("tandem_triggers_check_up", 1)

		if _, err := triggers.Drop(ctx, db, d, set.Move); err != nil {
			t.Fatal(err)
		}
		want("tandem_triggers_present", 0, mv)
		want("tandem_triggers_objects", n, mv, "state=missing")

		// A catalog that cannot be read: check_up is 0 and the move's
		// gauges are left out rather than reported as 0.
		driver, source := db.DSN().Driver()
		gone, err := sqlx.Open(driver, source)
		if err != nil {
			t.Fatal(err)
		}
		gone.Close()
		down := prometheus.NewPedanticRegistry()
		down.MustRegister(triggers.NewCollector(gone, set))
		if got, ok := promreg.Value(down, "tandem_triggers_check_up"); !ok || got != 0 {
			t.Errorf("check_up with a closed pool = %v (found %v), want 0", got, ok)
		}
		if _, ok := promreg.Value(down, "tandem_triggers_present", mv); ok {
			t.Error("present reported for a move whose catalog could not be read")
		}
	})
}
