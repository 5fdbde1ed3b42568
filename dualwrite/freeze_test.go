package dualwrite_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// copyMove is a second move on the products table, so freezes can name
// one move of two.
func copyMove() move.Move {
	m := priceMove()
	m.Name, m.New.Column = "price_copy", "price_copy"
	return m
}

func freezeEnv(t *testing.T, db *dialect.DB) (*env, *dualwrite.Manager) {
	t.Helper()
	e := newEnv(t, db, 3, priceMove())
	mg, err := dualwrite.New(e.ctx, db, []move.Move{priceMove(), copyMove()}, dualwrite.WithRegistry(e.reg))
	if err != nil {
		t.Fatal(err)
	}
	return e, mg
}

// The freeze ledger, one step after another: what each freeze or thaw
// records, what it refuses (and that a refusal records nothing), and that
// repeating one records nothing.
func TestFreezeLedger(t *testing.T) {
	type step struct {
		name   string
		thaw   bool
		scope  dualwrite.FreezeScope
		reason string
		// want: the state after it (Seq, All, Moves, Reason).
		seq    int64
		all    bool
		moves  []string
		why    string
		errIs  error
		errHas string
	}
	price, cp := "price_cents", "price_copy"
	steps := []step{
		{name: "nothing frozen yet: thaw is a no-op", thaw: true, scope: dualwrite.FreezeScope{All: true}, seq: 0},
		{name: "empty reason", scope: dualwrite.FreezeScope{Moves: []string{price}}, reason: "  ", errIs: dualwrite.ErrFreezeInput, errHas: "--reason"},
		{name: "no scope", reason: "x", errIs: dualwrite.ErrFreezeInput, errHas: "--move NAME"},
		{name: "moves and all", scope: dualwrite.FreezeScope{All: true, Moves: []string{price}}, reason: "x", errIs: dualwrite.ErrFreezeInput, errHas: "not both"},
		{name: "unknown move", scope: dualwrite.FreezeScope{Moves: []string{"nosuch"}}, reason: "x", errIs: dualwrite.ErrUnknownMove, errHas: `"nosuch"`},
		{name: "thaw of an unknown move", thaw: true, scope: dualwrite.FreezeScope{Moves: []string{"nosuch"}}, errIs: dualwrite.ErrUnknownMove},
		{name: "freeze one move", scope: dualwrite.FreezeScope{Moves: []string{price, price}}, reason: "offline upgrade", seq: 1, moves: []string{price}, why: "offline upgrade"},
		{name: "the same again records nothing", scope: dualwrite.FreezeScope{Moves: []string{price}}, reason: "offline upgrade", seq: 1, moves: []string{price}, why: "offline upgrade"},
		{name: "a second move adds to it", scope: dualwrite.FreezeScope{Moves: []string{cp}}, reason: "restore", seq: 2, moves: []string{price, cp}, why: "restore"},
		{name: "thaw one of two", thaw: true, scope: dualwrite.FreezeScope{Moves: []string{price}}, seq: 3, moves: []string{cp}, why: "restore"},
		{name: "thaw what is not frozen", thaw: true, scope: dualwrite.FreezeScope{Moves: []string{price}}, seq: 3, moves: []string{cp}, why: "restore"},
		{name: "freeze every move", scope: dualwrite.FreezeScope{All: true}, reason: "major API version", seq: 4, all: true, moves: []string{}, why: "major API version"},
		{name: "a move under an all freeze records nothing new", scope: dualwrite.FreezeScope{Moves: []string{price}}, reason: "major API version", seq: 4, all: true, moves: []string{}, why: "major API version"},
		{name: "thaw of a move under an all freeze is refused", thaw: true, scope: dualwrite.FreezeScope{Moves: []string{price}}, errIs: dualwrite.ErrFreezeInput, errHas: "tandem thaw --all"},
		{name: "thaw all", thaw: true, scope: dualwrite.FreezeScope{All: true}, seq: 5, moves: []string{}},
		{name: "thaw all again", thaw: true, scope: dualwrite.FreezeScope{All: true}, seq: 5, moves: []string{}},
	}
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e, mg := freezeEnv(t, db)
		var since time.Time
		for _, s := range steps {
			before, err := dualwrite.ReadFreeze(e.ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			var st dualwrite.FreezeState
			if s.thaw {
				st, err = mg.Thaw(e.ctx, s.scope)
			} else {
				st, err = mg.Freeze(e.ctx, s.scope, s.reason)
			}
			if s.errIs != nil {
				if !errors.Is(err, s.errIs) || !strings.Contains(err.Error(), s.errHas) {
					t.Fatalf("%s: err %v, want %v with %q", s.name, err, s.errIs, s.errHas)
				}
				after, err := dualwrite.ReadFreeze(e.ctx, db)
				if err != nil || after.Seq != before.Seq {
					t.Fatalf("%s: a refusal recorded state %d (was %d): %v", s.name, after.Seq, before.Seq, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			read, err := dualwrite.ReadFreeze(e.ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			for _, got := range []dualwrite.FreezeState{st, read} {
				if got.Seq != s.seq || got.All != s.all || !slices.Equal(got.Moves, s.moves) || got.Reason != s.why {
					t.Fatalf("%s: state %+v, want seq %d all %v moves %v reason %q", s.name, got, s.seq, s.all, s.moves, s.why)
				}
			}
			switch {
			case !read.Frozen() && !read.Since.IsZero():
				t.Fatalf("%s: thawed with a since %s", s.name, read.Since)
			case read.Frozen() && since.IsZero():
				since = read.Since
			case read.Frozen() && !read.Since.Equal(since):
				t.Fatalf("%s: since moved from %s to %s: the freeze in force began at the first", s.name, since, read.Since)
			case !read.Frozen():
				since = time.Time{}
			}
		}
		hist, err := dualwrite.FreezeHistory(e.ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, h := range hist {
			actions = append(actions, h.Action)
		}
		if want := []string{"freeze", "freeze", "thaw", "freeze", "thaw"}; !slices.Equal(actions, want) {
			t.Fatalf("history %v, want %v", actions, want)
		}
	})
}

// FrozenError carries the freeze and matches ErrFrozen, also through
// move.ErrFrozen, the value an RPC client's error matches.
func TestFrozenError(t *testing.T) {
	since := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		st   dualwrite.FreezeState
		move string
		nil  bool
		has  string
	}{
		{st: dualwrite.FreezeState{Seq: 1, Moves: []string{"a"}, Reason: "restore", Since: since}, move: "a", has: "writes on move a are frozen since 2026-12-01T12:00:00Z: restore"},
		{st: dualwrite.FreezeState{Seq: 1, Moves: []string{"a"}, Reason: "restore", Since: since}, move: "b", nil: true},
		{st: dualwrite.FreezeState{Seq: 2, All: true, Reason: "major", Since: since}, move: "anything", has: "frozen on every move"},
		{st: dualwrite.FreezeState{Seq: 3}, move: "a", nil: true},
	}
	for _, tt := range tests {
		err := tt.st.Err(tt.move)
		if tt.nil {
			if err != nil {
				t.Errorf("%+v %s: %v, want nil", tt.st, tt.move, err)
			}
			continue
		}
		var fe *dualwrite.FrozenError
		if !errors.As(err, &fe) || !errors.Is(err, dualwrite.ErrFrozen) || !errors.Is(err, move.ErrFrozen) || fe.Reason != tt.st.Reason || !fe.Since.Equal(since) || fe.Seq != tt.st.Seq || !fe.Frozen() {
			t.Errorf("%+v %s: %#v", tt.st, tt.move, err)
		}
		if !strings.Contains(err.Error(), tt.has) || !strings.Contains(err.Error(), "tandem thaw") {
			t.Errorf("message %q, want %q and the thaw", err.Error(), tt.has)
		}
	}
}

// The tracker sees a freeze at its refresh; BeginWrite refuses frozen
// moves and lets others and reads through; FreezeAck waits for writes
// begun before to end, and a thaw is acknowledged at once.
func TestTrackerFreeze(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e, mg := freezeEnv(t, db)
		ctx := e.ctx
		tr, err := dualwrite.NewTracker(ctx, db, 1, []move.Move{priceMove(), copyMove()})
		if err != nil {
			t.Fatal(err)
		}
		if a := tr.FreezeAck(); a != 0 {
			t.Fatalf("ack before any freeze: %d", a)
		}
		_, inFlight, err := tr.BeginWrite("price_cents")
		if err != nil {
			t.Fatal(err)
		}
		st, err := mg.Freeze(ctx, dualwrite.FreezeScope{Moves: []string{"price_cents"}}, "offline upgrade")
		if err != nil {
			t.Fatal(err)
		}
		// Not refreshed yet: the tracker holds no freeze.
		if _, done, err := tr.BeginWrite("price_cents"); err != nil {
			t.Fatalf("before the refresh: %v", err)
		} else {
			done()
		}
		if err := tr.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if got := tr.Freeze(); got.Seq != st.Seq || !got.Covers("price_cents") {
			t.Fatalf("tracker holds %+v", got)
		}
		_, done, err := tr.BeginWrite("price_cents")
		var fe *dualwrite.FrozenError
		if !errors.As(err, &fe) || fe.Reason != "offline upgrade" || fe.Move != "price_cents" {
			t.Fatalf("a write on a frozen move: %v", err)
		}
		done() // does nothing
		if _, done, err := tr.BeginWrite("price_copy"); err != nil {
			t.Fatalf("a write on a move not frozen: %v", err)
		} else {
			done()
		}
		if _, done := tr.Begin("price_cents"); true {
			done() // reads are never refused
		}
		// A write begun before the freeze still runs: the ack waits.
		if a := tr.FreezeAck(); a != 0 {
			t.Fatalf("acknowledged state %d while a write begun before runs", a)
		}
		inFlight()
		if a := tr.FreezeAck(); a != st.Seq {
			t.Fatalf("ack %d once the write ended, want %d", a, st.Seq)
		}
		// Every move frozen: names the tracker does not know are refused
		// too, and an unknown write begun before holds the ack back.
		_, other, err := tr.BeginWrite("outside_any_move")
		if err != nil {
			t.Fatal(err)
		}
		all, err := mg.Freeze(ctx, dualwrite.FreezeScope{All: true}, "major API version")
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tr.BeginWrite("outside_any_move"); !errors.Is(err, dualwrite.ErrFrozen) {
			t.Fatalf("an unknown name under an all freeze: %v", err)
		}
		if a := tr.FreezeAck(); a != st.Seq {
			t.Fatalf("ack %d with a write of an unknown name running, want still %d", a, st.Seq)
		}
		other()
		if a := tr.FreezeAck(); a != all.Seq {
			t.Fatalf("ack %d, want %d", a, all.Seq)
		}
		thaw, err := mg.Thaw(ctx, dualwrite.FreezeScope{All: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if a := tr.FreezeAck(); a != thaw.Seq {
			t.Fatalf("thaw ack %d, want %d", a, thaw.Seq)
		}
		if _, done, err := tr.BeginWrite("price_cents"); err != nil {
			t.Fatalf("after the thaw: %v", err)
		} else {
			done()
		}
		if err := tr.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// FreezeStatus names who acknowledged and who did not, deleted instances
// left out; the registry keeps each instance's acknowledgement.
func TestFreezeStatusAcks(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e, mg := freezeEnv(t, db)
		for _, id := range []string{"a", "b", "c"} {
			e.register(id, 1, move.Legacy)
		}
		st, err := mg.Freeze(e.ctx, dualwrite.FreezeScope{All: true}, "restore")
		if err != nil {
			t.Fatal(err)
		}
		fs, err := mg.FreezeStatus(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if fs.Everywhere() || len(fs.Pending) != 3 {
			t.Fatalf("nobody acknowledged yet: %+v", fs)
		}
		if err := e.reg.Heartbeat(e.ctx, "a", services.Heartbeat{Freeze: st.Seq}); err != nil {
			t.Fatal(err)
		}
		// A heartbeat that says nothing of the freeze keeps the ack.
		if err := e.reg.Heartbeat(e.ctx, "a", services.Heartbeat{}); err != nil {
			t.Fatal(err)
		}
		if err := e.reg.Delete(e.ctx, "c"); err != nil {
			t.Fatal(err)
		}
		fs, err = mg.FreezeStatus(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if fs.Everywhere() || len(fs.Acked) != 1 || fs.Acked[0].Instance.ID != "a" || len(fs.Pending) != 1 || fs.Pending[0].Instance.ID != "b" {
			t.Fatalf("acked %+v pending %+v", fs.Acked, fs.Pending)
		}
		if err := e.reg.Heartbeat(e.ctx, "b", services.Heartbeat{Freeze: st.Seq}); err != nil {
			t.Fatal(err)
		}
		if fs, err = mg.FreezeStatus(e.ctx); err != nil || !fs.Everywhere() {
			t.Fatalf("every instance acknowledged: %+v %v", fs, err)
		}
		in, err := e.reg.Get(e.ctx, "b")
		if err != nil || in.Freeze != st.Seq {
			t.Fatalf("registry row: %+v %v", in, err)
		}
	})
}

// ReadFreeze on a database whose ledger has no freeze table yet: never
// frozen, and nothing is created.
func TestReadFreezeWithoutTable(t *testing.T) {
	db := dbtest.Open(t, dialect.SQLite)
	st, err := dualwrite.ReadFreeze(context.Background(), db)
	if err != nil || st.Seq != 0 || st.Frozen() {
		t.Fatalf("%+v %v", st, err)
	}
	var n int
	if err := db.GetContext(context.Background(), &n, `SELECT COUNT(*) FROM sqlite_master WHERE name = ?`, dualwrite.FreezeTable); err != nil || n != 0 {
		t.Fatalf("the table exists after a read: %d %v", n, err)
	}
}

// BenchmarkTrackerBeginWrite compares, in one run, Begin with BeginWrite
// with nothing frozen, with another move frozen, and refused: what the
// freeze check costs an operation.
func BenchmarkTrackerBeginWrite(b *testing.B) {
	db := dbtest.Open(b, dialect.SQLite)
	ensureLedger(b, db)
	ctx := context.Background()
	m, other := releasedMove(), copyMove()
	tr, err := dualwrite.NewTracker(ctx, db, 44, []move.Move{m, other})
	if err != nil {
		b.Fatal(err)
	}
	mg, err := dualwrite.New(ctx, db, []move.Move{m, other})
	if err != nil {
		b.Fatal(err)
	}
	run := func(name string, op func()) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					op()
				}
			})
		})
	}
	begin := func() { _, done := tr.Begin(m.Name); done() }
	write := func() {
		_, done, err := tr.BeginWrite(m.Name)
		if err == nil {
			done()
		}
	}
	run("begin", begin)
	run("begin_write", write)
	if _, err := mg.Freeze(ctx, dualwrite.FreezeScope{Moves: []string{other.Name}}, "bench"); err != nil {
		b.Fatal(err)
	}
	if err := tr.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	run("begin_write_other_frozen", write)
	if _, err := mg.Freeze(ctx, dualwrite.FreezeScope{Moves: []string{m.Name}}, "bench"); err != nil {
		b.Fatal(err)
	}
	if err := tr.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	run("begin_write_refused", write)
}
