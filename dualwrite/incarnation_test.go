package dualwrite_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// A process that wrote old only after the backfill started and crashed is
// superseded at once by the next process of its id, whose row then shows a
// new release writing both. The old-writers gate must still see the
// superseded incarnation in the registry's history.
func TestReadNewSeesSupersededOldWriter(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := releasedMove()
		e := newEnv(t, db, 20, m)
		r, err := dualwrite.NewRouter(m, db.Engine())
		if err != nil {
			t.Fatal(err)
		}
		e.register("web-1", 43, move.Legacy)
		e.advance(move.WriteBoth)
		e.ack("web-1", move.WriteBoth)
		if _, err := e.mg.Backfill(e.ctx, m.Name); err != nil {
			t.Fatal(err)
		}
		if v, err := e.mg.Verify(e.ctx, m.Name); err != nil || v.Mismatches != 0 {
			t.Fatalf("verify: %+v %v", v, err)
		}
		// web-2's first process runs a build that does not know the move:
		// it writes old only. It registers through a registry of its own,
		// whose liveness tokens are held on its own connection.
		old, err := services.New(e.ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if err := old.Register(e.ctx, services.Instance{ID: "web-2", Service: "shop", Host: "h-web-2", Release: 41}); err != nil {
			t.Fatal(err)
		}
		if err := r.Write(e.ctx, db, move.Legacy, int64(99), 1); err != nil {
			t.Fatal(err)
		}
		// It crashes: its session ends. The next process of web-2, at a
		// release that writes both, registers at once.
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}
		if err := e.reg.Register(e.ctx, services.Instance{ID: "web-2", Service: "shop", Host: "h-web-2", Release: 43,
			Phases: map[string]string{m.Name: move.WriteBoth.String()}}); err != nil {
			t.Fatalf("successor of a dead web-2: %v", err)
		}
		past, err := e.reg.PastIncarnations(e.ctx)
		if err != nil || len(past) != 1 || past[0].ID != "web-2" || past[0].Release != 41 || past[0].Incarnation != 1 {
			t.Fatalf("past incarnations %+v %v", past, err)
		}
		_, err = e.mg.Advance(e.ctx, m.Name, move.ReadNew)
		bs := blockers(t, err)
		if kinds(bs) != "old-writers" || len(bs[0].Instances) != 1 || bs[0].Instances[0].ID != "web-2" || bs[0].Instances[0].Release != 41 || !strings.Contains(err.Error(), "--restart") {
			t.Fatalf("read-new after a superseded web-2 wrote old only: %v", err)
		}
		if _, err := e.mg.Backfill(e.ctx, m.Name, dualwrite.WithRestart()); err != nil {
			t.Fatal(err)
		}
		if v, err := e.mg.Verify(e.ctx, m.Name); err != nil || v.Mismatches != 0 {
			t.Fatalf("verify: %+v %v", v, err)
		}
		e.advance(move.ReadNew)
		if v, err := r.Read(context.Background(), db, move.ReadNew, 1); err != nil || !dualwrite.SameValue(v, 99) {
			t.Fatalf("read-new reads %v (%v), want 99", v, err)
		}
	})
}
