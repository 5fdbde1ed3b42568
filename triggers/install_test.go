package triggers_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/triggers"
)

func states(r triggers.Report) map[string]triggers.State {
	out := map[string]triggers.State{}
	for _, o := range r.Objects {
		out[o.Name] = o.State
	}
	return out
}

// TestInstallCheckDrop walks each move's triggers through install, repeat,
// tampering of every kind, repair and drop, checking each step.
func TestInstallCheckDrop(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		d := db.Engine()
		createSchema(t, db)
		for _, name := range []string{"same_xform", "cross_xform", "cross_reserved"} {
			t.Run(name, func(t *testing.T) {
				m := testMoves[name]
				set, err := triggers.ForMove(d, m)
				if err != nil {
					t.Fatal(err)
				}
				all := set.Names()
				check := func(want map[string]triggers.State) {
					t.Helper()
					rep, err := triggers.Check(ctx, db, set)
					if rep.OK() != (err == nil) {
						t.Fatalf("Check: OK()=%v but err=%v", rep.OK(), err)
					}
					if err != nil && !errors.Is(err, triggers.ErrDrift) {
						t.Fatalf("Check: %v", err)
					}
					got := states(rep)
					for n, st := range want {
						if got[n] != st {
							t.Errorf("Check: %s is %q, want %q (report %+v)", n, got[n], st, rep.Objects)
						}
					}
					if len(got) != len(want) {
						t.Errorf("Check: reported %v, want %v", got, want)
					}
				}
				every := func(st triggers.State) map[string]triggers.State {
					out := map[string]triggers.State{}
					for _, n := range all {
						out[n] = st
					}
					return out
				}

				check(every(triggers.StateMissing))

				dry, err := triggers.Install(ctx, db, set, triggers.WithDryRun())
				if err != nil || !dry.DryRun || len(dry.SQL) != len(all) {
					t.Fatalf("dry run: %+v, %v", dry, err)
				}
				check(every(triggers.StateMissing))

				res, err := triggers.Install(ctx, db, set)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(res.Created, all) || len(res.SQL) != len(all) {
					t.Fatalf("first install: %+v", res)
				}
				check(every(triggers.StateOK))

				res, err = triggers.Install(ctx, db, set)
				if err != nil {
					t.Fatal(err)
				}
				if res.Changed() || !slices.Equal(res.Unchanged, all) {
					t.Fatalf("second install changed something: %+v", res)
				}

				// One object dropped behind tandem's back.
				victim := set.Objects[len(set.Objects)-1]
				if _, err := db.ExecContext(ctx, victim.Drop); err != nil {
					t.Fatal(err)
				}
				want := every(triggers.StateOK)
				want[victim.Name] = triggers.StateMissing
				check(want)
				if res, err = triggers.Install(ctx, db, set); err != nil || !slices.Equal(res.Created, []string{victim.Name}) {
					t.Fatalf("repair missing: %+v, %v", res, err)
				}
				check(every(triggers.StateOK))

				// One object edited by hand: same name, another body.
				edited := set.Objects[0]
				body := strings.Replace(edited.Create, "IS NOT NULL", "IS NOT NULL AND 1 = 1", 1)
				if body == edited.Create {
					body = strings.Replace(edited.Create, "IS NULL", "IS NULL AND 1 = 1", 1)
				}
				if body == edited.Create {
					t.Fatalf("test cannot edit %s", edited.Create)
				}
				if edited.Kind == triggers.KindTrigger {
					if _, err := db.ExecContext(ctx, edited.Drop); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := db.ExecContext(ctx, body); err != nil {
					t.Fatal(err)
				}
				want = every(triggers.StateOK)
				want[edited.Name] = triggers.StateChanged
				check(want)
				if res, err = triggers.Install(ctx, db, set); err != nil || !slices.Equal(res.Replaced, []string{edited.Name}) {
					t.Fatalf("repair changed: %+v, %v", res, err)
				}
				check(every(triggers.StateOK))

				// A stale object left by an older generation.
				stale := set.Objects[len(set.Objects)-1]
				staleName := strings.TrimSuffix(stale.Name, stale.Name[strings.LastIndex(stale.Name, "_")+1:]) + "9"
				if _, err := db.ExecContext(ctx, strings.Replace(stale.Create, quote(t, d, stale.Name), quote(t, d, staleName), 1)); err != nil {
					t.Fatal(err)
				}
				want = every(triggers.StateOK)
				want[staleName] = triggers.StateUnexpected
				check(want)
				if res, err = triggers.Install(ctx, db, set); err != nil || !slices.Equal(res.Dropped, []string{staleName}) {
					t.Fatalf("drop stale: %+v, %v", res, err)
				}
				check(every(triggers.StateOK))

				if d == dialect.Postgres {
					// A trigger disabled by hand still exists but does nothing.
					tr := set.Objects[len(set.Objects)-1]
					if _, err := db.ExecContext(ctx, `ALTER TABLE `+quote(t, d, tr.Table)+` DISABLE TRIGGER `+quote(t, d, tr.Name)); err != nil {
						t.Fatal(err)
					}
					want = every(triggers.StateOK)
					want[tr.Name] = triggers.StateChanged
					check(want)
					if res, err = triggers.Install(ctx, db, set); err != nil || !slices.Equal(res.Replaced, []string{tr.Name}) {
						t.Fatalf("repair disabled: %+v, %v", res, err)
					}
					check(every(triggers.StateOK))
				}

				res, err = triggers.Drop(ctx, db, d, m.Name)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Dropped) != len(all) {
					t.Fatalf("drop: %+v", res)
				}
				check(every(triggers.StateMissing))
				if res, err = triggers.Drop(ctx, db, d, m.Name); err != nil || res.Changed() {
					t.Fatalf("second drop: %+v, %v", res, err)
				}
			})
		}
	})
}

