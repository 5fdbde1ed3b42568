package services_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

// BenchmarkCachedCap is the hot path of every RPC: reading a cap.
func BenchmarkCachedCap(b *testing.B) {
	ctx := context.Background()
	reg := newRegistryB(b, dbtest.Open(b, dialect.SQLite))
	for i := range 10 {
		if err := reg.Register(ctx, services.Instance{ID: fmt.Sprint("i", i), Service: "volume", Release: 42,
			APIs: []services.API{{Name: "volume", Current: services.Version{Major: 3, Minor: i}}}}); err != nil {
			b.Fatal(err)
		}
	}
	cache, err := services.NewCache(ctx, reg, nil, services.WithTTL(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := cache.Cap("volume"); !ok {
				b.Fatal("no cap")
			}
		}
	})
}

// BenchmarkFloor10k computes the floor of 10,000 instances: from a snapshot
// in memory, and from the database (read + compute), per engine.
func BenchmarkFloor10k(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e.Name), func(b *testing.B) {
			ctx := context.Background()
			db := dbtest.Open(b, e.Name)
			reg := newRegistryB(b, db)
			tx := db.MustBegin()
			now := time.Now().UTC()
			for i := range 10000 {
				_, err := tx.Exec(tx.Rebind(`INSERT INTO `+services.InstancesTable+` (instance_id, service, host, app_release, apis, state, started_at, heartbeat_at, state_changed_at, metadata, phases) VALUES (?, 'volume', 'h', ?, '[{"name":"volume","current":"3.2","oldest":"3.0"}]', 'up', ?, ?, ?, '{}', '{}')`),
					fmt.Sprintf("i%05d", i), 42+int64(i%1000), now, now, now)
				if err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			snap, err := reg.Snapshot(ctx)
			if err != nil || len(snap.Instances) != 10000 {
				b.Fatalf("snapshot: %d, %v", len(snap.Instances), err)
			}
			b.Run("in-memory", func(b *testing.B) {
				for b.Loop() {
					if f := snap.Floor(); f.Release != 42 {
						b.Fatal(f.Release)
					}
				}
			})
			b.Run("snapshot-refresh", func(b *testing.B) {
				for b.Loop() {
					if s, err := reg.Snapshot(ctx); err != nil || len(s.Instances) != 10000 {
						b.Fatal(len(s.Instances), err)
					}
				}
			})
			// One page of `tandem services list --limit 100`, in the
			// middle of the listing: read by key, it costs its 100 rows.
			mid, err := reg.ListPage(ctx, services.ListQuery{Limit: 5000})
			if err != nil || mid.Next == "" {
				b.Fatalf("page: %v", err)
			}
			b.Run("list-page-of-100", func(b *testing.B) {
				for b.Loop() {
					if p, err := reg.ListPage(ctx, services.ListQuery{Limit: 100, After: mid.Next}); err != nil || len(p.Instances) != 100 {
						b.Fatal(len(p.Instances), err)
					}
				}
			})
			b.Run("from-database", func(b *testing.B) {
				for b.Loop() {
					if f, err := reg.Floor(ctx); err != nil || f.Release != 42 {
						b.Fatal(f.Release, err)
					}
				}
			})
		})
	}
}

func newRegistryB(b *testing.B, db *dialect.DB) *services.Registry {
	b.Helper()
	return mustRegistry(b, db)
}

// BenchmarkHeartbeatLoad is the database's side of 10,000 instances
// heartbeating, per engine: the time one heartbeat takes with 8 reporting
// at once, so 1e9/ns-per-op is the heartbeats per second the engine
// absorbs on this machine. "quiet" is a heartbeat that changes nothing
// (one UPDATE, the common case); "change" reports other phases each time
// (a transaction that also takes a revision, as a phase acknowledgement
// does). The documented interval, 10s (rpcver.WithRegistry's default),
// asks 1,000 heartbeats per second of 10,000 instances.
func BenchmarkHeartbeatLoad(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run(string(e.Name), func(b *testing.B) {
			ctx := context.Background()
			db := dbtest.Open(b, e.Name)
			reg := newRegistryB(b, db)
			const n = 10000
			tx := db.MustBegin()
			now := time.Now().UTC()
			for i := range n {
				_, err := tx.Exec(tx.Rebind(`INSERT INTO `+services.InstancesTable+` (instance_id, service, host, app_release, apis, state, started_at, heartbeat_at, state_changed_at, metadata, phases, incarnation) VALUES (?, 'volume', 'h', 42, '[{"name":"volume","current":"3.2","oldest":"3.0"}]', 'up', ?, ?, ?, '{}', '{"m":"legacy"}', 1)`),
					fmt.Sprintf("i%05d", i), now, now, now)
				if err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			for _, kind := range []string{"quiet", "change"} {
				b.Run(kind, func(b *testing.B) {
					var next atomic.Int64
					b.SetParallelism(4) // 8 reporters on 2 cores
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							i := next.Add(1)
							hb := services.Heartbeat{Incarnation: 1, Phases: map[string]string{"m": "legacy"}}
							if kind == "change" {
								hb.Phases = map[string]string{"m": fmt.Sprint("p", i)}
							}
							if err := reg.Heartbeat(ctx, fmt.Sprintf("i%05d", i%n), hb); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "heartbeats/s")
				})
			}
		})
	}
}
