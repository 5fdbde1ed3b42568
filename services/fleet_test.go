package services_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/services"
)

// fleet is one run of a whole-fleet rolling restart: instances registered
// at release 41, caches following the registry, and every instance
// restarted at release 42 (a deregistration, then a registration of a new
// incarnation: two changes each) at a steady rate, by several writers at
// once as the nodes of a fleet restart several instances at once.
type fleet struct {
	instances, caches, rate int
	restarts                int // how many instances the rollout restarts; 0 means all
	writers                 int // registries writing the rollout, each on its own database pool; 0 means 1
}

// fleetResult is what a run measured.
type fleetResult struct {
	changes       int
	rate          float64       // changes per second the writers reached
	writeP50      time.Duration // one change written (a deregistration or a registration)
	writeP99      time.Duration
	rowsPerChange float64 // instance rows read per change per cache
	cpuPerChange  time.Duration
	p50, p99, max time.Duration // from a change's commit to a cache applying it
	snapshots     uint64        // full snapshots after the caches started
	catchUps      uint64        // during the rollout
	gaps          uint64
	missed        int // changes some cache did not end up holding
	took          time.Duration
	load          string // the load average at the start and at the end
	peakRSS       int64
}

// lagHistogram counts lags in 100 µs buckets up to 60 s, without locks.
type lagHistogram struct {
	buckets [600000]atomic.Int64
	n       atomic.Int64
}

func (h *lagHistogram) add(d time.Duration) {
	i := int(d / (100 * time.Microsecond))
	i = max(0, min(i, len(h.buckets)-1))
	h.buckets[i].Add(1)
	h.n.Add(1)
}

func (h *lagHistogram) quantile(q float64) time.Duration {
	want := int64(math.Ceil(q * float64(h.n.Load())))
	var seen int64
	for i := range h.buckets {
		if seen += h.buckets[i].Load(); seen >= want && want > 0 {
			return time.Duration(i+1) * 100 * time.Microsecond
		}
	}
	return 0
}

// startOnce serves a snapshot read once, for all caches, as their first
// read, then reads the registry: the run measures the rollout, not 1,000
// caches starting at once.
type startOnce struct {
	*services.Registry
	first *services.Snapshot
	used  atomic.Bool
}

func (s *startOnce) Snapshot(ctx context.Context) (services.Snapshot, error) {
	if s.used.CompareAndSwap(false, true) {
		return *s.first, nil
	}
	return s.Registry.Snapshot(ctx)
}

