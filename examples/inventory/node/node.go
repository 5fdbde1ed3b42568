package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/examples/inventory"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// Config says what one process is.
type Config struct {
	// DSN is the application's database, which also holds tandem's tables.
	DSN string
	// ID names the instance's role (a pod, a host slot); keep it across
	// restarts. Service and Release go to the registry as they are.
	ID, Service string
	Release     int64
	// APIs are the APIs the process serves (none for a job).
	APIs []services.API
	// Move is the name of the move of the items table's price.
	Move string
	// Plan, when set, is a plan file (the one `tandem moves apply --plan`
	// records) declaring the moves; otherwise they come from the ledger,
	// and a ledger that does not know Move gets inventory.PriceMove with
	// DefaultReleases.
	Plan string
	// Heartbeat and Refresh are how often the process heartbeats and
	// rereads the ledger (both 5s by default).
	Heartbeat, Refresh time.Duration
	NATS               *nats.Conn
	Log                *slog.Logger
}

// DefaultReleases are the releases of the example's price move when
// nothing else declares it: release 42 writes both columns, 43 reads the
// new one, 44 writes it only and may contract.
var DefaultReleases = move.Releases{WriteBoth: 42, ReadNew: 43, WriteNew: 44, Contracted: 44}

// Node is one registered process.
type Node struct {
	DB      *dialect.DB
	Reg     *services.Registry
	Tracker *dualwrite.Tracker
	Store   *inventory.SQLStore

	cfg    Config
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{} // closed when the node must stop (fenced, too old)
	once   sync.Once
	mu     sync.Mutex
	cause  error
	fenced bool
}

// Start opens the database, ensures tandem's tables and the items table,
// starts the tracker (refused with a *dualwrite.TooOldError when this
// release may not run at the ledger's phase), registers the instance and
// starts heartbeating.
func Start(ctx context.Context, cfg Config) (_ *Node, err error) {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 5 * time.Second
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Move == "" {
		cfg.Move = "price_cents"
	}
	db, err := dialect.Open(ctx, cfg.DSN)
	if err != nil {
		return nil, err
	}
	n := &Node{DB: db, cfg: cfg, done: make(chan struct{})}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	// Idempotent, and safe from every process at once: a database lock
	// serializes concurrent runs.
	if _, err := schema.Ensure(ctx, db, append(services.Tables(), dualwrite.Tables()...)); err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, inventory.CreateTableIfMissingSQL); err != nil {
		return nil, fmt.Errorf("create the items table: %w", err)
	}
	m, err := priceMove(ctx, db, cfg)
	if err != nil {
		return nil, err
	}
	opts := []services.Option{services.WithLogger(cfg.Log)}
	trOpts := []dualwrite.Option{dualwrite.WithLogger(cfg.Log)}
	if cfg.NATS != nil {
		opts = append(opts, services.WithNATS(cfg.NATS))
	}
	if n.Reg, err = services.New(ctx, db, opts...); err != nil {
		return nil, err
	}
	if cfg.NATS != nil {
		// A write freeze announced on NATS (tandem --nats freeze) is
		// refused at once, not at the next refresh.
		trOpts = append(trOpts, dualwrite.WithNotices(cfg.NATS, n.Reg.Cluster()))
	}
	if n.Tracker, err = dualwrite.NewTracker(ctx, db, cfg.Release, []move.Move{m}, trOpts...); err != nil {
		return nil, err
	}
	if n.Store, err = inventory.NewSQLStore(db, m, n.Tracker); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	// Registered with the phases it acts on from the first row on, so no
	// gate ever sees this writer without them.
	in := services.Instance{ID: cfg.ID, Service: cfg.Service, Host: host, Release: cfg.Release, APIs: cfg.APIs, Phases: n.Tracker.Phases(),
		Freeze: n.Tracker.FreezeAck()}
	if err := n.Reg.Register(ctx, in); err != nil {
		return nil, err
	}
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		err := n.Tracker.Run(run, cfg.Refresh, func(err error) { cfg.Log.Warn("tracker refresh", "err", err) })
		if errors.Is(err, dualwrite.ErrTooOld) {
			// The ledger moved two phases past this build: stop
			// serving and writing, and exit.
			n.stop(err, false)
		}
	}()
	kaOpts := []services.Option{services.WithOnFenced(func(err error) {
		n.Tracker.Stop(err) // no new operation begins from here on
		n.stop(err, true)
	})}
	if cfg.NATS != nil {
		kaOpts = append(kaOpts, services.WithNATS(cfg.NATS)) // fenced at once, not at the next heartbeat
	}
	go func() {
		defer n.wg.Done()
		_ = services.KeepAlive(run, n.Reg, cfg.ID, cfg.Heartbeat, n.heartbeat, kaOpts...)
	}()
	return n, nil
}

