package rpcver_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/services"
)

// capsOf is a fixed cap; a real program passes a *services.Cache.
type capsOf map[string]rpcver.Version

func (c capsOf) Cap(api string) (rpcver.Version, bool) { v, ok := c[api]; return v, ok }
func (c capsOf) Refresh(context.Context) error         { return nil }

// printingStore shows what an older server is handed.
type printingStore struct{ inventory.Store }

func (p printingStore) Put(ctx context.Context, it *pb.Item, createOnly bool) error {
	fmt.Printf("1.1 server stores: id=%s labels=%v tags=%v\n", it.Id, it.Labels, it.Tags)
	return p.Store.Put(ctx, it, createOnly)
}

// A 1.2 client in a cluster capped at 1.1: the request is backported on
// the way out and the response upgraded on the way back; a 1.2-only method
// fails before anything is sent.
func Example() {
	ns, err := natstest.Start(0, "")
	if err != nil {
		panic(err)
	}
	defer ns.Stop()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	ctx := context.Background()

	older, _ := inventory.NewAPI(rpcver.WithCurrent(services.MustParseVersion("1.1")))
	srv, _ := rpcver.NewServer(nc, older)
	_ = inventory.Handle(srv, printingStore{inventory.NewMemStore()})
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Shutdown(ctx)

	client, _ := rpcver.NewClient(nc, inventory.API, capsOf{"inventory": services.MustParseVersion("1.1")}, rpcver.WithTimeout(5*time.Second))
	fmt.Println("client speaks", inventory.API.Current(), "and sends at", client.Target())

	resp, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "bolt", Tags: []string{"steel"}}})
	if err != nil {
		panic(err)
	}
	fmt.Printf("client reads: tags=%v labels=%v\n", resp.Item.Tags, resp.Item.Labels)

	_, err = inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "nut"}, CreateOnly: true})
	fmt.Println(errors.Is(err, rpcver.ErrCannotBackport))
	_, err = inventory.RenameItem.Call(ctx, client, &pb.RenameItemRequest{Id: "bolt", Name: "m8"})
	fmt.Println(err)
	// Output:
	// client speaks 1.2 and sends at 1.1
	// 1.1 server stores: id=bolt labels=map[tag/steel:] tags=[]
	// client reads: tags=[steel] labels=map[]
	// true
	// rpcver: inventory.RenameItem needs API version 1.2 but the cluster is capped at 1.1: wait until every inventory server runs 1.2 or later
}

// Objects written while a 1.0 instance lives stay readable by it; once the
// cap reaches 1.2 a read says to write them back upgraded.
func ExampleObjects() {
	atFloor, _ := rpcver.NewObjects[*pb.Item](inventory.API, capsOf{"inventory": services.MustParseVersion("1.0")})
	data, _ := atFloor.Marshal(&pb.Item{Id: "bolt", PriceCents: 700})

	l, _ := atFloor.Load(data)
	fmt.Println("stored at", l.Stored, "cents", l.Msg.PriceCents, "rewrite", l.Rewrite != nil)

	upgraded, _ := rpcver.NewObjects[*pb.Item](inventory.API, capsOf{"inventory": services.MustParseVersion("1.2")})
	l, _ = upgraded.Load(data)
	fmt.Println("stored at", l.Stored, "cents", l.Msg.PriceCents, "rewrite", l.Rewrite != nil)
	// Output:
	// stored at 1.0 cents 700 rewrite false
	// stored at 1.0 cents 700 rewrite true
}

func ExampleSubject() {
	fmt.Println(rpcver.Subject(rpcver.DefaultPrefix, "inventory", "GetItem", services.MustParseVersion("1.1")))
	// Output: tandem.inventory.GetItem.v1.1
}

// While NATS is down a call fails at once and is not sent, so it cannot
// run after its caller gave up; once NATS is back the same client works
// again by itself.
func ExampleErrDisconnected() {
	ns, err := natstest.Start(0, "")
	if err != nil {
		panic(err)
	}
	defer ns.Stop()
	// A plain connection: nats.go's reconnect buffer is on, the client's own
	// connection still never buffers.
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	ctx := context.Background()
	srv, _ := rpcver.NewServer(nc, inventory.API)
	_ = inventory.Handle(srv, inventory.NewMemStore())
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Shutdown(ctx)
	client, _ := rpcver.NewClient(nc, inventory.API, nil, rpcver.WithTimeout(time.Second))
	defer client.Close()

	ns.Shutdown()
	ns.WaitForShutdown()
	var de *rpcver.DisconnectedError
	for range 10 { // until the client has noticed; a call sent just before fails as in flight
		_, err = inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "bolt"}})
		if errors.As(err, &de) && !de.InFlight {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("NATS down:", errors.Is(err, rpcver.ErrDisconnected), "sent:", de.InFlight)

	if err := ns.Restart(0); err != nil {
		panic(err)
	}
	for {
		_, err = inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "bolt"}})
		if err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("NATS back: the call succeeds")
	// Output:
	// NATS down: true sent: false
	// NATS back: the call succeeds
}
