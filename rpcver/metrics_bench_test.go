package rpcver_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/examples/inventory"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
)

// BenchmarkRPCMetrics measures what metrics cost a call: a client and a
// server with metrics on (WithMetrics on both, one registry)
// against a pair with them off, under separate prefixes on one embedded
// nats-server. paired/ alternates an on call and an off call in every
// iteration (flipping which goes first), so both see the same load, and
// reports the on call's p50/p99, the off call's alongside, and the p50
// ratio x-off-p50 (target: at most 1.03). off/ and on/ time each alone
// with allocs/op: off/ must allocate what the call allocated before
// metrics existed.
func BenchmarkRPCMetrics(b *testing.B) {
	ns := natstest.New(b)
	srvConn := natstest.Connect(b, ns)
	cliConn := natstest.Connect(b, ns)
	reg := prometheus.NewRegistry()
	startServer(b, srvConn, inventory.API, nopStore{}, rpcver.WithPrefix("off"))
	startServer(b, srvConn, inventory.API, nopStore{}, rpcver.WithPrefix("on"), rpcver.WithMetrics(reg))
	ctx := context.Background()
	for _, c := range []struct {
		name string
		caps rpcver.CapSource
	}{{"current", newBenchCaps(v1_2)}, {"backport", newBenchCaps(v1_1)}} {
		off := newClient(b, cliConn, inventory.API, c.caps, rpcver.WithPrefix("off"))
		on := newClient(b, cliConn, inventory.API, c.caps, rpcver.WithPrefix("on"), rpcver.WithMetrics(reg))
		req := benchRequest(b)
		callOff := func() error { _, err := inventory.PutItem.Call(ctx, off, req); return err }
		callOn := func() error { _, err := inventory.PutItem.Call(ctx, on, req); return err }
		for _, callers := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/paired/callers=%d", c.name, callers), func(b *testing.B) {
				lat, offLat := measure(b, callers, callOn, callOff)
				report(b, "", lat)
				report(b, "off-", offLat)
				b.ReportMetric(float64(p(lat, 50))/float64(p(offLat, 50)), "x-off-p50")
			})
		}
		for _, m := range []struct {
			name string
			call func() error
		}{{"off", callOff}, {"on", callOn}} {
			b.Run(c.name+"/"+m.name, func(b *testing.B) {
				b.ReportAllocs()
				lat, _ := measure(b, 1, m.call, nil)
				report(b, "", lat)
			})
		}
	}
}
