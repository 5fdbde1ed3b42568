package rpcver_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/services"
)

// blockingStore parks Get until released, to hold a request in flight.
type blockingStore struct {
	inventory.Store
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStore) Get(ctx context.Context, id string) (*pb.Item, error) {
	b.entered <- struct{}{}
	<-b.release
	return &pb.Item{Id: id, Name: "held"}, nil
}

// TestShutdownDrains: a request in flight when Shutdown starts still gets
// its answer; Shutdown waits for it, then deregisters.
func TestShutdownDrains(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		ns := natstest.New(t)
		nc := natstest.Connect(t, ns)
		reg, _ := newRegistry(t, db, nc)
		st := &blockingStore{Store: inventory.NewMemStore(), entered: make(chan struct{}), release: make(chan struct{})}
		srv := startServer(t, nc, inventory.API, st,
			rpcver.WithRegistry(reg, services.Instance{ID: "inv-1", Service: "inventory", Host: "h", Release: 7}, time.Hour))
		in, err := reg.Get(ctx, "inv-1")
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := in.API("inventory"); !ok || a.Current != v1_2 || a.Oldest != v1_0 || in.State != services.StateUp {
			t.Fatalf("registered %+v", in)
		}
		client := newClient(t, nc, inventory.API, nil, rpcver.WithCluster(reg.Cluster()))

		type result struct {
			resp *pb.GetItemResponse
			err  error
		}
		got := make(chan result, 1)
		go func() {
			r, err := inventory.GetItem.Call(ctx, client, &pb.GetItemRequest{Id: "x"})
			got <- result{r, err}
		}()
		<-st.entered
		done := make(chan error, 1)
		go func() { done <- srv.Shutdown(ctx) }()
		// Shutdown reports draining first, so the row says so while the
		// request is still held.
		waitFor(t, func() bool { in, _ := reg.Get(ctx, "inv-1"); return in.State == services.StateDraining })
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned (%v) with a request in flight", err)
		default:
		}
		close(st.release)
		if r := <-got; r.err != nil || r.resp.Item.GetName() != "held" {
			t.Fatalf("in-flight call: %v %v", r.resp, r.err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if in, err := reg.Get(ctx, "inv-1"); err == nil && in.State != services.StateDeleted {
			t.Fatalf("after shutdown the instance is %s, want deleted", in.State)
		}
		_, err = inventory.GetItem.Call(ctx, client, &pb.GetItemRequest{Id: "x"})
		if !errors.Is(err, rpcver.ErrNoServer) {
			t.Fatalf("after shutdown: %v, want ErrNoServer", err)
		}
		if err := srv.Shutdown(ctx); !errors.Is(err, rpcver.ErrServerState) {
			t.Fatalf("second shutdown: %v, want ErrServerState", err)
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDeadline: the caller's context bounds the call.
func TestDeadline(t *testing.T) {
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	st := &blockingStore{Store: inventory.NewMemStore(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	startServer(t, nc, inventory.API, st)
	t.Cleanup(func() { close(st.release) })
	client := newClient(t, nc, inventory.API, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := inventory.GetItem.Call(ctx, client, &pb.GetItemRequest{Id: "x"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := inventory.GetItem.Call(cctx, client, &pb.GetItemRequest{Id: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestOldClient: a 1.0 build talks to a 1.2 server: its request is upgraded
// (price -> price_cents) before the handler, and the answer comes back in
// 1.0 terms, keeping what 1.0 cannot read as unknown fields.
func TestOldClient(t *testing.T) {
	ctx := context.Background()
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	store := &recordingStore{Store: inventory.NewMemStore()}
	startServer(t, nc, inventory.API, store)
	if err := store.Store.Put(ctx, &pb.Item{Id: "t", PriceCents: 500, Labels: map[string]string{"k": "v"}, Tags: []string{"x"}}, false); err != nil {
		t.Fatal(err)
	}
	old := newClient(t, nc, inventoryAt(t, v1_0), nil)
	if _, err := inventory.PutItem.Call(ctx, old, &pb.PutItemRequest{Item: &pb.Item{Id: "a", Price: 4}}); err != nil {
		t.Fatal(err)
	}
	if it := store.lastPut(); it.PriceCents != 400 {
		t.Fatalf("the handler saw %v, want price_cents 400 from the upgrade", it)
	}
	resp, err := inventory.GetItem.Call(ctx, old, &pb.GetItemRequest{Id: "t"})
	if err != nil {
		t.Fatal(err)
	}
	// The 1.0 client's build still has the 1.2 Go types here, so what a real
	// 1.0 build would keep as unknown fields shows as set fields.
	if resp.Item.Price != 5 || resp.Item.PriceCents != 0 || resp.Item.Labels["tag/x"] != "" || resp.Item.Labels["k"] != "v" {
		t.Fatalf("1.0 view %v, want price 5, cents backported away, labels kept", resp.Item)
	}
	// A value 1.0 cannot express fails loudly instead of lying.
	if err := store.Store.Put(ctx, &pb.Item{Id: "odd", PriceCents: 501}, false); err != nil {
		t.Fatal(err)
	}
	_, err = inventory.GetItem.Call(ctx, old, &pb.GetItemRequest{Id: "odd"})
	var re *rpcver.RemoteError
	if !errors.Is(err, rpcver.ErrCannotBackport) || !errors.As(err, &re) || re.Code != rpcver.CodeCannotBackport {
		t.Fatalf("err = %v, want a remote CannotBackport", err)
	}
}

// TestRemoteErrors: handler errors carry their code; bad input is 400.
func TestRemoteErrors(t *testing.T) {
	ctx := context.Background()
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	startServer(t, nc, inventory.API, inventory.NewMemStore())
	client := newClient(t, nc, inventory.API, nil)
	_, err := inventory.GetItem.Call(ctx, client, &pb.GetItemRequest{Id: "missing"})
	var re *rpcver.RemoteError
	if !errors.As(err, &re) || re.Code != rpcver.CodeNotFound || !errors.Is(err, rpcver.ErrRemote) {
		t.Fatalf("err = %v, want RemoteError 404", err)
	}
	_, err = inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{}})
	if !errors.As(err, &re) || re.Code != rpcver.CodeBadRequest || !errors.Is(err, rpcver.ErrBadRequest) {
		t.Fatalf("err = %v, want RemoteError 400", err)
	}
	msg, err := nc.Request("tandem.inventory.GetItem.v1.2", []byte{0x0a, 0xff}, 5*time.Second)
	if err != nil || msg.Header.Get("Nats-Service-Error-Code") != rpcver.CodeBadRequest {
		t.Fatalf("garbage payload: %v %v, want 400", msg, err)
	}
	// A method the server's version lacks, asked at a version that lacks it.
	msg, err = nc.Request("tandem.inventory.RenameItem.v1.1", nil, 5*time.Second)
	if err != nil || msg.Header.Get("Nats-Service-Error-Code") != rpcver.CodeBadRequest {
		t.Fatalf("RenameItem at 1.1: %v %v, want 400", msg, err)
	}
	if _, err := rpcver.NewMethod[*pb.GetItemRequest, *pb.GetItemResponse]("Nope").Call(ctx, client, &pb.GetItemRequest{}); !errors.Is(err, rpcver.ErrUnknownMethod) {
		t.Fatalf("err = %v, want ErrUnknownMethod", err)
	}
	wrong := rpcver.NewMethod[*pb.PutItemRequest, *pb.GetItemResponse]("GetItem")
	if _, err := wrong.Call(ctx, client, &pb.PutItemRequest{}); !errors.Is(err, rpcver.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid for mismatched types", err)
	}
}

func TestServerSetupErrors(t *testing.T) {
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	ctx := context.Background()
	s, err := rpcver.NewServer(nc, inventory.API)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); !errors.Is(err, rpcver.ErrInvalid) {
		t.Fatalf("start without handlers: %v, want ErrInvalid", err)
	}
	wrong := rpcver.NewMethod[*pb.PutItemRequest, *pb.PutItemResponse]("GetItem")
	if err := rpcver.Handle(s, wrong, func(context.Context, *pb.PutItemRequest) (*pb.PutItemResponse, error) { return nil, nil }); !errors.Is(err, rpcver.ErrInvalid) {
		t.Fatalf("mismatched handler: %v, want ErrInvalid", err)
	}
	if _, err := rpcver.NewServer(nc, inventory.API, rpcver.WithPrefix("a.>")); !errors.Is(err, rpcver.ErrInvalid) {
		t.Fatalf("wildcard prefix: %v, want ErrInvalid", err)
	}
	if _, err := rpcver.NewServer(nc, inventory.API, rpcver.WithRegistry(nil, services.Instance{}, time.Second)); err != nil {
		t.Fatalf("a nil registry means none: %v", err)
	}
	reg := &fakeReporter{}
	if _, err := rpcver.NewServer(nc, inventory.API, rpcver.WithRegistry(reg, services.Instance{}, time.Second)); !errors.Is(err, rpcver.ErrInvalid) {
		t.Fatalf("instance without id: %v, want ErrInvalid", err)
	}
	if _, err := rpcver.NewClient(nc, inventory.API, nil, rpcver.WithTimeout(0)); !errors.Is(err, rpcver.ErrInvalid) {
		t.Fatalf("zero timeout: %v, want ErrInvalid", err)
	}
}

// fakeReporter stands in only where no registry call is made.
type fakeReporter struct{ services.Reporter }

type panickingStore struct{ inventory.Store }

func (panickingStore) Rename(context.Context, string, string) (*pb.Item, error) { panic("boom") }

// TestHandlerPanic: a panicking handler fails its request with 500 and the
// server keeps serving.
func TestHandlerPanic(t *testing.T) {
	ctx := context.Background()
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	startServer(t, nc, inventory.API, panickingStore{inventory.NewMemStore()})
	client := newClient(t, nc, inventory.API, nil)
	_, err := inventory.RenameItem.Call(ctx, client, &pb.RenameItemRequest{Id: "a"})
	var re *rpcver.RemoteError
	if !errors.As(err, &re) || re.Code != rpcver.CodeInternal {
		t.Fatalf("err = %v, want RemoteError 500", err)
	}
	if _, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "a"}}); err != nil {
		t.Fatalf("after a panic: %v", err)
	}
}

// TestReportThroughRemote: a node without database credentials reports
// through the registry over NATS, and a client caps on a cache of the
// remote registry too.
func TestReportThroughRemote(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		ns := natstest.New(t)
		nc := natstest.Connect(t, ns)
		reg, _ := newRegistry(t, db, nc)
		svc, err := services.Serve(nc, reg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Stop() })
		remote := services.NewRemote(natstest.Connect(t, ns), reg.Cluster())
		startServer(t, nc, inventoryAt(t, v1_1), inventory.NewMemStore(),
			rpcver.WithRegistry(remote, services.Instance{ID: "edge-1", Service: "inventory", Host: "edge", Release: 3}, time.Hour))
		in, err := reg.Get(ctx, "edge-1")
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := in.API("inventory"); !ok || a.Current != v1_1 {
			t.Fatalf("registered through NATS: %+v", in)
		}
		cache, err := services.NewCache(ctx, remote, nc, services.WithTTL(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cache.Close)
		client := newClient(t, nc, inventory.API, cache)
		if got := client.Target(); got != v1_1 {
			t.Fatalf("target %s, want 1.1 from the remote registry", got)
		}
		if _, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "a", Tags: []string{"t"}}}); err != nil {
			t.Fatal(err)
		}
	})
}

