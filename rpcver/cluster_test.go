package rpcver_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/services"
)

// servedBy remembers which items a server's handlers stored.
type servedBy struct {
	inventory.Store
	mu  sync.Mutex
	ids []string
}

func (s *servedBy) Put(ctx context.Context, it *pb.Item, createOnly bool) error {
	s.mu.Lock()
	s.ids = append(s.ids, it.Id)
	s.mu.Unlock()
	return s.Store.Put(ctx, it, createOnly)
}

// TestTwoClustersOneNATS: two clusters share one NATS server and serve
// the same API under the same names, at different versions. Every request
// is served by its own cluster (0 cross-served), each cluster's cap
// follows its own servers only, and a client that knows no cluster is
// served by neither.
func TestTwoClustersOneNATS(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		ns := natstest.New(t)
		type cluster struct {
			name   string
			reg    *services.Registry
			stores []*servedBy
			client *rpcver.Client
		}
		var cs []*cluster
		// Cluster a runs 1.2 servers; cluster b has a 1.1 server too.
		for i, d := range []*dialect.DB{db, dbtest.Open(t, db.Engine())} {
			nc := natstest.Connect(t, ns)
			reg, cache := newRegistry(t, d, nc)
			c := &cluster{name: string(rune('a' + i)), reg: reg}
			apis := []*rpcver.API{inventory.API, inventory.API}
			if i == 1 {
				apis[1] = inventoryAt(t, v1_1)
			}
			for n, api := range apis {
				st := &servedBy{Store: inventory.NewMemStore()}
				c.stores = append(c.stores, st)
				startServer(t, natstest.Connect(t, ns), api, st, rpcver.WithRegistry(reg,
					services.Instance{ID: fmt.Sprintf("inv-%s%d", c.name, n), Service: "inventory", Host: "h", Release: 42}, time.Hour))
			}
			if err := cache.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			c.client = newClient(t, natstest.Connect(t, ns), inventory.API, cache)
			cs = append(cs, c)
		}
		if ta, tb := cs[0].client.Target(), cs[1].client.Target(); ta != v1_2 || tb != v1_1 {
			t.Fatalf("targets %s and %s, want 1.2 (cluster a's own cap) and 1.1", ta, tb)
		}
		const calls = 100
		var wg sync.WaitGroup
		errs := make(chan error, 2*calls)
		for _, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range calls {
					id := fmt.Sprintf("%s-%d", c.name, n)
					if _, err := inventory.PutItem.Call(ctx, c.client, &pb.PutItemRequest{Item: &pb.Item{Id: id, PriceCents: 100}}); err != nil {
						errs <- fmt.Errorf("cluster %s call %d: %w", c.name, n, err)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		cross := 0
		for _, c := range cs {
			served := 0
			for _, st := range c.stores {
				st.mu.Lock()
				for _, id := range st.ids {
					served++
					if !strings.HasPrefix(id, c.name+"-") {
						cross++
					}
				}
				st.mu.Unlock()
			}
			if served != calls {
				t.Errorf("cluster %s served %d requests, want %d", c.name, served, calls)
			}
		}
		if cross != 0 {
			t.Fatalf("%d requests served by another cluster", cross)
		}
		t.Logf("2 clusters (%s, %s) on one NATS, %d calls each: 0 cross-served", cs[0].reg.Cluster(), cs[1].reg.Cluster(), calls)

		// No cluster, no server: the cluster's token is part of every subject.
		bare := newClient(t, natstest.Connect(t, ns), inventory.API, nil)
		_, err := inventory.GetItem.Call(ctx, bare, &pb.GetItemRequest{Id: "a-1"})
		if !errors.Is(err, rpcver.ErrNoServer) {
			t.Fatalf("a client of no cluster: %v, want ErrNoServer", err)
		}
		// A server and a registry that disagree are refused up front.
		if _, err := rpcver.NewServer(natstest.Connect(t, ns), inventory.API, rpcver.WithCluster(cs[1].reg.Cluster()),
			rpcver.WithRegistry(cs[0].reg, services.Instance{ID: "x", Service: "inventory"}, time.Hour)); !errors.Is(err, rpcver.ErrInvalid) {
			t.Fatalf("server of cluster b with cluster a's registry: %v, want ErrInvalid", err)
		}
		if _, err := rpcver.NewClient(natstest.Connect(t, ns), inventory.API, nil, rpcver.WithCluster("a.b")); !errors.Is(err, rpcver.ErrInvalid) {
			t.Fatalf("malformed cluster: %v, want ErrInvalid", err)
		}
	})
}
