package dualwrite_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// runFollowing starts tr's Run with an interval no test waits for, and
// returns once its subscription to the notices on nc is in place.
func runFollowing(t *testing.T, e *env, tr *dualwrite.Tracker, nc *nats.Conn) {
	t.Helper()
	go tr.Run(e.ctx, time.Hour, nil) //nolint:errcheck // stopped with the test
	t.Cleanup(func() { tr.Stop(nil) })
	if nc == nil {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for nc.NumSubscriptions() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the tracker's Run did not subscribe to the notices")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// A tracker WithNotices refreshes as soon as a freeze or a thaw is
// announced, long before its interval (an hour here); one without waits
// for the interval. The Manager announces through its registry's NATS.
func TestTrackerFollowsFreezeNotices(t *testing.T) {
	ns := natstest.New(t)
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 3, priceMove())
		reg, err := services.New(e.ctx, db, services.WithNATS(natstest.Connect(t, ns)))
		if err != nil {
			t.Fatal(err)
		}
		mg, err := dualwrite.New(e.ctx, db, []move.Move{priceMove()}, dualwrite.WithRegistry(reg))
		if err != nil {
			t.Fatal(err)
		}
		nc := natstest.Connect(t, ns)
		followed, err := dualwrite.NewTracker(e.ctx, db, 42, []move.Move{priceMove()}, dualwrite.WithNotices(nc, reg.Cluster()))
		if err != nil {
			t.Fatal(err)
		}
		deaf, err := dualwrite.NewTracker(e.ctx, db, 42, []move.Move{priceMove()})
		if err != nil {
			t.Fatal(err)
		}
		runFollowing(t, e, followed, nc)
		runFollowing(t, e, deaf, nil)
		sees := func(seq int64) {
			t.Helper()
			deadline := time.Now().Add(30 * time.Second)
			for followed.Freeze().Seq != seq {
				if time.Now().After(deadline) {
					t.Fatalf("the tracker holds freeze state %d 30s after state %d was announced", followed.Freeze().Seq, seq)
				}
				time.Sleep(time.Millisecond)
			}
		}
		st, err := mg.Freeze(e.ctx, dualwrite.FreezeScope{Moves: []string{"price_cents"}}, "restore")
		if err != nil {
			t.Fatal(err)
		}
		sees(st.Seq)
		if _, _, err := followed.BeginWrite("price_cents"); !errors.Is(err, dualwrite.ErrFrozen) {
			t.Fatalf("a write after the notice: %v, want ErrFrozen", err)
		}
		if _, done, err := deaf.BeginWrite("price_cents"); err != nil || deaf.Freeze().Seq != 0 {
			t.Fatalf("the tracker without notices refused (%v) or holds state %d before its interval", err, deaf.Freeze().Seq)
		} else {
			done()
		}
		st, err = mg.Thaw(e.ctx, dualwrite.FreezeScope{All: true})
		if err != nil {
			t.Fatal(err)
		}
		sees(st.Seq)
		_, done, err := followed.BeginWrite("price_cents")
		if err != nil {
			t.Fatalf("a write after the thaw's notice: %v", err)
		}
		done()
	})
}

func TestWithNoticesRefusesBadValues(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 1, priceMove())
		for _, o := range []dualwrite.Option{dualwrite.WithNotices(nil, e.reg.Cluster()), dualwrite.WithNotices(&nats.Conn{}, "no spaces allowed")} {
			if _, err := dualwrite.NewTracker(e.ctx, db, 42, []move.Move{priceMove()}, o); !errors.Is(err, dualwrite.ErrInvalidOption) {
				t.Errorf("NewTracker with a bad WithNotices: %v", err)
			}
		}
		if _, err := dualwrite.New(e.ctx, db, []move.Move{priceMove()}, dualwrite.WithNotices(&nats.Conn{}, e.reg.Cluster())); !errors.Is(err, dualwrite.ErrInvalidOption) {
			t.Errorf("New with WithNotices: %v", err)
		}
	})
}