// probingReporter is the real registry; at Register it records whether a
// server already answers the API, which a joining server must not do yet.
type probingReporter struct {
	*services.Registry
	nc        *nats.Conn
	subject   string
	listening chan bool
}

func (p *probingReporter) Register(ctx context.Context, in services.Instance, opts ...services.Option) error {
	_, err := p.nc.Request(p.subject, nil, 2*time.Second)
	p.listening <- !errors.Is(err, nats.ErrNoResponders)
	return p.Registry.Register(ctx, in, opts...)
}

// TestOlderServerJoins: a 1.1 server joining 1.2 servers registers before it
// listens, so by the time it can refuse a 1.2 request the registry already
// caps at 1.1, and a client it refuses finds the lower cap with its one
// refresh; the retry then succeeds wherever it lands.
func TestOlderServerJoins(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		ns := natstest.New(t)
		nc := natstest.Connect(t, ns)
		reg, cache := newRegistry(t, db, nc)
		startServer(t, nc, inventory.API, inventory.NewMemStore(),
			rpcver.WithRegistry(reg, services.Instance{ID: "inv-new", Service: "inventory", Host: "h", Release: 8}, time.Hour))
		if err := cache.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		old := inventoryAt(t, v1_1)
		// The joining server gets a prefix of its own, so only it could
		// answer the probe.
		probe := &probingReporter{Registry: reg, nc: nc, listening: make(chan bool, 1),
			subject: rpcver.Subject("probe."+reg.Cluster(), "inventory", "GetItem", v1_1)}
		startServer(t, nc, old, inventory.NewMemStore(), rpcver.WithPrefix("probe"),
			rpcver.WithRegistry(probe, services.Instance{ID: "inv-old", Service: "inventory", Host: "h", Release: 7}, time.Hour))
		if <-probe.listening {
			t.Fatal("the joining server listened before it registered")
		}

		// A client whose cache has not seen the join yet still sends at 1.2.
		refreshing := &registryCaps{fixedCaps: capAt(v1_2), cache: cache}
		startServer(t, nc, old, inventory.NewMemStore(),
			rpcver.WithRegistry(reg, services.Instance{ID: "inv-old-2", Service: "inventory", Host: "h", Release: 7}, time.Hour))
		client := newClient(t, nc, inventory.API, refreshing)
		for i := range 20 {
			// Whichever server each call reaches, it succeeds: the 1.1
			// server's refusal makes the client refresh to the registry's
			// 1.1 cap and retry there.
			if _, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: fmt.Sprint("i", i), PriceCents: 100}}); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	})
}

