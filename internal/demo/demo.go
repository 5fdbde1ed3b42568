package demo

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/history"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// Sentinel errors.
var (
	// ErrConfig means the configuration is wrong; nothing was started.
	ErrConfig = errors.New("bad demo configuration")
	// ErrNotEmpty means the database given already holds tandem's or the
	// demo's tables, whose state would make the run meaningless.
	ErrNotEmpty = errors.New("database not empty")
)

// ConfigError names the setting that is wrong and why.
type ConfigError struct {
	Field, Value, Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("demo: %s %q: %s", e.Field, e.Value, e.Reason)
}

func (e *ConfigError) Unwrap() error { return ErrConfig }

// Config says where and how the demo runs. The zero value is the default
// demo: SQLite in a temporary directory, an embedded NATS server, three
// instances, about a minute.
type Config struct {
	// DSN is the database; empty means a SQLite file in a temporary
	// directory. On PostgreSQL and MySQL/MariaDB the demo creates a fresh
	// database next to the one named (the DSN's user needs the right to)
	// and drops it at the end unless Keep is set. A SQLite file given here
	// is used as is and must not hold tandem's tables yet.
	DSN string
	// NATSURL is the NATS server; empty means an embedded one on a random
	// loopback port. Chaos restarts only an embedded server.
	NATSURL string
	// Fast runs in a few seconds, for tests and CI.
	Fast bool
	// Chaos kills instances at random and restarts the embedded NATS server.
	Chaos bool
	// Instances of the inventory service (default 3, at least 2).
	Instances int
	// Clients is the number of RPC client goroutines (default 4), Workers
	// the number of database worker goroutines (default 2).
	Clients, Workers int
	// Seed makes chaos repeatable; 0 picks one (printed).
	Seed uint64
	// Keep keeps the database (and the temporary directory) for inspection.
	Keep bool
	// Out receives the timeline; nil discards it.
	Out io.Writer
	// Logger receives the packages' logs; nil is silent.
	Logger *slog.Logger
	// Watch, when set, is called once the database and NATS are ready,
	// with where they are, and returns a func that stops whatever it
	// started; the demo calls it before it closes or drops the database.
	// `tandem demo --serve` starts the live page with it.
	Watch func(ctx context.Context, w Watched) (stop func(), err error)

	// tune adjusts the timings, for tests.
	tune func(*settings)
	// fault, for tests, replaces the phase an instance of release acts on
	// for a move, while it keeps reporting the phase its tracker gives: a
	// release with a bug the demo's checks must catch.
	fault func(release int64, move string, p move.Phase) move.Phase
	// ghost, for tests, is a server with another bug: a PutItem for which
	// it returns true ignores its caller's deadline, and is applied only
	// once its caller has seen it fail.
	ghost func(it *pb.Item) bool
	// ignoreFreeze, for tests, is a release with a third bug: it
	// acknowledges write freezes but begins its writes as reads, so a
	// freeze refuses none of them.
	ignoreFreeze bool
}

// Watched is what Config.Watch is given: where the demo runs. DSN is as
// given to the demo and may hold a password: keep it in the process.
type Watched struct {
	DSN, NATSURL string
	// MissingAfter is the heartbeat age after which the demo's registry
	// counts an instance missing; a watcher's registry must use it too.
	MissingAfter time.Duration
}

// settings are the timings of one mode.
type settings struct {
	warmup, dwell, tick, heartbeat, tracker, missingAfter, cacheTTL time.Duration
	attempt, opTimeout, deadline, phaseWait, pace                   time.Duration
	seedRows, keys                                                  int
	rate                                                            float64
	killEvery, killDown                                             [2]time.Duration
	// natsDown is longer than an attempt, so writes in flight when NATS
	// stops, and those sent while it is down, time out for their callers.
	natsDown   time.Duration
	chaosDwell time.Duration // dwell with chaos, so kills land mid-rollout
	maxKills   int
}

