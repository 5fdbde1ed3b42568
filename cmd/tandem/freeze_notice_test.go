package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/services"
)

// With --nats, tandem freeze and thaw announce what they record: a
// tracker following the notices (dualwrite.WithNotices) refuses writes at
// once, though its interval is an hour.
func TestFreezeIsAnnounced(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	ns := natstest.New(t)
	url := ns.ClientURL()
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn, db := ledgerDB(t, e)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			reg, err := services.New(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			nc := natstest.Connect(t, ns)
			tr, err := dualwrite.NewTracker(ctx, db, 1, nil, dualwrite.WithNotices(nc, reg.Cluster()))
			if err != nil {
				t.Fatal(err)
			}
			go tr.Run(ctx, time.Hour, nil) //nolint:errcheck // ends with ctx
			for nc.NumSubscriptions() == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			holds := func(seq int64) {
				t.Helper()
				deadline := time.Now().Add(30 * time.Second)
				for tr.Freeze().Seq != seq {
					if time.Now().After(deadline) {
						t.Fatalf("the tracker holds freeze state %d 30s after tandem recorded %d", tr.Freeze().Seq, seq)
					}
					time.Sleep(time.Millisecond)
				}
			}
			must(t, exitOK, "--db", dsn, "--nats", url, "freeze", "--all", "--reason", "restore", "--no-wait")
			holds(1)
			if _, _, err := tr.BeginWrite("anything"); !errors.Is(err, dualwrite.ErrFrozen) {
				t.Fatalf("a write after tandem freeze --nats: %v, want ErrFrozen", err)
			}
			must(t, exitOK, "--db", dsn, "--nats", url, "thaw", "--all", "--no-wait")
			holds(2)
			_, done, err := tr.BeginWrite("anything")
			if err != nil {
				t.Fatalf("a write after tandem thaw --nats: %v", err)
			}
			done()
		})
	}
}