// registryCaps starts from a stale cap and refreshes from the registry.
type registryCaps struct {
	*fixedCaps
	cache *services.Cache
	fresh atomic.Bool
}

func (r *registryCaps) Cap(api string) (rpcver.Version, bool) {
	if r.fresh.Load() {
		return r.cache.Cap(api)
	}
	return r.fixedCaps.Cap(api)
}

// Cluster is the cache's: the client calls the registry's cluster.
func (r *registryCaps) Cluster() string { return r.cache.Cluster() }

func (r *registryCaps) Refresh(ctx context.Context) error {
	r.fresh.Store(true)
	return r.cache.Refresh(ctx)
}

// WithHeartbeat: what the server's heartbeats report (the phase it acts on
// per move) reaches the registry.
func TestServerHeartbeatReportsPhases(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t, dialect.SQLite)
	nc := natstest.Connect(t, natstest.New(t))
	reg, _ := newRegistry(t, db, nc)
	var phase atomic.Value
	phase.Store("write-both")
	startServer(t, nc, inventory.API, inventory.NewMemStore(),
		rpcver.WithRegistry(reg, services.Instance{ID: "inv-hb", Service: "inventory", Host: "h", Release: 42}, 10*time.Millisecond),
		rpcver.WithHeartbeat(func() services.Heartbeat {
			return services.Heartbeat{Phases: map[string]string{"price_cents": phase.Load().(string)}}
		}))
	deadline := time.Now().Add(10 * time.Second)
	for _, want := range []string{"write-both", "read-new"} {
		phase.Store(want)
		for {
			in, err := reg.Get(ctx, "inv-hb")
			if err != nil {
				t.Fatal(err)
			}
			if in.Phases["price_cents"] == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("phase %q never reported; registry has %v", want, in.Phases)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