func settingsFor(fast bool) settings {
	if fast {
		return settings{warmup: 300 * time.Millisecond, dwell: 150 * time.Millisecond, tick: 40 * time.Millisecond,
			heartbeat: 100 * time.Millisecond, tracker: 100 * time.Millisecond, missingAfter: 600 * time.Millisecond,
			cacheTTL: 500 * time.Millisecond, attempt: 2 * time.Second, opTimeout: time.Second, deadline: 30 * time.Second,
			phaseWait: 60 * time.Second, pace: 5 * time.Millisecond, seedRows: 300, keys: 15,
			killEvery: [2]time.Duration{200 * time.Millisecond, 500 * time.Millisecond},
			killDown:  [2]time.Duration{700 * time.Millisecond, 1000 * time.Millisecond},
			natsDown:  2500 * time.Millisecond, maxKills: 3, chaosDwell: 400 * time.Millisecond}
	}
	return settings{warmup: 4 * time.Second, dwell: 5 * time.Second, tick: 250 * time.Millisecond,
		heartbeat: 500 * time.Millisecond, tracker: 500 * time.Millisecond, missingAfter: 3 * time.Second,
		cacheTTL: 2 * time.Second, attempt: 3 * time.Second, opTimeout: 1500 * time.Millisecond, deadline: 45 * time.Second,
		phaseWait: 180 * time.Second, pace: 20 * time.Millisecond, seedRows: 20000, keys: 40, rate: 4000,
		killEvery: [2]time.Duration{3 * time.Second, 6 * time.Second},
		killDown:  [2]time.Duration{4 * time.Second, 5 * time.Second},
		natsDown:  4 * time.Second, maxKills: 4, chaosDwell: 5 * time.Second}
}

// The releases the demo rolls through, and the API version each serves.
const firstRelease = 41

var apiOf = map[int64]string{41: "1.0", 42: "1.1", 43: "1.2", 44: "1.2"}

// The two moves: items without triggers, one release per phase; catalog
// with triggers, where release 42 carries every phase.
var (
	itemsMove   = inventory.PriceMove("items_price_cents", "items", move.Releases{WriteBoth: 42, ReadNew: 43, WriteNew: 44, Contracted: 44}, false)
	catalogMove = inventory.PriceMove("catalog_price_cents", "catalog", move.Releases{WriteBoth: 42, ReadNew: 42, WriteNew: 42, Contracted: 42}, true)
)

// Moves returns the demo's two moves.
func Moves() []move.Move { return []move.Move{itemsMove, catalogMove} }

// run is one demo run.
type run struct {
	cfg   Config
	s     settings
	tl    *timeline
	log   *slog.Logger
	moves []move.Move

	db      *dialect.DB
	engine  dialect.Name
	where   string // the database, for people
	dsn     string // the database, to reopen it
	cleanup []func()

	natsURL string
	nsMu    sync.Mutex
	ns      *natstest.Server // nil with an external server
	nsPort  int
	nsDir   string

	reg    *services.Registry
	mg     *dualwrite.Manager
	opNC   *nats.Conn
	loadNC *nats.Conn
	cache  *services.Cache
	slots  []*slot

	rngMu sync.Mutex
	rng   *rand.Rand

	st     counters
	freeze freezeWindow // the rollout's step under a write freeze
	probMu sync.Mutex
	probs  []string

	hist         *history.Recorder // every operation of every key
	applied      applied           // when the stores committed each write
	inflight     atomic.Int64      // RPC writes sent and not answered yet
	natsInFlight int64             // of them, when NATS stopped
	sawFail      sync.Map          // appliedKey -> struct{}: writes whose caller saw them fail

	phaseMu      sync.Mutex
	phaseAt      map[string][]phaseMark
	kills        int
	natsRestarts int
	keys         []*keyState
}

type phaseMark struct {
	phase move.Phase
	at    time.Duration
}

// Run runs the demo and returns its summary. An error means the demo could
// not run (bad configuration, unreachable database or NATS); what it
// found while running is in the Summary, whose OK says whether every
// request succeeded, no write was lost and no read was wrong.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if cfg.Instances == 0 {
		cfg.Instances = 3
	}
	if cfg.Clients == 0 {
		cfg.Clients = 4
	}
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	if cfg.Instances < 2 || cfg.Instances > 20 {
		return Summary{}, &ConfigError{Field: "instances", Value: fmt.Sprint(cfg.Instances), Reason: "want 2 to 20: a rolling restart needs another instance to serve meanwhile"}
	}
	if cfg.Clients < 1 || cfg.Clients > 64 || cfg.Workers < 0 || cfg.Workers > 64 {
		return Summary{}, &ConfigError{Field: "clients/workers", Value: fmt.Sprintf("%d/%d", cfg.Clients, cfg.Workers), Reason: "want 1 to 64 clients and 0 to 64 workers"}
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	s := settingsFor(cfg.Fast)
	if cfg.Chaos {
		s.dwell = s.chaosDwell
	}
	if cfg.tune != nil {
		cfg.tune(&s)
	}
	r := &run{cfg: cfg, s: s, tl: &timeline{w: out, start: time.Now()},
		log: cfg.Logger, moves: Moves(), hist: history.NewRecorder(), rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed>>1|1)), phaseAt: map[string][]phaseMark{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	defer r.close()
	if err := r.setup(ctx); err != nil {
		return Summary{}, err
	}
	if cfg.Watch != nil {
		stop, err := cfg.Watch(ctx, Watched{DSN: r.dsn, NATSURL: r.natsURL, MissingAfter: r.s.missingAfter})
		if err != nil {
			return Summary{}, fmt.Errorf("demo: watch: %w", err)
		}
		r.cleanup = append(r.cleanup, stop) // runs first: before the database closes
	}
	r.play(ctx)
	// The final check reads even after an interrupt: what ran is reported.
	sum := r.summary(context.WithoutCancel(ctx))
	if err := ctx.Err(); err != nil {
		return sum, fmt.Errorf("demo: interrupted: %w", err)
	}
	return sum, nil
}