// peakRSS is the process's peak resident memory.
func peakRSS() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss << 10 // KiB on Linux
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func openDSN(tb testing.TB, dsn string) *dialect.DB {
	tb.Helper()
	db, err := dialect.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func (f fleet) run(tb testing.TB, dsn string) fleetResult {
	tb.Helper()
	ctx := context.Background()
	ns := natstest.New(tb)
	db := openDSN(tb, dsn)
	// Heartbeats are not part of this run (see BenchmarkHeartbeatLoad):
	// nobody goes missing while the rollout takes its time. reg is the
	// caches' source; the writers are registries of their own, each with
	// its own database pool and NATS connection, as nodes would be.
	reg := mustRegistry(tb, db, services.WithMissingAfter(time.Hour))
	writers := make([]*services.Registry, max(f.writers, 1))
	for i := range writers {
		writers[i] = mustRegistry(tb, openDSN(tb, dsn), services.WithNATS(natstest.Connect(tb, ns)), services.WithMissingAfter(time.Hour))
	}

	now := time.Now().UTC()
	tx := db.MustBegin()
	for i := range f.instances {
		_, err := tx.Exec(tx.Rebind(`INSERT INTO `+services.InstancesTable+` (instance_id, service, host, app_release, apis, state, started_at, heartbeat_at, state_changed_at, metadata, phases) VALUES (?, 'volume', 'h', 41, '[{"name":"volume","current":"3.1","oldest":"3.0"}]', 'up', ?, ?, ?, '{}', '{}')`),
			fmt.Sprintf("i%05d", i), now, now, now)
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	first, err := reg.Snapshot(ctx)
	if err != nil || len(first.Instances) != f.instances {
		tb.Fatalf("snapshot: %d instances, %v", len(first.Instances), err)
	}

	var lags lagHistogram
	hook := services.WithCacheEvents(func(e services.CacheEvent) {
		if e.Kind == "delta" {
			lags.add(e.Lag)
		}
	})
	// Caches share connections as processes would not, 50 to one, so a
	// run does not open 1,000 sockets; each has its own subscription.
	var conns []*nats.Conn
	caches := make([]*services.Cache, f.caches)
	for i := range caches {
		if i%50 == 0 {
			conns = append(conns, natstest.Connect(tb, ns))
		}
		c, err := services.NewCache(ctx, &startOnce{Registry: reg, first: &first}, conns[len(conns)-1], hook)
		if err != nil {
			tb.Fatal(err)
		}
		caches[i] = c
	}
	defer func() {
		var wg sync.WaitGroup
		for _, c := range caches {
			wg.Add(1)
			go func() { defer wg.Done(); c.Close() }()
		}
		wg.Wait()
	}()
	for _, nc := range conns {
		if err := nc.Flush(); err != nil {
			tb.Fatal(err)
		}
	}
	var base services.CacheStats
	for _, c := range caches {
		s := c.Stats()
		base.RowsRead += s.RowsRead
		base.Snapshots += s.Snapshots
		base.CatchUps += s.CatchUps
		base.Gaps += s.Gaps
	}

	load0 := loadAverage()
	start, cpu0 := time.Now(), cpuTime()
	every := time.Second / time.Duration(f.rate)
	restarts := f.restarts
	if restarts == 0 || restarts > f.instances {
		restarts = f.instances
	}
	// Change k is due at start + k/rate, whichever writer makes it; a
	// writer restarts the next instance not taken yet.
	var (
		due, taken atomic.Int64
		writes     lagHistogram
		wg         sync.WaitGroup
		failed     atomic.Bool
	)
	pace := func() {
		if d := time.Until(start.Add(time.Duration(due.Add(1)-1) * every)); d > 0 {
			time.Sleep(d)
		}
	}
	timed := func(op func() error) error {
		pace()
		t0 := time.Now()
		err := op()
		writes.add(time.Since(t0))
		return err
	}
	for _, w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(taken.Add(1)) - 1
				if i >= restarts {
					return
				}
				id := fmt.Sprintf("i%05d", i)
				if err := timed(func() error { return w.Deregister(ctx, id) }); err != nil {
					failed.Store(true)
					tb.Errorf("deregister %s: %v", id, err)
					return
				}
				err := timed(func() error {
					return w.Register(ctx, services.Instance{ID: id, Service: "volume", Host: "h", Release: 42,
						APIs: []services.API{{Name: "volume", Current: services.MustParseVersion("3.2"), Oldest: services.MustParseVersion("3.0")}}})
				})
				if err != nil {
					failed.Store(true)
					tb.Errorf("register %s: %v", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		tb.FailNow()
	}
	wrote := time.Since(start)
	changes := 2 * restarts
	want, err := reg.Snapshot(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	// Every cache reaches the database's revision, or the run failed.
	deadline := time.Now().Add(2 * time.Minute)
	for _, c := range caches {
		for c.Revision() < want.Revision {
			if time.Now().After(deadline) {
				tb.Fatalf("a cache is at revision %d, the database at %d, 2 minutes after the rollout", c.Revision(), want.Revision)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	took, cpu := time.Since(start), cpuTime()-cpu0

	res := fleetResult{changes: changes, took: took, cpuPerChange: cpu / time.Duration(changes),
		rate: float64(changes) / wrote.Seconds(), writeP50: writes.quantile(0.50), writeP99: writes.quantile(0.99),
		p50: lags.quantile(0.50), p99: lags.quantile(0.99), max: lags.quantile(1), load: load0 + " / " + loadAverage(), peakRSS: peakRSS()}
	var rows uint64
	for _, c := range caches {
		s := c.Stats()
		rows += s.RowsRead
		res.snapshots += s.Snapshots
		res.catchUps += s.CatchUps
		res.gaps += s.Gaps
		if diff := cacheDiffByID(c, want); diff != "" {
			res.missed++
			tb.Errorf("a cache differs from the database after the rollout: %s", diff)
		}
	}
	rows -= base.RowsRead
	res.snapshots -= base.Snapshots
	res.catchUps -= base.CatchUps
	res.gaps -= base.Gaps
	res.rowsPerChange = float64(rows) / float64(changes) / float64(f.caches)
	if n := lags.n.Load(); n != int64(changes)*int64(f.caches) && res.catchUps == 0 {
		tb.Errorf("%d deltas applied, want %d (%d changes x %d caches)", n, changes*f.caches, changes, f.caches)
	}
	return res
}

func (r fleetResult) String() string {
	return fmt.Sprintf("%d changes in %s at %.1f/s (write p50 %s p99 %s): %.3f rows read per change per cache, CPU %s per change, staleness p50 %s p99 %s max %s, %d full snapshots, %d catch-ups (%d gaps), %d missed; load %s; peak RSS %.1f GB",
		r.changes, r.took.Round(time.Millisecond), r.rate, r.writeP50, r.writeP99, r.rowsPerChange, r.cpuPerChange.Round(time.Microsecond),
		r.p50, r.p99, r.max, r.snapshots, r.catchUps, r.gaps, r.missed, r.load, float64(r.peakRSS)/1e9)
}

// check fails tb when the run missed a target: at most one row read per
// cache per change, staleness p99 at most a second, nothing missed.
func (r fleetResult) check(tb testing.TB) {
	tb.Helper()
	if r.rowsPerChange > 1 {
		tb.Errorf("%.3f rows read per change per cache, want at most 1", r.rowsPerChange)
	}
	if r.p99 > time.Second {
		tb.Errorf("staleness p99 %s, want at most 1s", r.p99)
	}
	if r.missed != 0 {
		tb.Errorf("%d caches missed a change", r.missed)
	}
}

// TestFleetRollout is the fleet benchmark at a size CI runs in seconds:
// 200 instances, 20 caches, every instance restarted at 200 changes per
// second by 4 writers, on every engine, with the benchmark's targets.
func TestFleetRollout(t *testing.T) {
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			r := fleet{instances: 200, caches: 20, rate: 200, writers: 4}.run(t, dbtest.DSN(t, e.Name))
			t.Log(r)
			r.check(t)
		})
	}
}

// fleetEnv reads a size from the environment, for a run smaller or larger
// than the default.
func fleetEnv(b *testing.B, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive number", name, v)
		}
		return n
	}
	return def
}

// BenchmarkFleetRollout is a rolling restart of a 10,000-instance fleet
// with 1,000 caches at 100 changes per second by 8 writers (20,000
// changes, over three minutes per engine): run it with -benchtime=1x.
// TANDEM_FLEET_INSTANCES, TANDEM_FLEET_CACHES, TANDEM_FLEET_RATE,
// TANDEM_FLEET_RESTARTS (how many instances the rollout restarts) and
// TANDEM_FLEET_WRITERS change the size.
func BenchmarkFleetRollout(b *testing.B) {
	f := fleet{
		instances: fleetEnv(b, "TANDEM_FLEET_INSTANCES", 10000),
		caches:    fleetEnv(b, "TANDEM_FLEET_CACHES", 1000),
		rate:      fleetEnv(b, "TANDEM_FLEET_RATE", 100),
		restarts:  fleetEnv(b, "TANDEM_FLEET_RESTARTS", 10000),
		writers:   fleetEnv(b, "TANDEM_FLEET_WRITERS", 8),
	}
	for _, e := range dbtest.Engines {
		b.Run(string(e.Name), func(b *testing.B) {
			for b.Loop() {
				r := f.run(b, dbtest.DSN(b, e.Name))
				b.Log(r)
				r.check(b)
				b.ReportMetric(r.rate, "changes/s")
				b.ReportMetric(float64(r.writeP50.Microseconds())/1000, "write-p50-ms")
				b.ReportMetric(r.rowsPerChange, "rows/change/cache")
				b.ReportMetric(float64(r.cpuPerChange.Microseconds()), "cpu-µs/change")
				b.ReportMetric(float64(r.p50.Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(r.p99.Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(r.snapshots), "snapshots")
				b.ReportMetric(float64(r.missed), "missed")
			}
		})
	}
}

// cacheDiffByID is cacheDiff without building the cache's snapshot (a
// thousand sorted copies of 10,000 instances would dwarf the caches).
func cacheDiffByID(c *services.Cache, want services.Snapshot) string {
	if r := c.Revision(); r != want.Revision {
		return fmt.Sprintf("revision %d, want %d", r, want.Revision)
	}
	if c.Floor() != want.Floor().Release {
		return fmt.Sprintf("floor %d, want %d", c.Floor(), want.Floor().Release)
	}
	if v, _ := c.Cap("volume"); v != want.Caps()["volume"].Version {
		return fmt.Sprintf("cap %s, want %s", v, want.Caps()["volume"].Version)
	}
	if c.Len() != len(want.Instances) {
		return fmt.Sprintf("%d instances, want %d", c.Len(), len(want.Instances))
	}
	for _, w := range want.Instances {
		g, ok := c.Instance(w.ID)
		if !ok || g.Release != w.Release || g.State != w.State || g.Incarnation != w.Incarnation || g.Revision != w.Revision ||
			fmt.Sprint(g.APIs) != fmt.Sprint(w.APIs) {
			return fmt.Sprintf("instance %s: %+v (held %v), want %+v", w.ID, g, ok, w)
		}
	}
	return ""
}
