package rpcver_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

var (
	v1_0 = services.MustParseVersion("1.0")
	v1_1 = services.MustParseVersion("1.1")
	v1_2 = services.MustParseVersion("1.2")
	v1_3 = services.MustParseVersion("1.3")
)

// inventoryAt is the inventory API as a build at version v would serve it.
func inventoryAt(t testing.TB, v rpcver.Version) *rpcver.API {
	t.Helper()
	a, err := inventory.NewAPI(rpcver.WithCurrent(v))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fixedCaps is a CapSource whose cap a test sets; Refresh can move it.
type fixedCaps struct {
	mu        sync.Mutex
	caps      map[string]rpcver.Version
	onRefresh map[string]rpcver.Version
	refreshes atomic.Int32
}

func (f *fixedCaps) Cap(api string) (rpcver.Version, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.caps[api]
	return v, ok
}

func (f *fixedCaps) Refresh(context.Context) error {
	f.refreshes.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.onRefresh != nil {
		f.caps = f.onRefresh
	}
	return nil
}

func capAt(v rpcver.Version) *fixedCaps {
	return &fixedCaps{caps: map[string]rpcver.Version{"inventory": v}}
}

// startServer runs an inventory server at api's version over store.
func startServer(t testing.TB, nc *nats.Conn, api *rpcver.API, store inventory.Store, opts ...rpcver.Option) *rpcver.Server {
	t.Helper()
	s, err := rpcver.NewServer(nc, api, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := inventory.Handle(s, store); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Shutdown of a server a test already stopped reports ErrServerState.
		_ = s.Shutdown(context.Background())
	})
	return s
}

func newClient(t testing.TB, nc *nats.Conn, api *rpcver.API, caps rpcver.CapSource, opts ...rpcver.Option) *rpcver.Client {
	t.Helper()
	c, err := rpcver.NewClient(nc, api, caps, append([]rpcver.Option{rpcver.WithTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// wire records what really crossed NATS for the inventory API under a
// subject prefix (DefaultPrefix, or DefaultPrefix.<cluster>).
type wire struct {
	nc  *nats.Conn
	sub *nats.Subscription
}

func spy(t testing.TB, ns *natstest.Server, prefix string) *wire {
	t.Helper()
	nc := natstest.Connect(t, ns)
	sub, err := nc.SubscribeSync(prefix + ".inventory.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &wire{nc: nc, sub: sub}
}

// next returns the next request seen on the wire.
func (w *wire) next(t testing.TB) *nats.Msg {
	t.Helper()
	m, err := w.sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("nothing on the wire: %v", err)
	}
	return m
}

// none checks that nothing was sent by sender: a round trip through the
// server on both connections orders any earlier publish before it.
func (w *wire) none(t testing.TB, sender *nats.Conn) {
	t.Helper()
	if err := sender.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := w.sub.Pending(); n != 0 {
		m, _ := w.sub.NextMsg(0)
		t.Fatalf("%d message(s) on the wire, first on %s; want none", n, m.Subject)
	}
}

func decode[M proto.Message](t testing.TB, data []byte) M {
	t.Helper()
	var zero M
	m := zero.ProtoReflect().Type().New().Interface().(M)
	if err := proto.Unmarshal(data, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// newRegistry opens the real registry on db, announcing on nc, and a cache
// of it that refreshes only on notifications (its TTL is an hour).
func newRegistry(t testing.TB, db *dialect.DB, nc *nats.Conn) (*services.Registry, *services.Cache) {
	t.Helper()
	ctx := context.Background()
	if _, err := schema.Ensure(ctx, db, services.Tables()); err != nil {
		t.Fatal(err)
	}
	reg, err := services.New(ctx, db, services.WithNATS(nc))
	if err != nil {
		t.Fatal(err)
	}
	cache, err := services.NewCache(ctx, reg, nc, services.WithTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	return reg, cache
}

// recordingStore remembers the items handlers stored, as they saw them.
type recordingStore struct {
	inventory.Store
	mu   sync.Mutex
	puts []*pb.Item
}

func (r *recordingStore) Put(ctx context.Context, item *pb.Item, createOnly bool) error {
	r.mu.Lock()
	r.puts = append(r.puts, proto.Clone(item).(*pb.Item))
	r.mu.Unlock()
	return r.Store.Put(ctx, item, createOnly)
}

func (r *recordingStore) lastPut() *pb.Item {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.puts) == 0 {
		return nil
	}
	return r.puts[len(r.puts)-1]
}

// The registry's cache is what clients and stored objects cap on.
var _ rpcver.CapSource = (*services.Cache)(nil)