func (r *run) close() {
	for i := len(r.cleanup) - 1; i >= 0; i-- {
		r.cleanup[i]()
	}
}

func (r *run) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.probMu.Lock()
	defer r.probMu.Unlock()
	if len(r.probs) < 20 {
		r.probs = append(r.probs, msg)
	}
}

func (r *run) randBetween(b [2]time.Duration) time.Duration {
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	return b[0] + time.Duration(r.rng.Int64N(int64(b[1]-b[0])+1))
}

func (r *run) randN(n int) int {
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	return r.rng.IntN(n)
}

// setup opens the database and NATS, creates the tables and seeds them,
// and starts the registry, the manager and the clients' cache.
func (r *run) setup(ctx context.Context) error {
	if err := r.openDB(ctx); err != nil {
		return err
	}
	if err := r.openNATS(); err != nil {
		return err
	}
	if _, err := schema.Ensure(ctx, r.db, append(services.Tables(), dualwrite.Tables()...)); err != nil {
		return fmt.Errorf("demo: tandem's tables: %w", err)
	}
	for _, m := range r.moves {
		stmt, err := inventory.CreateTableSQL(m.Table)
		if err != nil {
			return err
		}
		if _, err := r.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("demo: create %s: %w", m.Table, err)
		}
		if err := r.seed(ctx, m.Table); err != nil {
			return err
		}
	}
	var err error
	r.opNC, err = r.connect("tandem demo operator")
	if err != nil {
		return err
	}
	r.cleanup = append(r.cleanup, r.opNC.Close)
	r.loadNC, err = r.connect("tandem demo clients")
	if err != nil {
		return err
	}
	r.cleanup = append(r.cleanup, r.loadNC.Close)
	r.reg, err = services.New(ctx, r.db, services.WithNATS(r.opNC), services.WithMissingAfter(r.s.missingAfter), services.WithLogger(r.log))
	if err != nil {
		return fmt.Errorf("demo: registry: %w", err)
	}
	r.mg, err = dualwrite.New(ctx, r.db, r.moves, dualwrite.WithRegistry(r.reg), dualwrite.WithLogger(r.log))
	if err != nil {
		return fmt.Errorf("demo: moves: %w", err)
	}
	r.cache, err = services.NewCache(ctx, r.reg, r.loadNC, services.WithTTL(r.s.cacheTTL), services.WithLogger(r.log))
	if err != nil {
		return fmt.Errorf("demo: cache: %w", err)
	}
	r.cleanup = append(r.cleanup, r.cache.Close)
	return nil
}

// openDB opens the database the demo runs in: always a fresh one, so a
// rerun starts from legacy again.
func (r *run) openDB(ctx context.Context) error {
	dsn := r.cfg.DSN
	if dsn == "" {
		dir, err := os.MkdirTemp("", "tandem-demo-*")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if !r.cfg.Keep {
			r.cleanup = append(r.cleanup, func() { _ = os.RemoveAll(dir) })
		}
		dsn = "sqlite://" + filepath.Join(dir, "demo.db")
	}
	parsed, err := dialect.ParseDSN(dsn)
	if err != nil {
		return err
	}
	r.engine = parsed.Engine
	if parsed.Engine != dialect.SQLite {
		if dsn, err = r.freshServerDB(ctx, dsn); err != nil {
			return err
		}
	}
	r.db, err = dialect.Open(ctx, dsn, dialect.WithLogger(r.log))
	if err != nil {
		return err
	}
	r.cleanup = append(r.cleanup, func() { r.db.Close() })
	r.where, r.dsn = r.db.DSN().Redacted(), dsn
	if parsed.Engine == dialect.SQLite && r.cfg.DSN != "" {
		for _, t := range []string{services.InstancesTable, dualwrite.MovesTable, itemsMove.Table, catalogMove.Table} {
			ok, err := sqldialect.Of(r.db).TableExists(ctx, r.db, t)
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			if ok {
				return fmt.Errorf("demo: %s already has table %s: %w; give a new file (the demo always starts from legacy)", r.where, t, ErrNotEmpty)
			}
		}
	}
	return nil
}

