package rpcver_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// TestRolloutOnANATSCluster runs a rolling upgrade over three NATS nodes
// clustered by routes on loopback: six inventory servers (two per node)
// go from release 41 at API 1.1 to release 42 at 1.2, one at a time, while
// three clients (one per node) call without pause, and three registry
// caches (one per node, one of them through the registry over NATS)
// follow. Half way through, node 1 is killed; it comes back two restarts
// later. Every client's calls succeed again while node 1 is down (their
// connections fail over to the other nodes), and at the end every cache
// holds exactly the database's registry (revision, instances, floor 42,
// cap 1.2) and every client targets 1.2: no change was missed.
func TestRolloutOnANATSCluster(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		cl := natstest.NewCluster(t, 3)
		if _, err := schema.Ensure(ctx, db, services.Tables()); err != nil {
			t.Fatal(err)
		}
		writer := cl.Connect(t, 0)
		reg, err := services.New(ctx, db, services.WithNATS(writer))
		if err != nil {
			t.Fatal(err)
		}
		// The registry over NATS is served from two nodes: a remote
		// caller fails over between them like any micro service's.
		for _, node := range []int{0, 2} {
			svc, err := services.Serve(cl.Connect(t, node), reg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = svc.Stop() })
		}

		store := inventory.NewMemStore()
		const nServers = 6
		servers := make([]*rpcver.Server, nServers)
		start := func(i int, release int64, v rpcver.Version) {
			t.Helper()
			// The registry reporter is the database registry: servers of
			// nodes with credentials. Heartbeats every 500ms.
			servers[i] = startServer(t, cl.Connect(t, i%3), inventoryAt(t, v), store, rpcver.WithRegistry(reg,
				services.Instance{ID: fmt.Sprintf("inv-%d", i), Service: "inventory", Host: fmt.Sprintf("node-%d", i%3), Release: release}, 500*time.Millisecond))
		}
		for i := range nServers {
			start(i, 41, v1_1)
		}

		type follower struct {
			node  int
			cache *services.Cache
		}
		var caches []follower
		for node := range 3 {
			var src services.Source = reg
			if node == 1 {
				src = services.NewRemote(cl.Connect(t, node), reg.Cluster())
			}
			// An hour's TTL: only notices, gaps and reconnects move them.
			c, err := services.NewCache(ctx, src, cl.Connect(t, node), services.WithTTL(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			caches = append(caches, follower{node, c})
		}

		// Callers: one client per node, calling until the test ends.
		type caller struct {
			client   *rpcver.Client
			ok, fail atomic.Int64
		}
		callers := make([]*caller, 3)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for node := range 3 {
			c := &caller{client: newClient(t, cl.Connect(t, node), inventory.API, caches[node].cache)}
			callers[node] = c
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					_, err := inventory.PutItem.Call(cctx, c.client, &pb.PutItemRequest{Item: &pb.Item{Id: fmt.Sprintf("n%d-%d", node, n), PriceCents: 100}})
					cancel()
					if err != nil {
						c.fail.Add(1)
						time.Sleep(10 * time.Millisecond) // a failed call fails fast: do not spin
						continue
					}
					c.ok.Add(1)
				}
			}()
		}
		defer func() {
			close(stop)
			wg.Wait()
		}()
		// waitCalls waits until every caller has n more successful calls.
		waitCalls := func(when string, n int64) {
			t.Helper()
			base := make([]int64, len(callers))
			for i, c := range callers {
				base[i] = c.ok.Load()
			}
			deadline := time.Now().Add(60 * time.Second)
			for i, c := range callers {
				for c.ok.Load() < base[i]+n {
					if time.Now().After(deadline) {
						t.Fatalf("%s: the client on node %d made %d successful calls in 60s (%d failed), want %d", when, i, c.ok.Load()-base[i], c.fail.Load(), n)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		}
		restart := func(i int) {
			t.Helper()
			if err := servers[i].Shutdown(ctx); err != nil {
				t.Fatalf("shut server %d down: %v", i, err)
			}
			start(i, 42, v1_2)
		}

		waitCalls("before the rollout", 20)
		for i := range 3 {
			restart(i)
		}
		cl.Kill(1)
		t.Log("node 1 killed")
		waitCalls("with node 1 down", 20)
		for i := 3; i < 5; i++ {
			restart(i)
		}
		if err := cl.Start(1); err != nil {
			t.Fatal(err)
		}
		t.Log("node 1 back and routed")
		restart(5)
		waitCalls("after node 1 came back", 20)

		want, err := reg.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f := want.Floor().Release; f != 42 {
			t.Fatalf("the database's floor is %d after the rollout, want 42", f)
		}
		deadline := time.Now().Add(60 * time.Second)
		for _, f := range caches {
			for {
				diff := registryDiff(f.cache, want)
				if diff == "" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the cache on node %d never matched the database: %s (stats %+v)", f.node, diff, f.cache.Stats())
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("cache on node %d: %+v", f.node, f.cache.Stats())
		}
		for node, c := range callers {
			for c.client.Target() != v1_2 {
				if time.Now().After(deadline) {
					t.Fatalf("the client on node %d targets %s, want 1.2", node, c.client.Target())
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("client on node %d: %d calls ok, %d failed during the switches", node, c.ok.Load(), c.fail.Load())
		}
	})
}

// registryDiff says how the cache differs from the database's snapshot,
// or "".
func registryDiff(c *services.Cache, want services.Snapshot) string {
	got := c.Snapshot()
	switch {
	case got.Revision != want.Revision:
		return fmt.Sprintf("revision %d, want %d", got.Revision, want.Revision)
	case c.Floor() != want.Floor().Release:
		return fmt.Sprintf("floor %d, want %d", c.Floor(), want.Floor().Release)
	case len(got.Instances) != len(want.Instances):
		return fmt.Sprintf("%d instances, want %d", len(got.Instances), len(want.Instances))
	}
	if v, _ := c.Cap("inventory"); v != want.Caps()["inventory"].Version {
		return fmt.Sprintf("cap %s, want %s", v, want.Caps()["inventory"].Version)
	}
	for i, w := range want.Instances {
		g := got.Instances[i]
		if g.ID != w.ID || g.Revision != w.Revision || g.Release != w.Release || g.Incarnation != w.Incarnation || g.State != w.State {
			return fmt.Sprintf("instance %s: %+v, want %+v", w.ID, g, w)
		}
	}
	return ""
}
