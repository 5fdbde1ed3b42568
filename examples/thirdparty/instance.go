package stacks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/services"
)

// Instance is one running server of the stacks service.
type Instance struct {
	ID      string
	Tracker *dualwrite.Tracker
	reg     *services.Registry
	srv     *rpcver.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Start starts a server of release on db and nc: a tracker for the move,
// a registration that carries its phases and the write freeze it
// acknowledges, heartbeats that carry both, and the RPC endpoints. every is the heartbeat and ledger refresh interval; log gets
// the server's handler errors (with the id the caller was told).
func Start(ctx context.Context, db *dialect.DB, nc *nats.Conn, id string, release int64, every time.Duration, log *slog.Logger) (*Instance, error) {
	reg, err := services.New(ctx, db, services.WithNATS(nc))
	if err != nil {
		return nil, err
	}
	// WithNotices: a write freeze announced on NATS (tandem --nats freeze)
	// is refused at once, not at the next refresh.
	tr, err := dualwrite.NewTracker(ctx, db, release, []move.Move{PropertiesMove}, dualwrite.WithNotices(nc, reg.Cluster()))
	if err != nil {
		return nil, errors.Join(err, reg.Close()) // a *dualwrite.TooOldError names the release to run
	}
	store, err := NewStore(db, tr)
	if err != nil {
		return nil, errors.Join(err, reg.Close())
	}
	api, err := NewAPI()
	if err != nil {
		return nil, errors.Join(err, reg.Close())
	}
	in := &Instance{ID: id, Tracker: tr, reg: reg}
	if err := reg.Register(ctx, services.Instance{ID: id, Service: "stacks", Release: release,
		APIs: []services.API{api.Registration()}, Phases: tr.Phases(), Freeze: tr.FreezeAck()}); err != nil {
		return nil, errors.Join(err, reg.Close())
	}
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in.cancel = cancel
	in.wg.Add(2)
	go func() {
		defer in.wg.Done()
		_ = tr.Run(run, every, nil)
	}()
	go func() {
		defer in.wg.Done()
		_ = services.KeepAlive(run, reg, id, every, func() services.Heartbeat {
			// Every write of the store begins with BeginWrite, so the
			// instance may acknowledge the write freeze it holds.
			return services.Heartbeat{Phases: tr.Phases(), Freeze: tr.FreezeAck()}
		}, services.WithOnFenced(tr.Stop), services.WithNATS(nc))
	}()
	in.srv, err = rpcver.NewServer(nc, api, rpcver.WithCluster(reg.Cluster()), rpcver.WithLogger(log))
	if err == nil {
		err = Handle(in.srv, store)
	}
	if err == nil {
		err = in.srv.Start(ctx)
	}
	if err != nil {
		in.srv = nil
		return nil, errors.Join(err, in.Leave(ctx))
	}
	return in, nil
}

// Leave stops the instance: the endpoints stop taking requests and the
// ones in flight finish (Shutdown), every operation begun with the
// tracker ends (Wait), and only then is the instance deregistered, so no
// gate forgets it while a write it began can still commit.
func (in *Instance) Leave(ctx context.Context) error {
	var errs []error
	if in.srv != nil {
		errs = append(errs, in.srv.Shutdown(ctx))
	}
	errs = append(errs, in.Tracker.Wait(ctx))
	in.Tracker.Stop(errors.New("stacks: instance leaving"))
	in.cancel()
	in.wg.Wait()
	if err := in.reg.Deregister(ctx, in.ID); err != nil && !errors.Is(err, services.ErrFenced) {
		errs = append(errs, err)
	}
	errs = append(errs, in.reg.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stacks: leave %s: %w", in.ID, err)
	}
	return nil
}
