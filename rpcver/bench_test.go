package rpcver_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/protobuf/proto"

	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
)

const payloadSize = 256

// nopStore keeps nothing, so the benchmark measures the framework, not a map.
type nopStore struct{}

func (nopStore) Get(context.Context, string) (*pb.Item, error)            { return &pb.Item{}, nil }
func (nopStore) Put(context.Context, *pb.Item, bool) error                { return nil }
func (nopStore) Rename(context.Context, string, string) (*pb.Item, error) { return &pb.Item{}, nil }

// benchRequest is a PutItemRequest of exactly payloadSize bytes that carries
// a 1.2 field (quantity_milli), so a call capped at 1.1 runs a backport step
// on the request and on the response, and an upgrade step on each side.
func benchRequest(b *testing.B) *pb.PutItemRequest {
	req := &pb.PutItemRequest{Item: &pb.Item{Id: "item-000001", QuantityMilli: 12000, PriceCents: 1999}}
	for n := payloadSize - proto.Size(req); n > 0 && proto.Size(req) != payloadSize; n-- {
		req.Item.Name = strings.Repeat("n", n)
	}
	if n := proto.Size(req); n != payloadSize {
		b.Fatalf("request is %d bytes, want %d", n, payloadSize)
	}
	return req
}

// BenchmarkRPC compares a raw nats.go request/reply (no headers) with a
// tandem call at cap == current and at a cap one minor below (request and
// response backported and upgraded), sequential and with 8 concurrent
// callers, all against one embedded nats-server.
//
// The machine is shared, so each tandem sub-benchmark is paired: every
// caller alternates a tandem call and a raw call (flipping which goes
// first), both timed, so both see the same load. It reports the tandem
// call's p50/p99, the raw call's p50/p99 measured alongside, and the p50
// ratio. The raw/ sub-benchmarks time raw calls alone, for reference;
// header/ is a raw request carrying one header (the cost a version header
// would add) and micro/ a bare micro endpoint echoing bytes.
func BenchmarkRPC(b *testing.B) {
	ns := natstest.New(b)
	srvConn := natstest.Connect(b, ns)
	cliConn := natstest.Connect(b, ns)

	payload := make([]byte, payloadSize)
	_, _ = rand.Read(payload)
	if _, err := srvConn.Subscribe("raw.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		b.Fatal(err)
	}
	if err := srvConn.Flush(); err != nil {
		b.Fatal(err)
	}
	// The tandem server makes a connection of its own (so Shutdown can drain
	// it). The micro baselines get one too, rather than sharing the raw
	// responder's: a responder sharing a connection with its raw partner
	// in the pairs below batches writes with it, which lowered the
	// baselines' p50 ratio with 8 callers by about 6% against tandem.
	startServer(b, srvConn, inventory.API, nopStore{})
	microConn := natstest.Connect(b, ns)
	// A bare micro endpoint echoing bytes separates micro's own cost from
	// tandem's (protobuf both ways, versions, steps).
	svc, err := micro.AddService(microConn, micro.Config{Name: "echo", Version: "1.0.0"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = svc.Stop() })
	if err := svc.AddEndpoint("echo", micro.HandlerFunc(func(r micro.Request) { _ = r.Respond(r.Data()) }), micro.WithEndpointSubject("micro.echo")); err != nil {
		b.Fatal(err)
	}
	// The same endpoint decoding and encoding the protobuf request and
	// response by hand: the floor of any typed protobuf call over micro,
	// with no versioning at all.
	if err := svc.AddEndpoint("pb", micro.HandlerFunc(func(r micro.Request) {
		in := &pb.PutItemRequest{}
		if err := proto.Unmarshal(r.Data(), in); err != nil {
			_ = r.Error("400", err.Error(), nil)
			return
		}
		out, err := proto.Marshal(&pb.PutItemResponse{Item: in.Item})
		if err != nil {
			_ = r.Error("500", err.Error(), nil)
			return
		}
		_ = r.Respond(out)
	}), micro.WithEndpointSubject("micro.pb")); err != nil {
		b.Fatal(err)
	}
	req := benchRequest(b)
	atCurrent := newClient(b, cliConn, inventory.API, newBenchCaps(v1_2))
	backported := newClient(b, cliConn, inventory.API, newBenchCaps(v1_1))
	ctx := context.Background()

	raw := func() error { _, err := cliConn.Request("raw.echo", payload, 5*time.Second); return err }
	calls := []struct {
		name string
		call func() error
	}{
		{"header", func() error {
			_, err := cliConn.RequestMsg(&nats.Msg{Subject: "raw.echo", Data: payload, Header: nats.Header{"Tandem-Version": []string{"1.2"}}}, 5*time.Second)
			return err
		}},
		{"micro", func() error { _, err := cliConn.Request("micro.echo", payload, 5*time.Second); return err }},
		{"micro-protobuf", func() error {
			data, err := proto.Marshal(req)
			if err != nil {
				return err
			}
			m, err := cliConn.Request("micro.pb", data, 5*time.Second)
			if err != nil {
				return err
			}
			return proto.Unmarshal(m.Data, &pb.PutItemResponse{})
		}},
		{"current", func() error { _, err := inventory.PutItem.Call(ctx, atCurrent, req); return err }},
		{"backport", func() error { _, err := inventory.PutItem.Call(ctx, backported, req); return err }},
	}
	for _, callers := range []int{1, 8} {
		b.Run(fmt.Sprintf("raw/callers=%d", callers), func(b *testing.B) {
			lat, _ := measure(b, callers, raw, nil)
			report(b, "", lat)
		})
		for _, c := range calls {
			b.Run(fmt.Sprintf("%s/callers=%d", c.name, callers), func(b *testing.B) {
				lat, rawLat := measure(b, callers, c.call, raw)
				report(b, "", lat)
				report(b, "raw-", rawLat)
				b.ReportMetric(float64(p(lat, 50))/float64(p(rawLat, 50)), "x-raw-p50")
			})
		}
	}
}

