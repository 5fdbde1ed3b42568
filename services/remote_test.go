package services_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/services"
)

// A node without database credentials registers and heartbeats through
// another node's registry over NATS, and gets the same typed errors.
func TestRemoteRegistryOverNATS(t *testing.T) {
	ctx := context.Background()
	srv := natstest.New(t)
	dbNode := natstest.Connect(t, srv)
	reg := newRegistry(t, dbtest.Open(t, dialect.SQLite), services.WithNATS(dbNode))
	svc, err := services.Serve(dbNode, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()

	remote := services.NewRemote(natstest.Connect(t, srv), reg.Cluster())
	if err := remote.Register(ctx, inst("edge-1", 42, api("volume", "3.2", "3.0"))); err != nil {
		t.Fatal(err)
	}
	if err := remote.Heartbeat(ctx, "edge-1", services.Heartbeat{Phases: map[string]string{"price": "write-both"}}); err != nil {
		t.Fatal(err)
	}
	got, err := reg.Get(ctx, "edge-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Phases["price"] != "write-both" || got.Release != 42 {
		t.Fatalf("registered through NATS: %+v", got)
	}
	snap, err := remote.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Floor().Release != 42 {
		t.Fatalf("remote snapshot floor = %d", snap.Floor().Release)
	}
	// Typed errors survive the trip.
	if err := remote.Register(ctx, inst("edge-1", 42)); !errors.Is(err, services.ErrDuplicateInstance) {
		t.Fatalf("duplicate over NATS: %v", err)
	}
	if err := remote.Heartbeat(ctx, "nobody", services.Heartbeat{}); !errors.Is(err, services.ErrNotFound) {
		t.Fatalf("heartbeat of unknown over NATS: %v", err)
	}
	if err := remote.Heartbeat(ctx, "edge-1", services.Heartbeat{State: "sleeping"}); !errors.Is(err, services.ErrInvalid) {
		t.Fatalf("bad state over NATS: %v", err)
	}
	if err := reg.Finalize(ctx, 42, "test"); err != nil {
		t.Fatal(err)
	}
	var below *services.BelowFinalizedError
	if err := remote.Register(ctx, inst("edge-old", 41)); !errors.As(err, &below) || below.Finalized != 42 {
		t.Fatalf("below finalized over NATS: %v", err)
	}
	// A cache can follow the registry through the remote too.
	cache, err := services.NewCache(ctx, remote, dbNode, services.WithTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	if cache.Floor() != 42 {
		t.Fatalf("cache via remote: floor %d", cache.Floor())
	}
	if err := remote.Deregister(ctx, "edge-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Get(ctx, "edge-1"); err != nil {
		t.Fatal(err)
	}
	if snap, _ := reg.Snapshot(ctx); len(snap.Instances) != 0 {
		t.Fatalf("deregistered instance still live: %+v", snap.Instances)
	}
}

func TestKeepAliveHeartbeatsUntilCancelledOrDeleted(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, dbtest.Open(t, dialect.SQLite))
	if err := reg.Register(ctx, inst("a", 42)); err != nil {
		t.Fatal(err)
	}
	first, _ := reg.Get(ctx, "a")
	kctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- services.KeepAlive(kctx, reg, "a", 10*time.Millisecond, func() services.Heartbeat {
			return services.Heartbeat{Phases: map[string]string{"m": "read-new"}}
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := reg.Get(ctx, "a")
		if got.HeartbeatAt.After(first.HeartbeatAt) && got.Phases["m"] == "read-new" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no heartbeat recorded within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("KeepAlive after cancel = %v, want nil", err)
	}
	// Once an operator deletes the instance, KeepAlive says so.
	go func() { done <- services.KeepAlive(ctx, reg, "a", 10*time.Millisecond, nil) }()
	if err := reg.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, services.ErrNotFound) {
			t.Fatalf("KeepAlive after delete = %v, want ErrNotFound", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("KeepAlive kept going after the instance was deleted")
	}
}

// A heartbeat that changes the phase an instance acts on is announced (it
// can open a move's gate); one that repeats it is not.
func TestPhaseChangeIsAnnounced(t *testing.T) {
	ctx := context.Background()
	nc := natstest.Connect(t, natstest.New(t))
	reg := newRegistry(t, dbtest.Open(t, dialect.SQLite), services.WithNATS(nc))
	if err := reg.Register(ctx, inst("a", 42)); err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync(services.ChangedSubject(reg.Cluster()))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	phases := services.Heartbeat{Phases: map[string]string{"m": "write-both"}}
	for range 2 {
		if err := reg.Heartbeat(ctx, "a", phases); err != nil {
			t.Fatal(err)
		}
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil || !strings.Contains(string(msg.Data), `"event":"phases"`) {
		t.Fatalf("first heartbeat with a new phase: %v %s", err, msg.Data)
	}
	if msg, err := sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("a repeated phase was announced again: %s", msg.Data)
	}
}

// While NATS is down a remote call fails at once, not sent, instead of
// waiting in nats.go's reconnect buffer to run after its caller gave up;
// once NATS is back it works again.
func TestRemoteFailsFastWhileNATSIsDown(t *testing.T) {
	ctx := context.Background()
	ns := natstest.New(t)
	dbNode := natstest.Connect(t, ns)
	reg := newRegistry(t, dbtest.Open(t, dialect.SQLite), services.WithNATS(dbNode))
	svc, err := services.Serve(dbNode, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop() }()
	edge := natstest.Connect(t, ns)
	remote := services.NewRemote(edge, reg.Cluster())
	if err := remote.Register(ctx, inst("edge-1", 42)); err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	for edge.IsConnected() {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	err = remote.Heartbeat(ctx, "edge-1", services.Heartbeat{State: services.StateDraining})
	if !errors.Is(err, services.ErrDisconnected) || time.Since(start) > time.Second {
		t.Fatalf("heartbeat while NATS is down: %v after %s, want ErrDisconnected at once", err, time.Since(start))
	}
	if err := ns.Restart(0); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err = remote.Heartbeat(ctx, "edge-1", services.Heartbeat{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote never worked again after the restart: %v", err)
		}
	}
	// The refused heartbeat was never sent, so it never ran.
	if in, err := reg.Get(ctx, "edge-1"); err != nil || in.State != services.StateUp {
		t.Fatalf("after the restart: %+v %v, want up (the draining heartbeat was refused)", in, err)
	}
}
