package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
)

// fixedPhase acts on one phase for every move.
type fixedPhase struct{ p *move.Phase }

func (f fixedPhase) Begin(string) (move.Phase, func()) { return *f.p, func() {} }

// TestSQLStoreAtEveryPhase writes and reads an item at each phase, and
// checks which column each phase wrote, on every engine.
func TestSQLStoreAtEveryPhase(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		stmt, err := inventory.CreateTableSQL("items")
		if err != nil {
			t.Fatal(err)
		}
		db.MustExec(stmt)
		db.MustExec(`ALTER TABLE items ADD COLUMN price_cents BIGINT`)
		m := inventory.PriceMove("items_price_cents", "items", move.Releases{}, false)
		phase := move.Legacy
		s, err := inventory.NewSQLStore(db, m, fixedPhase{&phase})
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			phase         move.Phase
			wantOld       bool // the old column holds the price after the write
			wantNew       bool
			quantityMilli int64
		}{
			{move.Legacy, true, false, 0},
			{move.WriteBoth, true, true, 0},
			{move.ReadNew, true, true, 0},
			{move.WriteNew, false, true, 7000},
		}
		for i, tt := range tests {
			phase = tt.phase
			id := "item-" + tt.phase.String()
			cents := int64(100 * (i + 3))
			in := &pb.Item{Id: id, Name: "bolt", Quantity: 7, QuantityMilli: tt.quantityMilli, PriceCents: cents}
			if err := s.Put(ctx, in, false); err != nil {
				t.Fatalf("%s: put: %v", tt.phase, err)
			}
			if err := s.Put(ctx, in, true); !errors.Is(err, inventory.ErrExists) {
				t.Fatalf("%s: create-only put of an existing item: %v", tt.phase, err)
			}
			if tt.phase.ReadsNew() == tt.phase.ReadsOld() {
				t.Fatalf("%s reads both or neither", tt.phase)
			}
			got, err := s.Get(ctx, id)
			if err != nil || got.PriceCents != cents || got.Price != cents/100 || got.Quantity != 7 || got.Name != "bolt" {
				t.Fatalf("%s: get %v, %v", tt.phase, got, err)
			}
			var old, nw *int64
			if err := db.QueryRowxContext(ctx, db.Rebind(`SELECT price, price_cents FROM items WHERE id = ?`), id).Scan(&old, &nw); err != nil {
				t.Fatal(err)
			}
			if (old != nil && *old == cents/100) != tt.wantOld || (nw != nil && *nw == cents) != tt.wantNew {
				t.Fatalf("%s: wrote price %v, price_cents %v", tt.phase, old, nw)
			}
		}
		// A 1.0 caller's whole-unit price is stored in cents.
		phase = move.ReadNew
		if err := s.Put(ctx, &pb.Item{Id: "old-caller", Name: "nut", Price: 12}, false); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, "old-caller"); err != nil || got.PriceCents != 1200 {
			t.Fatalf("get %v, %v", got, err)
		}
		if _, err := s.Get(ctx, "nothing"); !errors.Is(err, inventory.ErrNotFound) {
			t.Fatalf("missing item: %v", err)
		}
		// A row the backfill never reached reads as an error at read-new,
		// never as a price of 0.
		db.MustExec(db.Rebind(`INSERT INTO items (id, name, quantity, price) VALUES (?, ?, ?, ?)`), "unmoved", "x", 1, 5)
		if got, err := s.Get(ctx, "unmoved"); err == nil {
			t.Fatalf("an unmoved row read as %v at read-new", got)
		}
		it, err := s.Rename(ctx, "old-caller", "washer")
		if err != nil || it.Name != "washer" {
			t.Fatalf("rename: %v, %v", it, err)
		}
		if _, err := s.Rename(ctx, "nothing", "x"); !errors.Is(err, inventory.ErrNotFound) {
			t.Fatalf("rename of a missing item: %v", err)
		}
	})
}

// countingPhases counts the operations begun and ended, and tells when
// one began.
type countingPhases struct {
	p            move.Phase
	begun, ended atomic.Int64
	began        chan struct{}
}

func (c *countingPhases) Begin(string) (move.Phase, func()) {
	c.begun.Add(1)
	select {
	case c.began <- struct{}{}:
	default:
	}
	return c.p, func() { c.ended.Add(1) }
}

// An operation ends only once its transaction has: until then the
// tracker's heartbeat keeps reporting the phase it began with.
func TestSQLStoreEndsOperationsAfterTheirTransaction(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t, dialect.SQLite)
	stmt, _ := inventory.CreateTableSQL("items")
	db.MustExec(stmt)
	m := inventory.PriceMove("items_price_cents", "items", move.Releases{}, false)
	src := &countingPhases{p: move.Legacy, began: make(chan struct{}, 1)}
	s, err := inventory.NewSQLStore(db, m, src)
	if err != nil {
		t.Fatal(err)
	}
	// Another writer holds SQLite's write lock, so the Put waits inside.
	holder, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, `INSERT INTO items (id, name, quantity) VALUES ('x', 'x', 1)`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- s.Put(ctx, &pb.Item{Id: "a", Name: "a", PriceCents: 100}, false) }()
	<-src.began
	if src.ended.Load() != 0 {
		t.Fatal("the put ended its operation before its transaction")
	}
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if b, e := src.begun.Load(), src.ended.Load(); b != 2 || e != 2 {
		t.Fatalf("%d operations begun, %d ended", b, e)
	}
}

