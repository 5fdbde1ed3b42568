package tandemtest

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// Code is one release's code path acting on phase.
//
// Run calls Old and New on goroutines of their own, where a *testing.T's
// FailNow (and so Fatal, Fatalf, Skip and SkipNow) must not be called. The
// t they receive is therefore not the test's own: Error and Log go to the
// test as usual, and Fatal, Fatalf and FailNow record the failure and end
// only the calling goroutine; Skip is reported as a failure (a release's
// code cannot skip a boundary). A panic is reported as a failure too. Run
// then stops the walk from the test's goroutine before the next step of
// the boundary, so nothing advances past failing code.
type Code func(ctx context.Context, t testing.TB, db *dialect.DB, phase move.Phase)

// codeT is the testing.TB given to Old and New; see Code.
type codeT struct {
	testing.TB
	failed *atomic.Bool
}

func (c codeT) exit() {
	c.failed.Store(true)
	runtime.Goexit() // ends this goroutine only; its deferred calls run
}

func (c codeT) FailNow() {
	c.TB.Fail()
	c.exit()
}

func (c codeT) Fatal(args ...any) {
	c.TB.Helper()
	c.TB.Error(args...)
	c.exit()
}

func (c codeT) Fatalf(format string, args ...any) {
	c.TB.Helper()
	c.TB.Errorf(format, args...)
	c.exit()
}

func (c codeT) SkipNow() {
	c.TB.Helper()
	c.TB.Error("tandemtest: Old and New cannot skip: every boundary runs both releases")
	c.exit()
}

func (c codeT) Skip(args ...any) {
	c.TB.Helper()
	c.TB.Log(args...)
	c.SkipNow()
}

func (c codeT) Skipf(format string, args ...any) {
	c.TB.Helper()
	c.TB.Logf(format, args...)
	c.SkipNow()
}

// Case is what Run checks.
type Case struct {
	Move move.Move
	// Setup creates the application's tables and rows as the legacy
	// release knows them.
	Setup func(ctx context.Context, t testing.TB, db *dialect.DB)
	// Old runs the code of the release before a boundary, New the code of
	// the release after it. They are called again and again, concurrently,
	// for Rounds calls each per boundary.
	Old, New Code
	// App, when set, builds one release's code the way the application
	// wires it, over a real tracker, and replaces Old and New. At each
	// boundary Run starts a dualwrite.Tracker for the old side's release
	// and one for the new side's (dualwrite.NewTracker, as the
	// application's start does), registers each side as an instance whose
	// heartbeats report its tracker's Phases, refreshes both trackers
	// after the transition, and calls App once per side. The Code App
	// returns is run as Old and New are; it should act on the phase its
	// tracker's Begin returns, as the application does (the phase it is
	// given is the least that side acts on: a release that ships more
	// phases moves on with the ledger). So the gates see what the application
	// reports, and an operation that never calls its done fails the walk
	// at the end of its boundary.
	App func(ctx context.Context, t testing.TB, db *dialect.DB, tr *dualwrite.Tracker) Code
	// Check, when set, runs after each boundary with nothing else running,
	// with the phase the ledger reached.
	Check func(ctx context.Context, t testing.TB, db *dialect.DB, phase move.Phase)
	// Rounds is how many times Old and New each run per boundary (default 3).
	Rounds int
	// Backfill options (batch size, ...) for the backfill before read-new.
	Backfill []dualwrite.Option
	// Until stops the walk at this phase (default Contracted).
	Until move.Phase
}

// Boundary reports one boundary Run walked.
type Boundary struct {
	From, To   move.Phase
	Transition dualwrite.Transition
	Backfill   *dualwrite.BackfillResult
	Verify     *dualwrite.VerifyResult
}

