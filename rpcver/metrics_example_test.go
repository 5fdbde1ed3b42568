package rpcver_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/services"
)

// A client's metrics on the application's registry: a call at the cap,
// backported on the way out, and a call refused before it was sent.
func ExampleWithMetrics() {
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
	_ = inventory.Handle(srv, inventory.NewMemStore())
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Shutdown(ctx)

	prom := prometheus.NewRegistry()
	client, _ := rpcver.NewClient(nc, inventory.API, capsOf{"inventory": services.MustParseVersion("1.1")},
		rpcver.WithTimeout(5*time.Second), rpcver.WithMetrics(prom))
	defer client.Close()
	_, _ = inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "bolt", Tags: []string{"steel"}}})
	_, _ = inventory.RenameItem.Call(ctx, client, &pb.RenameItemRequest{Id: "bolt", Name: "m8"})

	mfs, _ := prom.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if v := m.GetCounter().GetValue(); v > 0 {
				labels := ""
				for _, l := range m.GetLabel() {
					labels += " " + l.GetName() + "=" + l.GetValue()
				}
				fmt.Printf("%s%s %v\n", mf.GetName(), labels, v)
			}
		}
	}
	// Output:
	// tandem_rpcver_backports_total api=inventory side=client 1
	// tandem_rpcver_client_calls_total api=inventory method=PutItem outcome=ok version=1.1 1
	// tandem_rpcver_client_calls_total api=inventory method=RenameItem outcome=refused version=1.1 1
	// tandem_rpcver_refusals_total api=inventory kind=method_too_new side=client 1
	// tandem_rpcver_upgrades_total api=inventory side=client 1
}
