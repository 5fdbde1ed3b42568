package dualwrite_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
)

// TestKnownOlderDeclaration: after an amendment, a build of the rollout's
// earlier release, still declaring the previous definition, restarts: its
// Tracker and Manager start and act by the ledger's current definition.
// A declaration equal to no recorded version is still refused, the field
// named.
func TestKnownOlderDeclaration(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		v1 := priceMove()
		v1.Releases = move.Releases{WriteBoth: 42, ReadNew: 43, WriteNew: 44, Contracted: 45}
		e := newEnv(t, db, 10, v1)
		e.toWriteBoth()

		// Release 43 amends: read-new ships one release later.
		v2 := v1
		v2.Releases = move.Releases{WriteBoth: 42, ReadNew: 44, WriteNew: 45, Contracted: 46}
		if _, err := dualwrite.New(e.ctx, db, []move.Move{v2}, dualwrite.WithAmend(v1.Name, "read-new one release later")); err != nil {
			t.Fatalf("amend: %v", err)
		}
		defsAfterAmend := e.count(`SELECT COUNT(*) FROM tandem_move_definitions`)
		historyAfterAmend := e.count(`SELECT COUNT(*) FROM tandem_move_history`)

		// Release 42, declaring v1, crash-restarts mid-rollout.
		var logs bytes.Buffer
		tr, err := dualwrite.NewTracker(e.ctx, db, 42, []move.Move{v1}, dualwrite.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		if err != nil {
			t.Fatalf("tracker with the earlier declaration: %v", err)
		}
		if p := tr.Phase(v1.Name); p != move.WriteBoth {
			t.Fatalf("tracker acts on %s, want write-both", p)
		}
		if d, r := tr.DefinitionVersions(v1.Name); d != 1 || r != 2 {
			t.Fatalf("definition versions: declared %d, recorded %d; want 1, 2", d, r)
		}
		if s := logs.String(); !strings.Contains(s, "level=INFO") || !strings.Contains(s, "known older declaration") || !strings.Contains(s, "declared_version=1") || !strings.Contains(s, "recorded_version=2") {
			t.Fatalf("log: %q", s)
		}
		mg, err := dualwrite.New(e.ctx, db, []move.Move{v1}, dualwrite.WithRegistry(e.reg))
		if err != nil {
			t.Fatalf("manager with the earlier declaration: %v", err)
		}
		if got := dualwrite.Digest(mg.Moves()[0]); got != dualwrite.Digest(v2) {
			t.Fatalf("manager acts by %s, want the recorded v2 %s", got, dualwrite.Digest(v2))
		}
		if _, err := dualwrite.Load(e.ctx, db, []move.Move{v1}); err != nil {
			t.Fatalf("load with the earlier declaration: %v", err)
		}
		if n, h := e.count(`SELECT COUNT(*) FROM tandem_move_definitions`), e.count(`SELECT COUNT(*) FROM tandem_move_history`); n != defsAfterAmend || h != historyAfterAmend {
			t.Fatalf("an earlier declaration wrote: definitions %d -> %d, history %d -> %d", defsAfterAmend, n, historyAfterAmend, h)
		}

		// The current definition governs: at read-new, a release-43 build
		// declaring v1 (read-new at 43) acts on write-both, as v2 says.
		if _, err := mg.Backfill(e.ctx, v1.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := mg.Verify(e.ctx, v1.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := mg.Advance(e.ctx, v1.Name, move.ReadNew); err != nil {
			t.Fatal(err)
		}
		tr43, err := dualwrite.NewTracker(e.ctx, db, 43, []move.Move{v1})
		if err != nil || tr43.Phase(v1.Name) != move.WriteBoth {
			t.Fatalf("release 43 with v1 at read-new: %v, want write-both (v2 ships read-new in 44)", err)
		}
		if tr44, err := dualwrite.NewTracker(e.ctx, db, 44, []move.Move{v1}); err != nil || tr44.Phase(v1.Name) != move.ReadNew {
			t.Fatalf("release 44 with v1 at read-new: %v", err)
		}

		// A version nobody recorded is refused, the field named.
		v3 := v2
		v3.Releases.Contracted = 47
		_, err = dualwrite.NewTracker(e.ctx, db, 42, []move.Move{v3})
		var de *dualwrite.DriftError
		if !errors.Is(err, dualwrite.ErrDrift) || !errors.As(err, &de) || len(de.Fields) != 1 || de.Fields[0].Field != "releases.contracted" || de.Version != 2 {
			t.Fatalf("tracker with an unrecorded declaration: %v", err)
		}
		if _, err := dualwrite.New(e.ctx, db, []move.Move{v3}); !errors.Is(err, dualwrite.ErrDrift) || !strings.Contains(err.Error(), "releases.contracted") {
			t.Fatalf("manager with an unrecorded declaration: %v", err)
		}
		if _, err := dualwrite.Load(e.ctx, db, []move.Move{v3}); !errors.Is(err, dualwrite.ErrDrift) {
			t.Fatalf("load with an unrecorded declaration: %v", err)
		}
	})
}

// TestAmendmentAtomic: the amended definition and its history row land in
// one transaction on every engine: when the history insert fails (its
// note column is gone), neither is left; once it can succeed, both land.
func TestAmendmentAtomic(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := priceMove()
		e := newEnv(t, db, 3, m)
		later := m
		later.Releases.Contracted = 9
		defs := func() int64 { return e.count(`SELECT COUNT(*) FROM tandem_move_definitions WHERE move = ?`, m.Name) }
		hist := func() int64 { return e.count(`SELECT COUNT(*) FROM tandem_move_history WHERE move = ?`, m.Name) }
		d0, h0 := defs(), hist()

		e.exec(`ALTER TABLE tandem_move_history DROP COLUMN note`)
		_, err := dualwrite.New(e.ctx, db, []move.Move{later}, dualwrite.WithAmend(m.Name, "contract later"))
		if err == nil || errors.Is(err, dualwrite.ErrDrift) {
			t.Fatalf("amend with the history insert failing: %v", err)
		}
		if d, h := defs(), hist(); d != d0 || h != h0 {
			t.Fatalf("a failed amendment left definitions %d -> %d, history %d -> %d", d0, d, h0, h)
		}

		e.exec(`ALTER TABLE tandem_move_history ADD COLUMN note TEXT`)
		if _, err := dualwrite.New(e.ctx, db, []move.Move{later}, dualwrite.WithAmend(m.Name, "contract later")); err != nil {
			t.Fatalf("amend: %v", err)
		}
		if d, h := defs(), hist(); d != d0+1 || h != h0+1 {
			t.Fatalf("amendment: definitions %d -> %d, history %d -> %d", d0, d, h0, h)
		}
	})
}
