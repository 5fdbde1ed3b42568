package dualwrite_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/dialect"
	"github.com/tandem-go/tandem/move"
)

func TestTrackerActsOnLedgerAndBuild(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := priceMove()
		m.Releases = move.Releases{WriteBoth: 42, ReadNew: 43, WriteNew: 44, Contracted: 45}
		e := newEnv(t, db, 50, m)
		// Before any advance every build acts on legacy, new ones included.
		tr44, err := dualwrite.NewTracker(e.ctx, db, 44, []move.Move{m})
		if err != nil {
			t.Fatal(err)
		}
		if p := tr44.Phase(m.Name); p != move.Legacy {
			t.Fatalf("release 44 before any advance acts on %s", p)
		}
		tr41, err := dualwrite.NewTracker(e.ctx, db, 41, []move.Move{m})
		if err != nil {
			t.Fatal(err)
		}
		tr42, err := dualwrite.NewTracker(e.ctx, db, 42, []move.Move{m})
		if err != nil {
			t.Fatal(err)
		}
		e.register("a", 42, move.Legacy)
		e.advance(move.WriteBoth)
		// A running release 41 lags one phase: allowed, the gates wait
		// for it. A starting one is refused: it would write old only.
		if err := tr41.Refresh(e.ctx); err != nil {
			t.Fatalf("running release 41 one phase behind: %v", err)
		}
		_, err = dualwrite.NewTracker(e.ctx, db, 41, []move.Move{m})
		var too *dualwrite.TooOldError
		if !errors.As(err, &too) || !too.Starting || too.Need != 42 || !strings.Contains(err.Error(), "run release 42 or newer") {
			t.Fatalf("starting release 41 at write-both: %v", err)
		}
		if err := tr44.Refresh(e.ctx); err != nil {
			t.Fatal(err)
		}
		if tr41.Phase(m.Name) != move.Legacy || tr44.Phase(m.Name) != move.WriteBoth || tr44.Phases()[m.Name] != "write-both" {
			t.Fatalf("phases: 41 %s, 44 %s", tr41.Phase(m.Name), tr44.Phase(m.Name))
		}
		e.ack("a", move.WriteBoth)
		if _, err := e.mg.Backfill(e.ctx, m.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := e.mg.Verify(e.ctx, m.Name); err != nil {
			t.Fatal(err)
		}
		e.advance(move.ReadNew)
		// Release 41 would now act two phases behind: refused.
		if err := tr41.Refresh(e.ctx); !errors.Is(err, dualwrite.ErrTooOld) {
			t.Fatalf("release 41 at read-new: %v", err)
		}
		if tr41.Phase(m.Name) != move.Legacy {
			t.Fatal("a failed refresh changed the phase")
		}
		if _, err := dualwrite.NewTracker(e.ctx, db, 41, []move.Move{m}); !errors.Is(err, dualwrite.ErrTooOld) {
			t.Fatalf("new tracker for 41: %v", err)
		}
		// Release 42 carries write-both only: running, it lags one phase,
		// allowed, and its acknowledgement holds the next transition;
		// starting, it is refused.
		if err := tr42.Refresh(e.ctx); err != nil || tr42.Phase(m.Name) != move.WriteBoth {
			t.Fatalf("release 42: %v %v", tr42.Phase(m.Name), err)
		}
		if _, err := dualwrite.NewTracker(e.ctx, db, 42, []move.Move{m}); !errors.As(err, &too) || too.Need != 43 {
			t.Fatalf("starting release 42 at read-new: %v", err)
		}
		if tr43, err := dualwrite.NewTracker(e.ctx, db, 43, []move.Move{m}); err != nil || tr43.Phase(m.Name) != move.ReadNew {
			t.Fatalf("starting release 43 at read-new: %v", err)
		}
		e.ack("a", tr42.Phase(m.Name))
		if _, err := e.mg.Advance(e.ctx, m.Name, move.WriteNew); !errors.Is(err, dualwrite.ErrBlocked) {
			t.Fatalf("write-new with a release-42 instance: %v", err)
		}
		st := e.status()
		if len(st.Releases) != 4 || st.Releases[0].Release != 42 || st.Releases[0].Acts != move.WriteBoth || st.Releases[0].Instances != 1 || st.Releases[1].Acts != move.ReadNew {
			t.Fatalf("release table: %+v", st.Releases)
		}
	})
}

func TestEffective(t *testing.T) {
	for _, tt := range []struct{ ledger, build, want move.Phase }{
		{move.ReadNew, move.Contracted, move.ReadNew},
		{move.ReadNew, move.WriteBoth, move.WriteBoth},
		{move.Legacy, move.WriteNew, move.Legacy},
	} {
		if got := dualwrite.Effective(tt.ledger, tt.build); got != tt.want {
			t.Errorf("Effective(%s, %s) = %s", tt.ledger, tt.build, got)
		}
	}
}

func TestAdvanceOpen(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 20, priceMove())
		e.register("a", 1, move.Legacy)
		trs, err := e.mg.AdvanceOpen(e.ctx, move.WriteNew)
		if err != nil || len(trs) != 1 || trs[0].To != move.WriteBoth {
			t.Fatalf("first tick: %+v %v", trs, err)
		}
		// Blocked until a acknowledges and the backfill is verified.
		if trs, err = e.mg.AdvanceOpen(e.ctx, move.WriteNew); err != nil || len(trs) != 0 {
			t.Fatalf("blocked tick: %+v %v", trs, err)
		}
		e.ack("a", move.WriteBoth)
		if _, err := e.mg.Backfill(e.ctx, e.m.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := e.mg.Verify(e.ctx, e.m.Name); err != nil {
			t.Fatal(err)
		}
		if trs, err = e.mg.AdvanceOpen(e.ctx, move.ReadNew); err != nil || len(trs) != 1 || e.phase() != move.ReadNew {
			t.Fatalf("after verify: %+v %v", trs, err)
		}
		e.ack("a", move.ReadNew)
		if trs, _ = e.mg.AdvanceOpen(e.ctx, move.ReadNew); len(trs) != 0 {
			t.Fatal("advanced past until")
		}
	})
}
