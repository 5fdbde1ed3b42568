package dualwrite_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// An instance that wrote old only after the backfill started and was
// deleted since must not let read-new open on the strength of a verify that
// ran before its write.
func TestReadNewWaitsOutOldWritersThatLeft(t *testing.T) {
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
		// A build shipping only legacy code may not start now.
		if _, err := dualwrite.NewTracker(e.ctx, db, 41, []move.Move{m}); !errors.Is(err, dualwrite.ErrTooOld) {
			t.Fatalf("release 41 started at write-both: %v", err)
		}
		// One that does not know the move at all reports no phase: it
		// acts on legacy and writes old only.
		if err := e.reg.Register(e.ctx, services.Instance{ID: "web-2", Service: "shop", Host: "h-web-2", Release: 41}); err != nil {
			t.Fatal(err)
		}
		if err := r.Write(e.ctx, db, move.Legacy, int64(99), 1); err != nil {
			t.Fatal(err)
		}
		if err := e.reg.Deregister(e.ctx, "web-2"); err != nil {
			t.Fatal(err)
		}
		_, err = e.mg.Advance(e.ctx, m.Name, move.ReadNew)
		bs := blockers(t, err)
		if kinds(bs) != "old-writers" || len(bs[0].Instances) != 1 || bs[0].Instances[0].ID != "web-2" || !strings.Contains(err.Error(), "--restart") {
			t.Fatalf("read-new after web-2 wrote old only: %v", err)
		}
		if g := e.status().Next; g == nil || g.Open || kinds(g.Blockers) != "old-writers" {
			t.Fatalf("status gate: %+v", g)
		}
		// A restarted backfill covers what web-2 wrote.
		if _, err := e.mg.Backfill(e.ctx, m.Name, dualwrite.WithRestart()); err != nil {
			t.Fatal(err)
		}
		if v, err := e.mg.Verify(e.ctx, m.Name); err != nil || v.Mismatches != 0 {
			t.Fatalf("verify: %+v %v", v, err)
		}
		e.advance(move.ReadNew)
		if v, err := r.Read(e.ctx, db, move.ReadNew, 1); err != nil || !dualwrite.SameValue(v, 99) {
			t.Fatalf("read-new reads %v (%v), want 99", v, err)
		}
	})
}

// snapshotOnly is a registry source that keeps no deleted instances.
type snapshotOnly struct{ src services.Source }

func (s snapshotOnly) Snapshot(ctx context.Context) (services.Snapshot, error) {
	return s.src.Snapshot(ctx)
}

func TestReadNewNeedsRegistryHistory(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 20, priceMove())
		e.toWriteBoth()
		if _, err := e.mg.Backfill(e.ctx, e.m.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := e.mg.Verify(e.ctx, e.m.Name); err != nil {
			t.Fatal(err)
		}
		mg, err := dualwrite.New(e.ctx, db, []move.Move{e.m}, dualwrite.WithRegistry(snapshotOnly{e.reg}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = mg.Advance(e.ctx, e.m.Name, move.ReadNew)
		if bs := blockers(t, err); kinds(bs) != "registry" || !strings.Contains(err.Error(), "InstanceHistory") {
			t.Fatalf("read-new without registry history: %v", err)
		}
		e.advance(move.ReadNew)
	})
}