// benchCaps is a CapSource read the way *services.Cache reads its cap: one
// atomic load and a map lookup, with no lock for callers to contend on.
type benchCaps struct {
	caps atomic.Pointer[map[string]rpcver.Version]
}

func newBenchCaps(v rpcver.Version) *benchCaps {
	c := &benchCaps{}
	c.caps.Store(&map[string]rpcver.Version{"inventory": v})
	return c
}

func (c *benchCaps) Cap(api string) (rpcver.Version, bool) {
	v, ok := (*c.caps.Load())[api]
	return v, ok
}

func (c *benchCaps) Refresh(context.Context) error { return nil }

func p(lat []time.Duration, pct int) time.Duration { return lat[len(lat)*pct/100] }

func report(b *testing.B, prefix string, lat []time.Duration) {
	b.ReportMetric(float64(p(lat, 50).Nanoseconds())/1e3, prefix+"p50-µs")
	b.ReportMetric(float64(p(lat, 99).Nanoseconds())/1e3, prefix+"p99-µs")
}

// measure runs b.N calls split over callers goroutines and returns every
// call's latency, sorted. With a pair, each iteration also times one pair
// call, alternating which goes first.
func measure(b *testing.B, callers int, call, pair func() error) (lat, pairLat []time.Duration) {
	lat = make([]time.Duration, b.N)
	if pair != nil {
		pairLat = make([]time.Duration, b.N)
	}
	timed := func(f func() error, into []time.Duration, i int) error {
		t0 := time.Now()
		err := f()
		into[i] = time.Since(t0)
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	b.ResetTimer()
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < b.N; i += callers {
				var err error
				switch {
				case pair == nil:
					err = timed(call, lat, i)
				case i%2 == 0:
					err = errors.Join(timed(call, lat, i), timed(pair, pairLat, i))
				default:
					err = errors.Join(timed(pair, pairLat, i), timed(call, lat, i))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	slices.Sort(pairLat)
	return lat, pairLat
}

// BenchmarkBackportStep is one request's backport from 1.2 to 1.1 on a copy
// of the message, as a capped client runs it before sending: a scalar step
// (quantity_milli -> quantity) and a map step (tags -> labels).
func BenchmarkBackportStep(b *testing.B) {
	for _, c := range benchSteps(b) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m := proto.Clone(c.req)
				if err := rpcver.BackportMessage(inventory.API, m, v1_1, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUpgradeStep is the server side: a 1.1 request upgraded to 1.2,
// on a copy.
func BenchmarkUpgradeStep(b *testing.B) {
	for _, c := range benchSteps(b) {
		old := proto.Clone(c.req)
		if err := rpcver.BackportMessage(inventory.API, old, v1_1, true); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m := proto.Clone(old)
				if err := rpcver.UpgradeMessage(inventory.API, m, v1_1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchSteps(b *testing.B) []struct {
	name string
	req  *pb.PutItemRequest
} {
	scalar := benchRequest(b)
	tags := benchRequest(b)
	tags.Item.QuantityMilli, tags.Item.Quantity, tags.Item.Tags = 0, 12, []string{"steel", "m8"}
	return []struct {
		name string
		req  *pb.PutItemRequest
	}{{"scalar", scalar}, {"map", tags}}
}

// BenchmarkProtobufRoundTrip is the part of a call no versioning scheme can
// avoid once payloads are protobuf: encode the request, decode it, encode
// the response, decode it. Set against BenchmarkRPC it shows how much of a
// call's cost over raw bytes is protobuf and how much is tandem.
func BenchmarkProtobufRoundTrip(b *testing.B) {
	req := benchRequest(b)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = proto.MarshalOptions{}.MarshalAppend(buf[:0], req)
		if err != nil {
			b.Fatal(err)
		}
		in := &pb.PutItemRequest{}
		if err := proto.Unmarshal(buf, in); err != nil {
			b.Fatal(err)
		}
		buf, err = proto.MarshalOptions{}.MarshalAppend(buf[:0], &pb.PutItemResponse{Item: in.Item})
		if err != nil {
			b.Fatal(err)
		}
		out := &pb.PutItemResponse{}
		if err := proto.Unmarshal(buf, out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallCPU is the CPU work of one call with NATS taken out (see
// rpcver.RoundTrip): client and server, request and response, at cap ==
// current and at a backported cap. Set against BenchmarkProtobufRoundTrip
// it shows what tandem adds to the protobuf work itself.
func BenchmarkCallCPU(b *testing.B) {
	ns := natstest.New(b)
	nc := natstest.Connect(b, ns)
	srv, err := rpcver.NewServer(nc, inventory.API)
	if err != nil {
		b.Fatal(err)
	}
	if err := inventory.Handle(srv, nopStore{}); err != nil {
		b.Fatal(err)
	}
	req := benchRequest(b)
	for _, c := range []struct {
		name string
		caps rpcver.CapSource
	}{{"current", newBenchCaps(v1_2)}, {"backport", newBenchCaps(v1_1)}} {
		cli := newClient(b, nc, inventory.API, c.caps)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := rpcver.RoundTrip(cli, srv, inventory.PutItem.Name(), req, &pb.PutItemResponse{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
