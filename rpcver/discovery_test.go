package rpcver_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/services"
)

// srvRequest sends a real micro request ($SRV.INFO, $SRV.STATS) for the
// inventory service and decodes the first answer.
func srvRequest(t *testing.T, nc *nats.Conn, verb string, out any) {
	t.Helper()
	msg, err := nc.Request("$SRV."+verb+".inventory", nil, 5*time.Second)
	if err != nil {
		t.Fatalf("$SRV.%s: %v", verb, err)
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		t.Fatalf("$SRV.%s: %v (%s)", verb, err, msg.Data)
	}
}

// TestDiscoveryMetadata: $SRV.INFO and $SRV.STATS, sent over NATS, carry
// the instance's id, service, host, release, incarnation and phases, the
// same values the registry lists; when a heartbeat reports another phase
// the metadata follows, the service it replaced stops answering, and
// requests sent meanwhile are all served.
func TestDiscoveryMetadata(t *testing.T) {
	ctx := context.Background()
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	reg, _ := newRegistry(t, dbtest.Open(t, dialect.SQLite), nc)
	var phase atomic.Value
	phase.Store("legacy")
	srv := startServer(t, nc, inventory.API, inventory.NewMemStore(),
		rpcver.WithRegistry(reg, services.Instance{ID: "inv-7", Service: "inventory", Host: "node-a", Release: 42}, 10*time.Millisecond),
		rpcver.WithHeartbeat(func() services.Heartbeat {
			return services.Heartbeat{Phases: map[string]string{"price": phase.Load().(string), "volume": "contracted"}}
		}))
	client := newClient(t, nc, inventory.API, nil, rpcver.WithCluster(reg.Cluster()))

	// What `tandem services list` shows of the instance is what micro shows.
	matches := func(md map[string]string, price string) error {
		in, err := reg.Get(ctx, "inv-7")
		if err != nil {
			return err
		}
		want := map[string]string{
			rpcver.MetaInstance: in.ID, rpcver.MetaService: in.Service, rpcver.MetaHost: in.Host,
			rpcver.MetaRelease: strconv.FormatInt(in.Release, 10), rpcver.MetaIncarnation: strconv.FormatInt(in.Incarnation, 10),
			rpcver.MetaPhasePrefix + "price": price, rpcver.MetaPhasePrefix + "volume": "contracted",
			"tandem.api": "inventory", "tandem.cluster": reg.Cluster(),
		}
		for k, v := range want {
			if md[k] != v {
				return errors.New(k + " is " + strconv.Quote(md[k]) + ", want " + strconv.Quote(v))
			}
		}
		return nil
	}
	var info micro.Info
	srvRequest(t, nc, "INFO", &info)
	if err := matches(info.Metadata, "legacy"); err != nil {
		t.Fatalf("$SRV.INFO at start: %v\n%v", err, info.Metadata)
	}
	first := info.ID

	// Requests keep flowing while the service is added again.
	var (
		wg     sync.WaitGroup
		stop   atomic.Bool
		served atomic.Int64
		failed = make(chan error, 1)
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			_, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "x" + strconv.Itoa(i), Price: 1}})
			if err != nil {
				select {
				case failed <- err:
				default:
				}
				return
			}
			served.Add(1)
		}
	}()
	phase.Store("write-both")
	waitFor(t, func() bool {
		var now micro.Info
		srvRequest(t, nc, "INFO", &now)
		return now.Metadata[rpcver.MetaPhasePrefix+"price"] == "write-both" && now.ID != first
	})
	var stats micro.Stats
	srvRequest(t, nc, "STATS", &stats)
	if err := matches(stats.Metadata, "write-both"); err != nil {
		t.Fatalf("$SRV.STATS after the phase change: %v\n%v", err, stats.Metadata)
	}
	if len(stats.Endpoints) != 3 {
		t.Fatalf("$SRV.STATS after the phase change: %d endpoints, want 3", len(stats.Endpoints))
	}
	// The replaced service drains and stops answering.
	waitFor(t, func() bool {
		_, err := nc.Request("$SRV.PING.inventory."+first, nil, time.Second)
		return errors.Is(err, nats.ErrNoResponders)
	})
	if got := srv.Service().Info().ID; got == first {
		t.Fatalf("Service() still returns the replaced service %s", got)
	}
	base := served.Load()
	waitFor(t, func() bool { return served.Load() > base+3 })
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-failed:
		t.Fatalf("a request failed while the metadata changed: %v", err)
	default:
	}
}
