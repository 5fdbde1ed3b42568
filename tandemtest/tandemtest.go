package tandemtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// Code is one release's code path acting on phase.
type Code func(ctx context.Context, t testing.TB, db *dialect.DB, phase move.Phase)

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
	// Check, when set, runs after each boundary with nothing else running,
	// with the phase the ledger reached.
	Check func(ctx context.Context, t testing.TB, db *dialect.DB, phase move.Phase)
	// Rounds is how many times Old and New each run per boundary (default 3).
	Rounds int
	// Backfill options (batch size, ...) for the backfill before read-new.
	Backfill []dualwrite.BackfillOption
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
func Run(t *testing.T, db *dialect.DB, c Case) []Boundary {
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
	if _, err := schema.Ensure(ctx, db, services.Tables()); err != nil {
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
		for _, in := range []services.Instance{
			{ID: oldID, Service: "app", Host: "tandemtest", Release: rel(from), Phases: map[string]string{name: from.String()}},
			{ID: newID, Service: "app", Host: "tandemtest", Release: rel(to), Phases: map[string]string{name: from.String()}},
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
		_, newID := register(from, to)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		loop := func(code Code, p move.Phase, rounds int) {
			defer wg.Done()
			for i := 0; rounds == 0 || i < rounds; i++ {
				select {
				case <-stop:
					if rounds == 0 {
						return
					}
				default:
				}
				code(ctx, t, db, p)
			}
		}
		// The old release keeps running through the transition.
		if c.Old != nil {
			wg.Add(1)
			go loop(c.Old, from, 0)
		}
		fail := func(format string, args ...any) {
			close(stop)
			wg.Wait()
			t.Fatalf(format, args...)
		}
		if to == move.ReadNew {
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
		tr, err := mg.Advance(ctx, name, to, dualwrite.Note("tandemtest"))
		if err != nil {
			fail("tandemtest: advance %s -> %s: %v", from, to, err)
		}
		b.Transition = tr
		// The new release picks the phase up and runs beside the old one.
		if err := reg.Heartbeat(ctx, newID, services.Heartbeat{Phases: map[string]string{name: to.String()}}); err != nil {
			fail("tandemtest: heartbeat: %v", err)
		}
		if c.New != nil {
			wg.Add(1)
			go loop(c.New, to, c.Rounds)
		}
		// Let the old side run at least as many rounds beside the new.
		if c.Old != nil {
			wg.Add(1)
			go loop(c.Old, from, c.Rounds)
		}
		time.Sleep(time.Millisecond)
		close(stop)
		wg.Wait()
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
