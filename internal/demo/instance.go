package demo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/services"
)

// slot is one place in the cluster; its instance is restarted in place.
type slot struct {
	n       int
	id      string
	mu      sync.Mutex // held while the instance is stopped or started
	release int64      // the release the slot runs (or last ran)
	inst    atomic.Pointer[instance]
}

// instance is one running inventory process of the example service: an
// RPC server over items, a store over catalog for its background jobs, a
// tracker, and heartbeats.
type instance struct {
	id      string
	release int64
	api     *rpcver.API
	ctx     context.Context
	cancel  context.CancelFunc
	nc      *nats.Conn
	srv     *rpcver.Server
	tr      *dualwrite.Tracker
	items   *inventory.SQLStore
	catalog *inventory.SQLStore
	wg      sync.WaitGroup
}

// faultyPhases is a release with a bug: it acts on another phase than its
// tracker gives.
type faultyPhases struct {
	tr      *dualwrite.Tracker
	release int64
	fault   func(int64, string, move.Phase) move.Phase
}

func (f faultyPhases) Begin(name string) (move.Phase, func()) {
	p, done := f.tr.Begin(name)
	return f.fault(f.release, name, p), done
}

func (f faultyPhases) BeginWrite(name string) (move.Phase, func(), error) {
	p, done, err := f.tr.BeginWrite(name)
	return f.fault(f.release, name, p), done, err
}

// readsOnly begins every operation as a read (Tracker.Begin): a release
// that ignores write freezes, though its heartbeat acknowledges them.
type readsOnly struct{ tr *dualwrite.Tracker }

func (r readsOnly) Begin(name string) (move.Phase, func()) { return r.tr.Begin(name) }

// phases is what the instance reports: its tracker's phases, which account
// for running operations (a faulty release acts on another phase than it
// reports).
func (in *instance) phases() map[string]string { return in.tr.Phases() }

func (in *instance) store(table string) *inventory.SQLStore {
	if table == in.catalog.Move().Table {
		return in.catalog
	}
	return in.items
}

// boundedStore gives every operation a deadline well inside a client's
// attempt timeout, so a request a client gave up on cannot commit after
// its retry did.
type boundedStore struct {
	inventory.Store
	d time.Duration
	// late, for tests, holds a put until its caller gave up, and returns
	// the context to apply it under.
	late func(ctx context.Context, it *pb.Item) context.Context
}

func (b boundedStore) Get(ctx context.Context, id string) (*pb.Item, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.Store.Get(ctx, id)
}

func (b boundedStore) Put(ctx context.Context, it *pb.Item, createOnly bool) error {
	if b.late != nil {
		ctx = b.late(ctx, it)
	}
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.Store.Put(ctx, it, createOnly)
}

// lateGhost is the server bug Config.ghost asks for: the put waits until
// its caller has seen it fail, then is applied regardless.
func (r *run) lateGhost(ctx context.Context, it *pb.Item) context.Context {
	if r.cfg.ghost == nil || !r.cfg.ghost(it) {
		return ctx
	}
	k := appliedKey{table: itemsMove.Table, id: it.GetId(), qty: valueOf(it).qty}
	for deadline := time.Now().Add(2 * r.s.attempt); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, ok := r.sawFail.Load(k); ok {
			break
		}
	}
	return context.WithoutCancel(ctx)
}

// errLate refuses a write older than the one stored. It is a conflict, so
// a caller still waiting would see it fail, never retry it.
var errLate = fmt.Errorf("a newer write of this item is stored: %w", inventory.ErrExists)

// putCheck is the demo's optimistic concurrency: every write of a key
// carries its owner's sequence number as the quantity, so a late
// duplicate, a request that reached a server after its caller had retried
// it, succeeded and written again, is refused instead of overwriting the
// newer write. Without it, at-least-once delivery loses writes under load,
// whatever the schema does.
func (r *run) putCheck(stored, incoming *pb.Item) error {
	if incoming.GetQuantity() < stored.GetQuantity() {
		r.st.late.Add(1)
		return errLate
	}
	return nil
}