func TestCreateTableSQLRefusesUnsafeNames(t *testing.T) {
	if _, err := inventory.CreateTableSQL(`items; DROP TABLE x`); !errors.Is(err, dialect.ErrBadIdentifier) {
		t.Fatalf("got %v", err)
	}
}

// Two puts of the same new item at once both succeed (a put is an
// upsert, and a retried request may race its own first attempt); two
// create-only puts: exactly one wins, the other gets ErrExists.
func TestSQLStoreConcurrentPutsOfANewItem(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		stmt, _ := inventory.CreateTableSQL("items")
		db.MustExec(stmt)
		db.MustExec(`ALTER TABLE items ADD COLUMN price_cents BIGINT`)
		phase := move.WriteBoth
		s, err := inventory.NewSQLStore(db, inventory.PriceMove("items_price_cents", "items", move.Releases{}, false), fixedPhase{&phase})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			for _, createOnly := range []bool{false, true} {
				id := fmt.Sprintf("race-%d-%v", i, createOnly)
				errs := make(chan error, 2)
				for g := range 2 {
					go func() {
						errs <- s.Put(ctx, &pb.Item{Id: id, Name: fmt.Sprint(g), PriceCents: 100}, createOnly)
					}()
				}
				e1, e2 := <-errs, <-errs
				switch {
				case !createOnly && (e1 != nil || e2 != nil):
					t.Fatalf("%s: concurrent puts: %v, %v", id, e1, e2)
				case createOnly && (e1 == nil) == (e2 == nil):
					t.Fatalf("%s: concurrent create-only puts: %v, %v", id, e1, e2)
				case createOnly && !errors.Is(e1, inventory.ErrExists) && !errors.Is(e2, inventory.ErrExists):
					t.Fatalf("%s: the losing create-only put: %v, %v", id, e1, e2)
				}
			}
		}
	})
}

// A put check sees the stored item inside the transaction and can refuse
// the write: nothing is written and its error comes back as is.
func TestSQLStorePutCheck(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		stmt, _ := inventory.CreateTableSQL("items")
		db.MustExec(stmt)
		phase := move.Legacy
		errOlder := errors.New("older than stored")
		s, err := inventory.NewSQLStore(db, inventory.PriceMove("items_price_cents", "items", move.Releases{}, false), fixedPhase{&phase},
			inventory.WithPutCheck(func(stored, in *pb.Item) error {
				if in.Quantity < stored.Quantity {
					return errOlder
				}
				return nil
			}))
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			qty     int64
			wantErr error
			wantQty int64
		}{{5, nil, 5}, {7, nil, 7}, {6, errOlder, 7}, {7, nil, 7}} {
			err := s.Put(ctx, &pb.Item{Id: "a", Name: fmt.Sprint(tt.qty), Quantity: tt.qty, Price: tt.qty}, false)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr != nil && err != tt.wantErr) {
				t.Fatalf("put quantity %d: %v, want %v", tt.qty, err, tt.wantErr)
			}
			got, err := s.Get(ctx, "a")
			if err != nil || got.Quantity != tt.wantQty || got.PriceCents != tt.wantQty*100 || got.Name != fmt.Sprint(tt.wantQty) {
				t.Fatalf("after quantity %d: %v, %v", tt.qty, got, err)
			}
		}
	})
}

// WithApplied hears of every put that committed, with when its commit
// began, and of no put that was refused or failed.
func TestSQLStoreWithApplied(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		stmt, _ := inventory.CreateTableSQL("items")
		db.MustExec(stmt)
		phase := move.Legacy
		type rec struct {
			qty int64
			at  time.Time
		}
		var got []rec
		s, err := inventory.NewSQLStore(db, inventory.PriceMove("items_price_cents", "items", move.Releases{}, false), fixedPhase{&phase},
			inventory.WithPutCheck(func(stored, in *pb.Item) error {
				if in.Quantity < stored.Quantity {
					return inventory.ErrExists
				}
				return nil
			}),
			inventory.WithApplied(func(it *pb.Item, at time.Time) { got = append(got, rec{it.Quantity, at}) }))
		if err != nil {
			t.Fatal(err)
		}
		put := func(qty int64, createOnly bool) (error, time.Time, time.Time) {
			before := time.Now()
			err := s.Put(ctx, &pb.Item{Id: "a", Name: "a", Quantity: qty, Price: 1}, createOnly)
			return err, before, time.Now()
		}
		err1, b1, a1 := put(5, false)
		err2, _, _ := put(4, false) // refused by the check
		err3, _, _ := put(6, true)  // create-only of an existing item
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err4 := s.Put(cctx, &pb.Item{Id: "a", Name: "a", Quantity: 7, Price: 1}, false) // never ran
		err5, b5, a5 := put(8, false)
		if err1 != nil || err2 == nil || err3 == nil || err4 == nil || err5 != nil {
			t.Fatalf("puts: %v, %v, %v, %v, %v", err1, err2, err3, err4, err5)
		}
		if len(got) != 2 || got[0].qty != 5 || got[1].qty != 8 {
			t.Fatalf("applied %+v, want quantities 5 and 8", got)
		}
		if got[0].at.Before(b1) || got[0].at.After(a1) || got[1].at.Before(b5) || got[1].at.After(a5) {
			t.Fatalf("applied at %+v, outside the puts' calls [%v, %v] and [%v, %v]", got, b1, a1, b5, a5)
		}
	})
}