// freshServerDB creates a new database on the server dsn names and returns
// its DSN; it is dropped at the end unless Keep is set.
func (r *run) freshServerDB(ctx context.Context, dsn string) (string, error) {
	admin, err := dialect.Open(ctx, dsn, dialect.WithLogger(r.log))
	if err != nil {
		return "", err
	}
	defer admin.Close()
	// Not from the chaos seed: a rerun with the same seed needs a new name.
	var b [4]byte
	_, _ = crand.Read(b[:])
	name := fmt.Sprintf("tandem_demo_%x", b)
	create, err := sqldialect.CreateDatabaseSQL(sqldialect.Of(admin), name)
	if err != nil {
		return "", err
	}
	drop, _ := sqldialect.DropDatabaseSQL(sqldialect.Of(admin), name)
	if _, err := admin.ExecContext(ctx, create); err != nil {
		return "", fmt.Errorf("demo: create database %s on %s (the demo runs in a fresh database; the DSN's user needs the right to create one): %w", name, admin.DSN().Redacted(), err)
	}
	if !r.cfg.Keep {
		r.cleanup = append(r.cleanup, func() {
			a, err := dialect.Open(context.Background(), dsn)
			if err != nil {
				return
			}
			defer a.Close()
			_, _ = a.ExecContext(context.Background(), drop)
		})
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", &ConfigError{Field: "db", Value: admin.DSN().Redacted(), Reason: err.Error()}
	}
	u.Path = "/" + name
	return u.String(), nil
}

// seed fills table with rows that only the legacy release wrote: after
// contract each must read back as its price times 100.
func (r *run) seed(ctx context.Context, table string) error {
	tx, err := r.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("demo: seed %s: %w", table, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	const per = 200
	for start := 0; start < r.s.seedRows; start += per {
		var vals []string
		var args []any
		for i := start; i < min(start+per, r.s.seedRows); i++ {
			vals = append(vals, "(?, ?, ?, ?)")
			args = append(args, seedID(i), fmt.Sprintf("seeded %d", i), int64(i%50), seedPrice(i))
		}
		q := tx.Rebind(`INSERT INTO ` + table + ` (id, name, quantity, price) VALUES ` + strings.Join(vals, ", "))
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("demo: seed %s: %w", table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("demo: seed %s: %w", table, err)
	}
	return nil
}

func seedID(i int) string   { return fmt.Sprintf("seed-%06d", i) }
func seedPrice(i int) int64 { return int64(i%997 + 1) }
func isSeed(id string) bool { return strings.HasPrefix(id, "seed-") }

func (r *run) openNATS() error {
	if r.cfg.NATSURL != "" {
		r.natsURL = r.cfg.NATSURL
		return nil
	}
	dir, err := os.MkdirTemp("", "tandem-demo-nats-*")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	r.cleanup = append(r.cleanup, func() { _ = os.RemoveAll(dir) })
	ns, err := natstest.Start(0, dir)
	if err != nil {
		return fmt.Errorf("demo: embedded NATS: %w", err)
	}
	r.ns, r.nsDir, r.nsPort, r.natsURL = ns, dir, ns.Port(), ns.ClientURL()
	r.cleanup = append(r.cleanup, func() {
		r.nsMu.Lock()
		defer r.nsMu.Unlock()
		if r.ns != nil {
			r.ns.Stop()
		}
	})
	return nil
}

// connect opens a NATS connection as an application would, with nats.go's
// default reconnect buffer, only reconnecting forever and quickly. A
// request published into that buffer could reach a server long after its
// caller gave up and retried (a ghost write); rpcver's client never sends
// through it (it opens its own connection without a buffer), and the
// summary's ghost check shows that holds.
func (r *run) connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect(r.natsURL, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectJitter(10*time.Millisecond, 10*time.Millisecond),
		// nats.go prints asynchronous errors to stderr unless told otherwise.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { r.log.Debug("nats", "conn", name, "err", err) }))
	if err != nil {
		var secrets []string
		for _, one := range strings.Split(r.natsURL, ",") {
			u, perr := dialect.ParseServerURL(strings.TrimSpace(one))
			if perr != nil {
				return nil, fmt.Errorf("demo: NATS: %w", perr) // nats.go's error would quote the URL
			}
			secrets = append(secrets, dialect.URLSecrets(u)...)
		}
		return nil, fmt.Errorf("demo: connect to NATS at %s: %w", dialect.RedactURL(r.natsURL), dialect.Scrub(err, secrets...))
	}
	return nc, nil
}
