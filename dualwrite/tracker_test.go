package dualwrite_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
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
		// for it. A starting one is refused: it would write old only,
		// perhaps behind the backfill.
		if err := tr41.Refresh(e.ctx); err != nil {
			t.Fatalf("running release 41 one phase behind: %v", err)
		}
		_, err = dualwrite.NewTracker(e.ctx, db, 41, []move.Move{m})
		var too *dualwrite.TooOldError
		if !errors.As(err, &too) || !too.Starting || !too.OldOnly || too.Need != 42 || !strings.Contains(err.Error(), "run release 42 or newer") || !strings.Contains(err.Error(), "writing old only") {
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
		// Release 42 carries write-both only: running or starting, it lags
		// one phase, allowed (it writes both), and its acknowledgement
		// holds the next transition.
		if err := tr42.Refresh(e.ctx); err != nil || tr42.Phase(m.Name) != move.WriteBoth {
			t.Fatalf("release 42: %v %v", tr42.Phase(m.Name), err)
		}
		if tr, err := dualwrite.NewTracker(e.ctx, db, 42, []move.Move{m}); err != nil || tr.Phase(m.Name) != move.WriteBoth {
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

// Which builds may start at each ledger phase: one phase behind is safe
// except on legacy, which writes old only, once the move left legacy; two
// phases behind never is. A killed release 43 (up to read-new) comes back
// at 43 while the ledger is at write-new, and contract waits for it.
func TestTrackerStartRule(t *testing.T) {
	type start struct {
		release int64
		acts    move.Phase // when it may start
		need    int64      // when refused: the release named
		oldOnly bool
	}
	steps := []struct {
		ledger move.Phase
		starts []start
	}{
		{move.Legacy, []start{{41, move.Legacy, 0, false}, {44, move.Legacy, 0, false}}},
		{move.WriteBoth, []start{{41, 0, 42, true}, {42, move.WriteBoth, 0, false}, {44, move.WriteBoth, 0, false}}},
		{move.ReadNew, []start{{41, 0, 42, false}, {42, move.WriteBoth, 0, false}, {43, move.ReadNew, 0, false}}},
		{move.WriteNew, []start{{41, 0, 43, false}, {42, 0, 43, false}, {43, move.ReadNew, 0, false}, {44, move.WriteNew, 0, false}}},
	}
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := releasedMove()
		e := newEnv(t, db, 20, m)
		e.register("a", 44, move.Legacy)
		for _, st := range steps {
			if st.ledger != move.Legacy {
				e.advance(st.ledger)
				e.ack("a", st.ledger)
			}
			if st.ledger == move.WriteBoth {
				if _, err := e.mg.Backfill(e.ctx, m.Name); err != nil {
					t.Fatal(err)
				}
				if _, err := e.mg.Verify(e.ctx, m.Name); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range st.starts {
				tr, err := dualwrite.NewTracker(e.ctx, db, s.release, []move.Move{m})
				var too *dualwrite.TooOldError
				switch {
				case s.need == 0 && err != nil:
					t.Errorf("at %s, release %d refused: %v", st.ledger, s.release, err)
				case s.need == 0 && tr.Phase(m.Name) != s.acts:
					t.Errorf("at %s, release %d acts on %s, want %s", st.ledger, s.release, tr.Phase(m.Name), s.acts)
				case s.need != 0 && !errors.As(err, &too):
					t.Errorf("at %s, release %d started: %v", st.ledger, s.release, err)
				case s.need != 0 && (too.Need != s.need || !too.Starting || too.OldOnly != s.oldOnly || !errors.Is(err, dualwrite.ErrTooOld)):
					t.Errorf("at %s, release %d: %+v (%v)", st.ledger, s.release, too, err)
				}
			}
		}
		// The release-43 instance that came back reports read-new: the
		// move waits for it before contract.
		tr43, err := dualwrite.NewTracker(e.ctx, db, 43, []move.Move{m})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.reg.Register(e.ctx, services.Instance{ID: "b", Service: "shop", Host: "h-b", Release: 43, Phases: tr43.Phases()}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.mg.Finalize(e.ctx, m.Name, "test"); err == nil {
			t.Fatal("finalized with a release-43 instance acting on read-new")
		}
		_, err = e.mg.Advance(e.ctx, m.Name, move.Contracted)
		if bs := blockers(t, err); !strings.Contains(kinds(bs), "instances") || !strings.Contains(err.Error(), "b (shop on h-b, release 43") {
			t.Fatalf("contract with a release-43 instance: %v", err)
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

// An operation keeps the phase Begin gave it until done, and until then
// Phases reports that phase even once the tracker holds a newer one: an
// instance must not acknowledge write-both while a write it began at legacy
// (old only) can still commit behind the backfill, nor read-new after a
// rollback while a write begun at write-new (new only) can still commit
// behind the reverse backfill.
func TestTrackerReportsRunningOperations(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := releasedMove()
		e := newEnv(t, db, 20, m)
		r, err := dualwrite.NewRouter(m, db.Engine())
		if err != nil {
			t.Fatal(err)
		}
		tr, err := dualwrite.NewTracker(e.ctx, db, 44, []move.Move{m})
		if err != nil {
			t.Fatal(err)
		}
		report := func() string {
			t.Helper()
			p := tr.Phases()[m.Name]
			if err := e.reg.Heartbeat(e.ctx, "a", services.Heartbeat{Phases: tr.Phases()}); err != nil {
				t.Fatal(err)
			}
			return p
		}
		e.register("a", 44, move.Legacy)
		old, oldDone := tr.Begin(m.Name)
		if old != move.Legacy {
			t.Fatalf("began at %s before any advance", old)
		}
		e.advance(move.WriteBoth)
		if err := tr.Refresh(e.ctx); err != nil || tr.Phase(m.Name) != move.WriteBoth {
			t.Fatalf("refresh: %s %v", tr.Phase(m.Name), err)
		}
		if got := report(); got != "legacy" {
			t.Fatalf("reported %s while a legacy operation runs", got)
		}
		// New operations act on the new phase; ending one changes nothing.
		if p, done := tr.Begin(m.Name); p != move.WriteBoth {
			t.Fatalf("began at %s after the refresh", p)
		} else {
			done()
		}
		if got := report(); got != "legacy" {
			t.Fatalf("reported %s while a legacy operation runs", got)
		}
		if _, err := e.mg.Backfill(e.ctx, m.Name); !errors.Is(err, dualwrite.ErrBlocked) {
			t.Fatalf("backfill while a legacy operation runs: %v", err)
		}
		// The legacy operation commits its old-only write, then ends.
		if err := r.Write(e.ctx, db, old, int64(9900), 1); err != nil {
			t.Fatal(err)
		}
		oldDone()
		if got := report(); got != "write-both" {
			t.Fatalf("reported %s once nothing runs", got)
		}
		if _, err := e.mg.Backfill(e.ctx, m.Name); err != nil {
			t.Fatal(err)
		}
		if v, err := e.mg.Verify(e.ctx, m.Name); err != nil || v.Mismatches != 0 {
			t.Fatalf("verify: %+v %v", v, err)
		}
		e.advance(move.ReadNew)
		if v, err := r.Read(e.ctx, db, move.ReadNew, 1); err != nil || !dualwrite.SameValue(v, 9900) {
			t.Fatalf("read-new reads %v (%v), want 9900", v, err)
		}
		if err := tr.Refresh(e.ctx); err != nil {
			t.Fatal(err)
		}
		report()
		e.advance(move.WriteNew)
		if err := tr.Refresh(e.ctx); err != nil {
			t.Fatal(err)
		}
		report()

		// Back to read-new: an operation begun at write-new holds the
		// report at write-new, so the reverse backfill waits for it.
		newOnly, newDone := tr.Begin(m.Name)
		if newOnly != move.WriteNew {
			t.Fatalf("began at %s at write-new", newOnly)
		}
		e.advance(move.ReadNew)
		if err := tr.Refresh(e.ctx); err != nil || tr.Phase(m.Name) != move.ReadNew {
			t.Fatalf("refresh: %s %v", tr.Phase(m.Name), err)
		}
		if got := report(); got != "write-new" {
			t.Fatalf("reported %s while a write-new operation runs", got)
		}
		if _, err := e.mg.Backfill(e.ctx, m.Name, dualwrite.WithReverse()); !errors.Is(err, dualwrite.ErrBlocked) {
			t.Fatalf("reverse backfill while a write-new operation runs: %v", err)
		}
		newDone()
		if got := report(); got != "read-new" {
			t.Fatalf("reported %s once nothing runs", got)
		}
		if _, err := e.mg.Backfill(e.ctx, m.Name, dualwrite.WithReverse()); err != nil {
			t.Fatal(err)
		}
	})
}

// Begin and BeginWrite and their done touch only atomics: no allocation on
// the hot path, and a move the tracker does not know acts on legacy.
func TestTrackerBeginAllocatesNothing(t *testing.T) {
	db := dbtest.Open(t, dialect.SQLite)
	ensureLedger(t, db)
	m := releasedMove()
	tr, err := dualwrite.NewTracker(context.Background(), db, 44, []move.Move{m})
	if err != nil {
		t.Fatal(err)
	}
	begins := map[string]func(name string){
		"Begin": func(name string) { _, done := tr.Begin(name); done() },
		// BeginWrite likewise, while nothing is frozen.
		"BeginWrite": func(name string) {
			_, done, err := tr.BeginWrite(name)
			if err != nil {
				t.Fatal(err)
			}
			done()
		},
	}
	for op, begin := range begins {
		for _, name := range []string{m.Name, "unknown"} {
			if n := testing.AllocsPerRun(100, func() { begin(name) }); n != 0 {
				t.Errorf("%s(%q) allocates %v times", op, name, n)
			}
		}
	}
	if err := tr.Wait(context.Background()); err != nil {
		t.Fatal(err) // every done was called
	}
	if p, done := tr.Begin("unknown"); p != move.Legacy {
		t.Errorf("unknown move: %s", p)
	} else {
		done()
	}
	if _, ok := tr.Phases()["unknown"]; ok {
		t.Error("Phases reports a move the tracker does not know")
	}
}

func TestTrackerDoneTwicePanics(t *testing.T) {
	db := dbtest.Open(t, dialect.SQLite)
	ensureLedger(t, db)
	m := releasedMove()
	tr, err := dualwrite.NewTracker(context.Background(), db, 44, []move.Move{m})
	if err != nil {
		t.Fatal(err)
	}
	_, done := tr.Begin(m.Name)
	done()
	defer func() {
		if recover() == nil {
			t.Fatal("a second done did not panic")
		}
	}()
	done()
}

// Wait returns once every operation has ended, or when its context does.
func TestTrackerWait(t *testing.T) {
	db := dbtest.Open(t, dialect.SQLite)
	ensureLedger(t, db)
	m := releasedMove()
	tr, err := dualwrite.NewTracker(context.Background(), db, 44, []move.Move{m})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Wait(context.Background()); err != nil {
		t.Fatalf("wait with nothing running: %v", err)
	}
	_, done1 := tr.Begin(m.Name)
	_, done2 := tr.Begin(m.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := tr.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with operations running: %v", err)
	}
	waited := make(chan error)
	go func() { waited <- tr.Wait(context.Background()) }()
	done1()
	select {
	case err := <-waited:
		t.Fatalf("wait returned with an operation running: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	done2()
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
}

// Many goroutines begin and end operations while another refreshes the
// tracker across a transition: a report never shows a phase above one an
// operation still acts on.
func TestTrackerBeginConcurrent(t *testing.T) {
	db := dbtest.Open(t, dialect.SQLite)
	m := releasedMove()
	e := newEnv(t, db, 5, m)
	tr, err := dualwrite.NewTracker(e.ctx, db, 44, []move.Move{m})
	if err != nil {
		t.Fatal(err)
	}
	e.register("a", 44, move.Legacy)
	e.advance(move.WriteBoth)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan string, 8)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p, done := tr.Begin(m.Name)
				if rep, _ := move.ParsePhase(tr.Phases()[m.Name]); rep > p {
					select {
					case errs <- fmt.Sprintf("reported %s while an operation acts on %s", rep, p):
					default:
					}
				}
				done()
			}
		})
	}
	for range 20 {
		if err := tr.Refresh(e.ctx); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	if err := tr.Wait(e.ctx); err != nil || tr.Phases()[m.Name] != "write-both" {
		t.Fatalf("after the operations: %v %v", tr.Phases(), err)
	}
}

func BenchmarkTrackerBegin(b *testing.B) {
	db := dbtest.Open(b, dialect.SQLite)
	m := releasedMove()
	tr, err := dualwrite.NewTracker(context.Background(), db, 44, []move.Move{m})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, done := tr.Begin(m.Name)
			done()
		}
	})
}