// Run walks c.Move through its phases on db, failing t on the first
// closed gate or error, and returns what happened at each boundary.
func Run(t testing.TB, db *dialect.DB, c Case) []Boundary {
	t.Helper()
	ctx := context.Background()
	if c.Rounds <= 0 {
		c.Rounds = 3
	}
	if c.Until == move.Legacy {
		c.Until = move.Contracted
	}
	if c.Setup != nil {
		c.Setup(ctx, t, db)
	}
	if _, err := schema.Ensure(ctx, db, append(services.Tables(), dualwrite.Tables()...)); err != nil {
		t.Fatalf("tandemtest: registry tables: %v", err)
	}
	reg, err := services.New(ctx, db)
	if err != nil {
		t.Fatalf("tandemtest: registry: %v", err)
	}
	mg, err := dualwrite.New(ctx, db, []move.Move{c.Move}, dualwrite.WithRegistry(reg))
	if err != nil {
		t.Fatalf("tandemtest: %v", err)
	}
	name := c.Move.Name
	var out []Boundary
	var live []string
	var oldTr, newTr *dualwrite.Tracker // with App: each side's tracker
	// register puts two instances in the registry: "old" acting on from,
	// "new" acting on to, each at the release that ships its phase.
	register := func(from, to move.Phase) (oldID, newID string) {
		for _, id := range live {
			if err := reg.Delete(ctx, id); err != nil {
				t.Fatalf("tandemtest: delete %s: %v", id, err)
			}
		}
		rel := func(p move.Phase) int64 {
			r := c.Move.Releases.For(p)
			for q := p; r == 0 && q > move.Legacy; q-- {
				r = c.Move.Releases.For(q)
			}
			return max(r, 1)
		}
		oldID, newID = fmt.Sprintf("old-%s", from), fmt.Sprintf("new-%s", to)
		oldPhases, newPhases := map[string]string{name: from.String()}, map[string]string{name: from.String()}
		if c.App != nil {
			var err error
			if oldTr, err = dualwrite.NewTracker(ctx, db, rel(from), []move.Move{c.Move}); err != nil {
				t.Fatalf("tandemtest: %s -> %s: the old release's tracker: %v", from, to, err)
			}
			if newTr, err = dualwrite.NewTracker(ctx, db, rel(to), []move.Move{c.Move}); err != nil {
				t.Fatalf("tandemtest: %s -> %s: the new release's tracker: %v", from, to, err)
			}
			oldPhases, newPhases = oldTr.Phases(), newTr.Phases()
		}
		for _, in := range []services.Instance{
			{ID: oldID, Service: "app", Host: "tandemtest", Release: rel(from), Phases: oldPhases},
			{ID: newID, Service: "app", Host: "tandemtest", Release: rel(to), Phases: newPhases},
		} {
			if err := reg.Register(ctx, in); err != nil {
				t.Fatalf("tandemtest: register %s: %v", in.ID, err)
			}
		}
		live = []string{oldID, newID}
		return oldID, newID
	}
	for from := move.Legacy; from < c.Until; from++ {
		to := from + 1
		b := Boundary{From: from, To: to}
		oldID, newID := register(from, to)
		oldCode, newCode := c.Old, c.New
		if c.App != nil {
			oldCode, newCode = c.App(ctx, t, db, oldTr), c.App(ctx, t, db, newTr)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var failed atomic.Bool
		ct := codeT{TB: t, failed: &failed}
		loop := func(side string, code Code, p move.Phase, rounds int) {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					failed.Store(true)
					t.Errorf("tandemtest: %s release's code acting on %s panicked: %v\n%s", side, p, r, debug.Stack())
				}
			}()
			for i := 0; rounds == 0 || i < rounds; i++ {
				if failed.Load() {
					return
				}
				select {
				case <-stop:
					if rounds == 0 {
						return
					}
				default:
				}
				code(ctx, ct, db, p)
			}
		}
		// The old release keeps running through the transition.
		if oldCode != nil {
			wg.Add(1)
			go loop("old", oldCode, from, 0)
		}
		halt := sync.OnceFunc(func() { close(stop); wg.Wait() })
		fail := func(format string, args ...any) {
			halt()
			t.Fatalf(format, args...)
		}
		// codeFailed stops the walk, on the test's goroutine, once Old or
		// New failed: nothing advances past failing code.
		codeFailed := func(step string) {
			if failed.Load() {
				fail("tandemtest: %s -> %s: stopped before %s: the release code failed (above)", from, to, step)
			}
		}
		if to == move.ReadNew {
			codeFailed("the backfill")
			res, err := mg.Backfill(ctx, name, c.Backfill...)
			if err != nil {
				fail("tandemtest: %s -> %s: backfill: %v", from, to, err)
			}
			b.Backfill = &res
			v, err := mg.Verify(ctx, name)
			if err != nil {
				fail("tandemtest: %s -> %s: verify: %v", from, to, err)
			}
			b.Verify = &v
			if v.Mismatches != 0 {
				fail("tandemtest: %s -> %s: verify found %d mismatch(es), first %+v", from, to, v.Mismatches, v.Listed)
			}
		}
		if to == move.Contracted {
			if _, err := mg.Finalize(ctx, name, "tandemtest"); err != nil {
				fail("tandemtest: finalize: %v", err)
			}
		}
		codeFailed("the transition")
		if c.App != nil {
			// The gate reads what the trackers report, as it would the
			// application's heartbeats.
			for _, side := range []struct {
				id string
				tr *dualwrite.Tracker
			}{{oldID, oldTr}, {newID, newTr}} {
				if err := reg.Heartbeat(ctx, side.id, services.Heartbeat{Phases: side.tr.Phases()}); err != nil {
					fail("tandemtest: heartbeat of %s: %v", side.id, err)
				}
			}
		}
		tr, err := mg.Advance(ctx, name, to, dualwrite.WithNote("tandemtest"))
		if err != nil {
			fail("tandemtest: advance %s -> %s: %v", from, to, err)
		}
		b.Transition = tr
		// The new release picks the phase up and runs beside the old one.
		if c.App == nil {
			if err := reg.Heartbeat(ctx, newID, services.Heartbeat{Phases: map[string]string{name: to.String()}}); err != nil {
				fail("tandemtest: heartbeat: %v", err)
			}
		} else {
			for _, side := range []struct {
				id string
				tr *dualwrite.Tracker
			}{{oldID, oldTr}, {newID, newTr}} {
				if err := side.tr.Refresh(ctx); err != nil {
					fail("tandemtest: %s -> %s: refresh %s's tracker: %v", from, to, side.id, err)
				}
			}
			if p := newTr.Phase(name); p != to {
				fail("tandemtest: %s -> %s: the new release's tracker acts on %s after the transition", from, to, p)
			}
		}
		if newCode != nil {
			wg.Add(1)
			go loop("new", newCode, to, c.Rounds)
		}
		// Let the old side run at least as many rounds beside the new.
		if oldCode != nil {
			wg.Add(1)
			go loop("old", oldCode, from, c.Rounds)
		}
		time.Sleep(time.Millisecond)
		halt()
		codeFailed("the next boundary")
		if c.App != nil {
			// Nothing runs now: an operation still open never called
			// its done, and would hold its instance's heartbeat at that
			// phase for good.
			for _, side := range []struct {
				id string
				tr *dualwrite.Tracker
			}{{oldID, oldTr}, {newID, newTr}} {
				// The code's goroutines have returned, their deferred
				// dones with them: an open operation is a leak, not late.
				wctx, cancel := context.WithTimeout(ctx, time.Second)
				err := side.tr.Wait(wctx)
				cancel()
				if err != nil {
					fail("tandemtest: %s -> %s: %s's code began an operation (tracker.Begin) and never called its done", from, to, side.id)
				}
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		if c.Check != nil {
			c.Check(ctx, t, db, to)
		}
		out = append(out, b)
	}
	return out
}
