package dualwrite_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
)

func TestCanonicalDefinition(t *testing.T) {
	base := priceMove()
	goFn := func(v any) (any, error) { return v, nil }
	cases := []struct {
		name string
		edit func(m *move.Move)
		same bool
	}{
		{"same-table target named", func(m *move.Move) { m.New.Table = m.Table }, true},
		{"same-table key named", func(m *move.Move) { m.New.Key = m.Key }, true},
		{"dialect override equal to the default", func(m *move.Move) {
			m.Backward.Dialects = map[dialect.Name]string{dialect.Postgres: m.Backward.SQL}
		}, true},
		{"a Go function besides SQL for every engine", func(m *move.Move) { m.Forward.Go = goFn }, true},
		{"another release", func(m *move.Move) { m.Releases.ReadNew = 50 }, false},
		{"triggers", func(m *move.Move) { m.Triggers = true }, false},
		{"another transform", func(m *move.Move) { m.Backward.SQL = "{value} / 10.0" }, false},
		{"a Go-only transform is no plain copy", func(m *move.Move) { m.Forward = move.Transform{Go: goFn} }, false},
		{"another type", func(m *move.Move) { m.New.Type.SQL = "INTEGER" }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := priceMove()
			tc.edit(&m)
			if got := dualwrite.Digest(m) == dualwrite.Digest(base); got != tc.same {
				t.Fatalf("same digest: %v, want %v\n%s\n%s", got, tc.same, dualwrite.Canonical(base), dualwrite.Canonical(m))
			}
		})
	}
	back, err := dualwrite.MoveFromDefinition(dualwrite.Canonical(base))
	if err != nil || dualwrite.Digest(back) != dualwrite.Digest(base) {
		t.Fatalf("round trip: %v\n%s", err, dualwrite.Canonical(back))
	}
}

// TestDefinitionDrift: New records the definition; a Go declaration that
// differs is refused by New and NewTracker with the field named; an
// amendment safe at the move's phase is recorded in both histories; one
// that would change written data is refused with the reason.
func TestDefinitionDrift(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := priceMove()
		e := newEnv(t, db, 10, m)
		defs, err := dualwrite.DefinitionHistory(e.ctx, db, db.Engine(), m.Name)
		if err != nil || len(defs) != 1 || defs[0].Digest != dualwrite.Digest(m) || defs[0].Version != 1 {
			t.Fatalf("recorded: %v %+v", err, defs)
		}
		e.toWriteBoth()

		later := m
		later.Releases.Contracted = m.Releases.Contracted + 1
		_, err = dualwrite.New(e.ctx, db, []move.Move{later})
		var de *dualwrite.DriftError
		if !errors.Is(err, dualwrite.ErrDrift) || !errors.As(err, &de) || len(de.Fields) != 1 || de.Fields[0].Field != "releases.contracted" ||
			de.Refused() || !strings.Contains(err.Error(), `dualwrite.WithAmend("price_cents"`) {
			t.Fatalf("drift: %v", err)
		}
		if _, err := dualwrite.NewTracker(e.ctx, db, 43, []move.Move{later}); !errors.Is(err, dualwrite.ErrDrift) || !strings.Contains(err.Error(), "releases.contracted") {
			t.Fatalf("tracker with a drifted declaration: %v", err)
		}
		if _, err := dualwrite.Load(e.ctx, db, []move.Move{later}); !errors.Is(err, dualwrite.ErrDrift) {
			t.Fatalf("load with a drifted declaration: %v", err)
		}

		if _, err := dualwrite.New(e.ctx, db, []move.Move{later}, dualwrite.WithAmend(m.Name, "contract ships one release later")); err != nil {
			t.Fatalf("amend: %v", err)
		}
		defs, err = dualwrite.DefinitionHistory(e.ctx, db, db.Engine(), m.Name)
		if err != nil || len(defs) != 2 || defs[1].Digest != dualwrite.Digest(later) || !strings.Contains(defs[1].Change, "releases.contracted") {
			t.Fatalf("after amend: %v %+v", err, defs)
		}
		mg, err := dualwrite.New(e.ctx, db, []move.Move{later})
		if err != nil {
			t.Fatalf("the amended declaration: %v", err)
		}
		st, err := mg.Status(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		h := st.Moves[0].History
		if last := h[len(h)-1]; last.From != "write-both" || last.To != "write-both" || last.Note == nil || !strings.Contains(*last.Note, "contract ships one release later") {
			t.Fatalf("phase history: %+v", h)
		}

		// Triggers on, past write-both: refused, with the reason.
		trig := later
		trig.Triggers = true
		_, err = dualwrite.New(e.ctx, db, []move.Move{trig}, dualwrite.WithAmend(m.Name, "try"))
		if !errors.Is(err, dualwrite.ErrAmendRefused) || !errors.As(err, &de) || de.Fields[0].Field != "triggers" || !strings.Contains(de.Fields[0].Refused, "write-both") {
			t.Fatalf("refused amendment: %v", err)
		}

		// With no declaration at all, the ledger alone gives the move.
		ro, err := dualwrite.Load(e.ctx, db, nil)
		if err != nil || len(ro.Moves()) != 1 || dualwrite.Digest(ro.Moves()[0]) != dualwrite.Digest(later) {
			t.Fatalf("load: %v %+v", err, ro)
		}
		if p, err := ro.Phase(e.ctx, m.Name); err != nil || p != move.WriteBoth {
			t.Fatalf("phase from the ledger: %v %v", p, err)
		}
	})
}