// A move first recorded by an application's tracker, then advanced by the
// operator's Manager (as `tandem moves advance` loads it), reaches the
// ledger: the transition is not lost for want of a ledger row.
func TestAdvanceOfAMoveATrackerRecorded(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		m := priceMove()
		m.Releases = move.Releases{WriteBoth: 42, ReadNew: 43, WriteNew: 44, Contracted: 44}
		if _, err := db.ExecContext(ctx, `CREATE TABLE products (id BIGINT PRIMARY KEY, name VARCHAR(50), price DECIMAL(12,2))`); err != nil {
			t.Fatal(err)
		}
		if _, err := schema.Ensure(ctx, db, append(services.Tables(), dualwrite.Tables()...)); err != nil {
			t.Fatal(err)
		}
		tr, err := dualwrite.NewTracker(ctx, db, 42, []move.Move{m})
		if err != nil {
			t.Fatal(err)
		}
		mg, err := dualwrite.Load(ctx, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mg.Advance(ctx, m.Name, move.WriteBoth); err != nil {
			t.Fatal(err)
		}
		if p, err := mg.Phase(ctx, m.Name); err != nil || p != move.WriteBoth {
			t.Fatalf("the ledger says %s (%v) after the advance to write-both", p, err)
		}
		if err := tr.Refresh(ctx); err != nil || tr.Phase(m.Name) != move.WriteBoth {
			t.Fatalf("the tracker acts on %s (%v) after the advance to write-both", tr.Phase(m.Name), err)
		}
	})
}