// priceMove is the move of items.price: from the plan file when there is
// one, else as the ledger records it, else the built-in declaration.
func priceMove(ctx context.Context, db *dialect.DB, cfg Config) (move.Move, error) {
	if cfg.Plan != "" {
		p, err := dualwrite.LoadPlan(cfg.Plan)
		if err != nil {
			return move.Move{}, err
		}
		for _, m := range p.Moves {
			if m.Name == cfg.Move {
				return m, nil
			}
		}
		return move.Move{}, fmt.Errorf("plan %s declares no move %q: add it, or pass the move's name with -move", cfg.Plan, cfg.Move)
	}
	mg, err := dualwrite.Load(ctx, db, nil)
	if err != nil {
		return move.Move{}, err
	}
	m, err := mg.Move(cfg.Move)
	if errors.Is(err, dualwrite.ErrUnknownMove) {
		return inventory.PriceMove(cfg.Move, inventory.Table, DefaultReleases, false), nil
	}
	return m, err
}

// heartbeat reports the phases the tracker acts on and the write freeze
// it acknowledges, and draining once the node is leaving.
func (n *Node) heartbeat() services.Heartbeat {
	return services.Heartbeat{Phases: n.Tracker.Phases(), Freeze: n.Tracker.FreezeAck()}
}

func (n *Node) stop(cause error, fenced bool) {
	n.once.Do(func() {
		n.mu.Lock()
		n.cause, n.fenced = cause, fenced
		n.mu.Unlock()
		close(n.done)
	})
}

// Done is closed when the process must stop by itself: its instance was
// fenced (deleted or superseded), or the ledger moved past its build. Err
// then says why.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err says why Done was closed, or nil.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cause
}

// Leave takes the process out of the cluster, in this order:
//
//  1. report draining, so the operator's view shows it leaving;
//  2. drain: stop taking work and finish what was taken (for an RPC
//     server, rpcver.Server.Shutdown, which stops the endpoints and waits
//     for the handlers; for a job, its loop returning);
//  3. wait for every operation begun with the tracker (Tracker.Wait),
//     then stop the tracker and the heartbeats;
//  4. deregister, then close the registry and the database.
//
// Deregistering is what tells the gates this writer is gone, so it comes
// last: while the row stands, the gates count the phase the heartbeats
// report, and an operation begun at an older phase (one whose handler
// outlived the drain's deadline, say) keeps the next transition waiting
// until it has committed or rolled back. Deregistered first, its write
// could land old-only after the backfill had passed the row.
// A fenced instance does not deregister: its row belongs to whoever holds
// the id now.
func (n *Node) Leave(ctx context.Context, drain func(context.Context) error) error {
	var errs []error
	n.mu.Lock()
	fenced := n.fenced
	n.mu.Unlock()
	if !fenced {
		hb := n.heartbeat()
		hb.State = services.StateDraining
		if err := n.Reg.Heartbeat(ctx, n.cfg.ID, hb); err != nil && !errors.Is(err, services.ErrNotFound) {
			errs = append(errs, fmt.Errorf("report draining: %w", err))
		}
	}
	if drain != nil {
		if err := drain(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain: %w", err))
		}
	}
	if err := n.Tracker.Wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("wait for operations in flight: %w", err))
	}
	n.Tracker.Stop(errors.New("the process is leaving"))
	n.cancel()
	n.wg.Wait()
	n.mu.Lock()
	fenced = n.fenced
	n.mu.Unlock()
	if !fenced {
		if err := n.Reg.Deregister(ctx, n.cfg.ID); err != nil && !errors.Is(err, services.ErrNotFound) && !errors.Is(err, services.ErrFenced) {
			errs = append(errs, err)
		}
	}
	n.close()
	return errors.Join(errs...)
}

func (n *Node) close() {
	if n.Reg != nil {
		_ = n.Reg.Close()
	}
	_ = n.DB.Close()
}
