package dualwrite_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// releasedMove is priceMove shipped over releases 42 to 45.
func releasedMove() move.Move {
	m := priceMove()
	m.Releases = move.Releases{WriteBoth: 42, ReadNew: 43, WriteNew: 44, Contracted: 45}
	return m
}

func TestTrackerRunStopsWhenTooOld(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := releasedMove()
		e := newEnv(t, db, 20, m)
		e.register("a", 44, move.Legacy)
		e.advance(move.WriteBoth)
		tr42, err := dualwrite.NewTracker(e.ctx, db, 42, []move.Move{m})
		if err != nil {
			t.Fatal(err)
		}
		e.ack("a", move.WriteBoth)
		if _, err := e.mg.Backfill(e.ctx, m.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := e.mg.Verify(e.ctx, m.Name); err != nil {
			t.Fatal(err)
		}
		e.advance(move.ReadNew)
		e.ack("a", move.ReadNew)
		e.advance(move.WriteNew) // release 42 can only write both: two behind

		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		defer cancel()
		var heard []error
		err = tr42.Run(ctx, 10*time.Millisecond, func(err error) { heard = append(heard, err) })
		var too *dualwrite.TooOldError
		if !errors.As(err, &too) || too.Ledger != move.WriteNew || too.Can != move.WriteBoth || ctx.Err() != nil {
			t.Fatalf("Run two phases behind returned %v (ctx %v)", err, ctx.Err())
		}
		if len(heard) != 1 || !errors.Is(heard[0], dualwrite.ErrTooOld) {
			t.Fatalf("onError heard %v", heard)
		}
	})
}

// lockProbe is a registry source that records whether the move's lock was
// held whenever a snapshot was read.
type lockProbe struct {
	services.Source
	t      *testing.T
	db     *dialect.DB
	move   string
	held   []bool
	active bool
}

func (p *lockProbe) Snapshot(ctx context.Context) (services.Snapshot, error) {
	if p.active {
		p.held = append(p.held, lockHeld(p.t, p.db, p.move))
	}
	return p.Source.Snapshot(ctx)
}

// lockHeld reports whether another connection holds tandem's lock for the
// move, without waiting for it.
func lockHeld(t *testing.T, db *dialect.DB, name string) bool {
	t.Helper()
	ctx := context.Background()
	if db.Engine() == dialect.SQLite {
		// SQLite's lock is its write transaction: try one without waiting.
		conn, err := db.Connx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 0`); err != nil {
			t.Fatal(err)
		}
		defer conn.ExecContext(ctx, `PRAGMA busy_timeout = 10000`) //nolint:errcheck
		if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
			return true
		}
		if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
			t.Fatal(err)
		}
		return false
	}
	err := sqldialect.Of(db).Locked(ctx, db.SQLX(), "move:"+name, time.Millisecond, func(context.Context, dialect.Querier) error { return nil })
	if errors.Is(err, dialect.ErrLocked) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return false
}

func TestAdvanceReadsRegistryUnderLock(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := priceMove()
		e := newEnv(t, db, 20, m)
		probe := &lockProbe{Source: e.reg, t: t, db: db, move: m.Name}
		mg, err := dualwrite.New(e.ctx, db, []move.Move{m}, dualwrite.WithRegistry(probe))
		if err != nil {
			t.Fatal(err)
		}
		e.register("a", 1, move.Legacy)
		probe.active = true
		if _, err := mg.Advance(e.ctx, m.Name, move.WriteBoth); err != nil {
			t.Fatal(err)
		}
		if _, err := mg.Advance(e.ctx, m.Name, move.ReadNew); !errors.Is(err, dualwrite.ErrBlocked) {
			t.Fatalf("read-new with a on legacy: %v", err)
		}
		probe.active = false
		if len(probe.held) != 2 || !probe.held[0] || !probe.held[1] {
			t.Fatalf("snapshots read with the lock held: %v", probe.held)
		}
	})
}

func TestExpectFromRefusesAMovedMove(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 20, priceMove())
		e.toWriteNew()
		// A runner read write-both and wants "the next phase", read-new;
		// meanwhile the move went on to write-new, where read-new is a
		// rollback.
		for _, dry := range []bool{true, false} {
			opts := []dualwrite.Option{dualwrite.WithExpectFrom(move.WriteBoth)}
			if dry {
				opts = append(opts, dualwrite.WithDryRun())
			}
			tr, err := e.mg.Advance(e.ctx, e.m.Name, move.ReadNew, opts...)
			var pc *dualwrite.PhaseChangedError
			if !errors.As(err, &pc) || !errors.Is(err, dualwrite.ErrPhaseChanged) || pc.Expected != move.WriteBoth || pc.Actual != move.WriteNew || tr.Done {
				t.Fatalf("dry run %v: %+v %v", dry, tr, err)
			}
			if p := e.phase(); p != move.WriteNew {
				t.Fatalf("phase %s after a refused advance", p)
			}
		}
		if h := e.status().History; len(h) != 3 {
			t.Fatalf("history: %+v", h)
		}
		// The expected phase: the advance goes through.
		if _, err := e.mg.Advance(e.ctx, e.m.Name, move.ReadNew, dualwrite.WithExpectFrom(move.WriteNew)); err != nil {
			t.Fatal(err)
		}
	})
}

// rollbackFirst is a Finalizer that lets a rollback slip in between the
// registry being finalized and the ledger being marked.
type rollbackFirst struct {
	reg *services.Registry
	do  func()
}

func (f *rollbackFirst) Finalize(ctx context.Context, release int64, reason string) error {
	if err := f.reg.Finalize(ctx, release, reason); err != nil {
		return err
	}
	f.do()
	return nil
}

func TestFinalizeLosesToAConcurrentRollback(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 20, priceMove())
		e.toWriteNew()
		fin := &rollbackFirst{reg: e.reg}
		mg, err := dualwrite.New(e.ctx, db, []move.Move{e.m}, dualwrite.WithRegistry(e.reg), dualwrite.WithFinalizer(fin))
		if err != nil {
			t.Fatal(err)
		}
		fin.do = func() { e.advance(move.ReadNew) }
		_, err = mg.Finalize(e.ctx, e.m.Name, "")
		if bs := blockers(t, err); kinds(bs) != "finalize" || !strings.Contains(err.Error(), "it is at read-new") {
			t.Fatalf("finalize after a rollback: %v", err)
		}
		st := e.status()
		if st.Phase != move.ReadNew || st.Finalized || !st.RollbackOpen {
			t.Fatalf("after the race: phase %s, finalized %v, rollback open %v", st.Phase, st.Finalized, st.RollbackOpen)
		}
		// The rollback window is still open: the move can go on, or back.
		if _, err := e.mg.Advance(e.ctx, e.m.Name, move.WriteBoth); !errors.Is(err, dualwrite.ErrBlocked) || errors.Is(err, dualwrite.ErrFinalized) {
			t.Fatalf("rollback to write-both: %v", err)
		}
		// Once it stands at write-new again, Finalize goes through.
		e.ack("a", move.ReadNew)
		e.ack("b", move.ReadNew)
		e.advance(move.WriteNew)
		e.ack("a", move.WriteNew)
		e.ack("b", move.WriteNew)
		fin.do = func() {}
		if rel, err := mg.Finalize(e.ctx, e.m.Name, ""); err != nil || rel != 1 {
			t.Fatalf("finalize: %d %v", rel, err)
		}
	})
}