// start starts an instance of release in sl, registering it with Replace
// (the slot's id may still be in the registry from the process before).
// While NATS is down it retries until the deadline.
func (r *run) start(ctx context.Context, sl *slot, release int64) (*instance, error) {
	deadline := time.Now().Add(r.s.deadline)
	for {
		in, err := r.startOnce(ctx, sl, release)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return in, err
		}
		var bf *services.BelowFinalizedError
		var tooOld *dualwrite.TooOldError
		if errors.As(err, &bf) || errors.As(err, &tooOld) {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *run) startOnce(ctx context.Context, sl *slot, release int64) (*instance, error) {
	v, err := services.ParseVersion(apiOf[release])
	if err != nil {
		return nil, err
	}
	api, err := inventory.NewAPI(rpcver.WithCurrent(v))
	if err != nil {
		return nil, err
	}
	tr, err := dualwrite.NewTracker(ctx, r.db, release, r.moves)
	if err != nil {
		return nil, err
	}
	in := &instance{id: sl.id, release: release, api: api, tr: tr}
	var phases inventory.PhaseSource = tr
	if r.cfg.fault != nil {
		phases = faultyPhases{tr: tr, release: release, fault: r.cfg.fault}
	}
	if r.cfg.ignoreFreeze {
		phases = readsOnly{tr}
	}
	check := inventory.WithPutCheck(r.putCheck)
	if in.items, err = inventory.NewSQLStore(r.db, itemsMove, phases, check, inventory.WithApplied(r.applied.recorder(itemsMove.Table))); err != nil {
		return nil, err
	}
	if in.catalog, err = inventory.NewSQLStore(r.db, catalogMove, phases, check, inventory.WithApplied(r.applied.recorder(catalogMove.Table))); err != nil {
		return nil, err
	}
	if in.nc, err = r.connect(sl.id); err != nil {
		return nil, err
	}
	in.ctx, in.cancel = context.WithCancel(context.WithoutCancel(ctx))
	fail := func(err error) (*instance, error) {
		in.cancel()
		if in.srv != nil {
			_ = in.srv.Shutdown(in.ctx)
		}
		in.nc.Close()
		return nil, err
	}
	// The server registers nothing itself: the instance registers once,
	// with the phases it acts on, and heartbeats them.
	if in.srv, err = rpcver.NewServer(in.nc, api, rpcver.WithLogger(r.log), rpcver.WithCluster(r.reg.Cluster())); err != nil {
		return fail(err)
	}
	if err := inventory.Handle(in.srv, boundedStore{Store: in.items, d: r.s.opTimeout, late: r.lateGhost}); err != nil {
		return fail(err)
	}
	if err := in.srv.Start(in.ctx); err != nil {
		in.srv = nil
		return fail(err)
	}
	inst := services.Instance{ID: sl.id, Service: "inventory", Host: "demo", Release: release,
		APIs: []services.API{api.Registration()}, Phases: in.phases(), Freeze: tr.FreezeAck(),
		Metadata: map[string]string{"slot": fmt.Sprint(sl.n)}}
	if err := r.reg.Register(ctx, inst, services.WithReplace()); err != nil {
		return fail(err)
	}
	in.wg.Add(2)
	go func() {
		defer in.wg.Done()
		_ = tr.Run(in.ctx, r.s.tracker, func(err error) { r.log.Warn("tracker refresh", "instance", in.id, "err", err) })
	}()
	go func() {
		defer in.wg.Done()
		err := services.KeepAlive(in.ctx, r.reg, in.id, r.s.heartbeat, func() services.Heartbeat {
			// The freeze it holds, once no write it began before still
			// runs: the operator's freeze waits for every instance's.
			return services.Heartbeat{Phases: in.phases(), Freeze: in.tr.FreezeAck()}
		})
		if err != nil {
			r.problem("%s: heartbeats stopped: %v", in.id, err)
		}
	}()
	return in, nil
}

// stop drains the instance as a rolling restart does: it reports
// draining, finishes the requests it has, and stops. Its registry row stays
// (at the old release, draining) until the next process replaces it.
func (r *run) stop(in *instance) {
	hctx, cancel := context.WithTimeout(context.Background(), r.s.opTimeout)
	if err := r.reg.Heartbeat(hctx, in.id, services.Heartbeat{State: services.StateDraining, Phases: in.phases()}); err != nil {
		r.log.Warn("report draining", "instance", in.id, "err", err)
	}
	cancel()
	sctx, cancel := context.WithTimeout(context.Background(), r.s.attempt)
	if err := in.srv.Shutdown(sctx); err != nil {
		r.log.Warn("shutdown", "instance", in.id, "err", err)
	}
	cancel()
	in.cancel()
	in.wg.Wait()
	_ = in.tr.Wait(context.Background())
	in.nc.Close()
}

// kill ends the instance abruptly: no draining, no deregistering; its
// context is cancelled and its connections dropped. Its row keeps its
// release, phases and APIs and goes missing once heartbeats are overdue.
func (r *run) kill(in *instance) {
	in.cancel()
	_ = in.srv.Shutdown(in.ctx) // ctx already done: closes at once, cancelling running handlers
	in.nc.Close()
	in.wg.Wait()
	// Nothing of this process may write after it is declared dead.
	_ = in.tr.Wait(context.Background())
}