// TestGoOnlyFromTheLedger: a move rebuilt from the ledger whose transform
// is the application's Go function refuses a backfill with ErrGoOnly
// instead of failing every row.
func TestGoOnlyFromTheLedger(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := priceMove()
		m.Forward = move.Transform{Go: priceMove().Forward.Go}
		e := newEnv(t, db, 10, m)
		e.toWriteBoth()
		ro, err := dualwrite.Load(e.ctx, db, nil, dualwrite.WithRegistry(e.reg))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ro.Backfill(e.ctx, m.Name)
		if !errors.Is(err, dualwrite.ErrGoOnly) || !strings.Contains(err.Error(), "run the backfill from the application, or declare a SQL transform") {
			t.Fatalf("backfill from the ledger: %v", err)
		}
		if _, err := ro.Verify(e.ctx, m.Name); !errors.Is(err, dualwrite.ErrGoOnly) {
			t.Fatalf("verify from the ledger: %v", err)
		}
		if n := e.count(`SELECT COUNT(*) FROM tandem_move_failures`); n != 0 {
			t.Fatalf("%d rows recorded as failed", n)
		}
		// The application, which has the function, runs it.
		if _, err := e.mg.Backfill(e.ctx, m.Name); err != nil {
			t.Fatalf("backfill from the application: %v", err)
		}
	})
}

// TestDigestWithoutFreeze: the freeze field is left out of the canonical
// form when empty, so definitions recorded before it existed keep their
// digest (pinned here as this build's predecessors recorded them); a
// freeze changes the digest, in any order it is listed, and goes through
// a plan and back.
func TestDigestWithoutFreeze(t *testing.T) {
	p, err := dualwrite.LoadPlan("testdata/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]string{
		"price_cents":    "3d28bf1b44ea6f9beae0461b96dc0b3c165387db3a98ea22d7825e0adecaae79",
		"resource_props": "9e56f6a1b31c29e3ac50562ee19fdccaa92d38af24478040c2466f06a2a46fac",
	}
	for _, m := range p.Moves {
		if got := dualwrite.Digest(m); got != recorded[m.Name] {
			t.Fatalf("%s: digest %s, recorded %s\n%s", m.Name, got, recorded[m.Name], dualwrite.Canonical(m))
		}
		if strings.Contains(string(dualwrite.Canonical(m)), "freeze") {
			t.Fatalf("%s: an empty freeze is in the canonical form: %s", m.Name, dualwrite.Canonical(m))
		}
	}
	m := p.Moves[0]
	m.Freeze = []move.Phase{move.ReadNew, move.Contracted}
	if dualwrite.Digest(m) == recorded[m.Name] {
		t.Fatal("a freeze did not change the digest")
	}
	other := m
	other.Freeze = []move.Phase{move.Contracted, move.ReadNew}
	if dualwrite.Digest(other) != dualwrite.Digest(m) {
		t.Fatalf("the freeze's order changed the digest:\n%s\n%s", dualwrite.Canonical(m), dualwrite.Canonical(other))
	}
	back, err := dualwrite.MoveFromDefinition(dualwrite.Canonical(m))
	if err != nil || dualwrite.Digest(back) != dualwrite.Digest(m) || !back.FreezesInto(move.ReadNew) {
		t.Fatalf("round trip: %v %v", err, back.Freeze)
	}
	plan, err := dualwrite.ParsePlan(strings.NewReader(`version: 1
moves:
  - name: price_cents
    table: products
    key: [id]
    old: price
    new: {column: price_cents}
    freeze: [contracted, read-new]
`))
	if err != nil || !slices.Equal(plan.Moves[0].Freeze, []move.Phase{move.Contracted, move.ReadNew}) {
		t.Fatalf("plan: %v %+v", err, plan)
	}
	var out strings.Builder
	if err := dualwrite.WritePlan(&out, plan.Moves); err != nil || !strings.Contains(out.String(), "freeze:") {
		t.Fatalf("written plan: %v\n%s", err, out.String())
	}
	again, err := dualwrite.ParsePlan(strings.NewReader(out.String()))
	if err != nil || dualwrite.Digest(again.Moves[0]) != dualwrite.Digest(plan.Moves[0]) {
		t.Fatalf("plan round trip: %v\n%s", err, out.String())
	}
	for _, bad := range [][]move.Phase{{move.Legacy}, {move.ReadNew, move.ReadNew}, {move.Phase(9)}} {
		mm := p.Moves[0]
		mm.Freeze = bad
		if err := mm.Validate(); !errors.Is(err, move.ErrInvalid) {
			t.Fatalf("freeze %v: %v, want ErrInvalid", bad, err)
		}
	}
}
