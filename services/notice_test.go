package services_test

import (
	"context"
	"encoding/json"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/services"
)

// TestNoticesCarryTheInstance: every notice on the cluster's
// ChangedSubject, received from a real NATS server, carries the
// instance's release, state and phases as stored after the change,
// whether the instance reports directly or through a Remote; and a reader
// that knows only the notice's first fields (event, instance, at) decodes
// every notice as before.
func TestNoticesCarryTheInstance(t *testing.T) {
	ctx := context.Background()
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	var (
		mu  sync.Mutex
		now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	reg := newRegistry(t, dbtest.Open(t, dialect.SQLite), services.WithNATS(nc), services.WithClock(clock))
	svc, err := services.Serve(nc, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop() }()
	remote := services.NewRemote(natstest.Connect(t, ns), reg.Cluster())

	sub, err := nc.SubscribeSync(services.ChangedSubject(reg.Cluster()))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	withPhases := inst("a", 42)
	withPhases.Phases = map[string]string{"price": "legacy"}
	for _, tc := range []struct {
		name string
		act  func() error
		want services.Change
	}{
		{"register", func() error { return reg.Register(ctx, withPhases) },
			services.Change{Event: "register", Instance: "a", Release: 42, State: services.StateUp, Phases: map[string]string{"price": "legacy"}}},
		{"state", func() error { return reg.SetState(ctx, "a", services.StateDraining) },
			services.Change{Event: "state", Instance: "a", Release: 42, State: services.StateDraining, Phases: map[string]string{"price": "legacy"}}},
		{"phases, all of them", func() error {
			return reg.Heartbeat(ctx, "a", services.Heartbeat{Phases: map[string]string{"price": "write-both", "volume": "legacy"}})
		},
			services.Change{Event: "phases", Instance: "a", Release: 42, State: services.StateDraining, Phases: map[string]string{"price": "write-both", "volume": "legacy"}}},
		{"back from missing", func() error {
			advance(2 * services.DefaultMissingAfter)
			return reg.Heartbeat(ctx, "a", services.Heartbeat{})
		},
			services.Change{Event: "state", Instance: "a", Release: 42, State: services.StateDraining, Phases: map[string]string{"price": "write-both", "volume": "legacy"}}},
		{"remote register", func() error { return remote.Register(ctx, inst("edge", 43)) },
			services.Change{Event: "register", Instance: "edge", Release: 43, State: services.StateUp}},
		{"remote phases", func() error {
			return remote.Heartbeat(ctx, "edge", services.Heartbeat{Phases: map[string]string{"price": "write-both"}})
		},
			services.Change{Event: "phases", Instance: "edge", Release: 43, State: services.StateUp, Phases: map[string]string{"price": "write-both"}}},
		{"delete", func() error { return reg.Delete(ctx, "a") },
			services.Change{Event: "delete", Instance: "a", Release: 42, State: services.StateDeleted, Phases: map[string]string{"price": "write-both", "volume": "legacy"}}},
		{"finalize", func() error { return reg.Finalize(ctx, 43, "test") },
			services.Change{Event: "finalize", Finalized: 43}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.act(); err != nil {
				t.Fatal(err)
			}
			msg, err := sub.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatalf("no notice: %v", err)
			}
			var got services.Change
			if err := json.Unmarshal(msg.Data, &got); err != nil {
				t.Fatalf("%s: %v", msg.Data, err)
			}
			if got.Event != tc.want.Event || got.Instance != tc.want.Instance || got.Release != tc.want.Release ||
				got.State != tc.want.State || !maps.Equal(got.Phases, tc.want.Phases) || got.Finalized != tc.want.Finalized ||
				!got.At.Equal(clock()) {
				t.Fatalf("notice %s\n got %+v\nwant %+v at %s", msg.Data, got, tc.want, clock())
			}
			// The reader of the first notices: the same three fields,
			// under the same keys, with the same values.
			var old struct {
				Event    string    `json:"event"`
				Instance string    `json:"instance"`
				At       time.Time `json:"at"`
			}
			if err := json.Unmarshal(msg.Data, &old); err != nil || old.Event != tc.want.Event || old.Instance != tc.want.Instance || !old.At.Equal(clock()) {
				t.Fatalf("an old reader decodes %s as %+v (%v)", msg.Data, old, err)
			}
		})
	}
	if msg, err := sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("an unexpected notice: %s", msg.Data)
	}
}