func quote(t *testing.T, d dialect.Name, s string) string {
	dl, err := sqldialect.For(d)
	if err != nil {
		t.Fatal(err)
	}
	q, err := dl.Quote(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestInstallNeedsSchema: the triggers refer to columns the expand step
// creates; installing before it fails with the missing name and creates
// nothing.
func TestInstallNeedsSchema(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		d := db.Engine()
		set, err := triggers.ForMove(d, testMoves["same_xform"])
		if err != nil {
			t.Fatal(err)
		}
		_, err = triggers.Install(ctx, db, set)
		var se *triggers.SchemaError
		if !errors.As(err, &se) || !errors.Is(err, triggers.ErrSchema) || se.Table != "items" || se.Column != "" {
			t.Fatalf("no table: got %v", err)
		}
		if _, err := db.ExecContext(ctx, ident(d, `CREATE TABLE "items" ("id" INTEGER PRIMARY KEY, "price_cents" INTEGER)`)); err != nil {
			t.Fatal(err)
		}
		_, err = triggers.Install(ctx, db, set)
		if !errors.As(err, &se) || se.Column != "price_mills" {
			t.Fatalf("no column: got %v", err)
		}
		if !strings.Contains(err.Error(), "expand") {
			t.Errorf("message does not say what to do: %v", err)
		}
		rep, _ := triggers.Check(ctx, db, set)
		for _, o := range rep.Objects {
			if o.State != triggers.StateMissing {
				t.Errorf("%s: %s after a failed install", o.Name, o.State)
			}
		}
	})
}

// TestLongMoveName: names stay within 63 characters, distinct for moves
// that share a long prefix, and work on every engine (PostgreSQL would
// otherwise truncate them and Check would never match).
func TestLongMoveName(t *testing.T) {
	long := strings.Repeat("m", 60)
	m1 := testMoves["same_xform"]
	m1.Name = long + "_a"
	m2 := testMoves["same_ident"]
	m2.Name = long + "_b"
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		d := db.Engine()
		createSchema(t, db)
		seen := map[string]bool{}
		for _, m := range []move.Move{m1, m2} {
			set, err := triggers.ForMove(d, m)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range set.Names() {
				if len(n) > 63 || seen[n] {
					t.Errorf("name %q: %d characters, seen before: %v", n, len(n), seen[n])
				}
				seen[n] = true
			}
			if _, err := triggers.Install(ctx, db, set); err != nil {
				t.Fatal(err)
			}
			if _, err := triggers.Check(ctx, db, set); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO items (id, price_cents, label) VALUES (1, 3, 'x')`); err != nil {
			t.Fatal(err)
		}
		got := dump(t, db, d, "items", "id", "price_cents", "price_mills", "label", "title")
		if !slices.Equal(got, []string{"1,3,30,x,x"}) {
			t.Errorf("got %q", got)
		}
		res, err := triggers.Drop(ctx, db, d, m1.Name)
		if err != nil || len(res.Dropped) == 0 {
			t.Fatalf("drop: %+v %v", res, err)
		}
		set2, _ := triggers.ForMove(d, m2)
		if _, err := triggers.Check(ctx, db, set2); err != nil {
			t.Errorf("dropping one move touched the other: %v", err)
		}
	})
}
