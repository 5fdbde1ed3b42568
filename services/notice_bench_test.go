package services_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/services"
)

// memSource serves one snapshot from memory: the benchmarks of a cache's
// notices measure the cache, not a database.
type memSource struct{ snap services.Snapshot }

func (m memSource) Snapshot(context.Context) (services.Snapshot, error) { return m.snap, nil }

// rolloutNotices returns n notices of a rolling restart over a fleet of
// size instances at revision rev: for each instance a deregistration,
// then the registration of its next incarnation at release 42, as
// Registry publishes them.
func rolloutNotices(size, n int, rev int64, at time.Time) [][]byte {
	out := make([][]byte, n)
	for i := range n {
		id := fmt.Sprintf("i%05d", (i/2)%size)
		in := services.Instance{ID: id, Service: "volume", Host: "h", Release: 41, State: services.StateDeleted,
			APIs:      []services.API{{Name: "volume", Current: services.MustParseVersion("3.1"), Oldest: services.MustParseVersion("3.0")}},
			StartedAt: at, HeartbeatAt: at, Incarnation: int64(i/2/size + 1), PID: 4242, Revision: rev + int64(i) + 1,
			Phases: map[string]string{"price": "write-both"}}
		event := "delete"
		if i%2 == 1 {
			in.Release, in.State, in.Incarnation = 42, services.StateUp, in.Incarnation+1
			in.APIs = []services.API{{Name: "volume", Current: services.MustParseVersion("3.2"), Oldest: services.MustParseVersion("3.0")}}
			event = "register"
		}
		b, err := json.Marshal(services.Change{Event: event, Instance: id, At: at, Release: in.Release, State: in.State,
			Phases: in.Phases, Revision: in.Revision, Record: &in})
		if err != nil {
			panic(err)
		}
		out[i] = b
	}
	return out
}

func fleetSnapshot(size int, at time.Time) services.Snapshot {
	snap := services.Snapshot{Cluster: "bench", Revision: 1, TakenAt: at, Instances: make([]services.Instance, size)}
	for i := range size {
		snap.Instances[i] = services.Instance{ID: fmt.Sprintf("i%05d", i), Service: "volume", Host: "h", Release: 41, State: services.StateUp,
			APIs:      []services.API{{Name: "volume", Current: services.MustParseVersion("3.1"), Oldest: services.MustParseVersion("3.0")}},
			StartedAt: at, HeartbeatAt: at, Incarnation: 1, Revision: 1, Phases: map[string]string{"price": "write-both"}}
	}
	return snap
}

// BenchmarkCacheNotice is what one change notice costs one cache, from
// the NATS server's delivery to the floor and caps moved: decoding the
// notice and applying it as a delta to a cache of 10,000 instances, on
// an embedded NATS server with the caches 50 to a connection, as the
// fleet benchmark runs them. ns/notice/cache is the elapsed time per
// notice per cache with every cache busy (2 cores), cpu-ns/notice/cache
// the process's CPU time (NATS server and publisher included) per notice
// per cache.
func BenchmarkCacheNotice(b *testing.B) {
	const size = 10000
	at := time.Now().UTC()
	snap := fleetSnapshot(size, at)
	for _, caches := range []int{1, 100} {
		b.Run(fmt.Sprintf("caches=%d", caches), func(b *testing.B) {
			ctx := context.Background()
			ns := natstest.New(b)
			pub := natstest.Connect(b, ns)
			var conns []*nats.Conn
			cs := make([]*services.Cache, caches)
			for i := range cs {
				if i%50 == 0 {
					conns = append(conns, natstest.Connect(b, ns))
				}
				c, err := services.NewCache(ctx, memSource{snap}, conns[len(conns)-1], services.WithTTL(time.Hour))
				if err != nil {
					b.Fatal(err)
				}
				cs[i] = c
				defer c.Close()
			}
			notices := rolloutNotices(size, b.N, snap.Revision, at)
			subj := services.ChangedSubject("bench")
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			// Windows of notices, each published once the caches hold the
			// one before it: at most two windows in flight, so no
			// connection becomes a slow consumer the server cuts off.
			const window = 100
			reached := func(rev int64) {
				deadline := time.Now().Add(time.Minute)
				for _, c := range cs {
					for c.Revision() < rev {
						if time.Now().After(deadline) {
							b.Fatalf("a cache is at revision %d, want %d, a minute after", c.Revision(), rev)
						}
						time.Sleep(50 * time.Microsecond)
					}
				}
			}
			for i, n := range notices {
				if i%window == 0 && i >= window {
					reached(snap.Revision + int64(i-window))
				}
				if err := pub.Publish(subj, n); err != nil {
					b.Fatal(err)
				}
			}
			reached(snap.Revision + int64(b.N))
			b.StopTimer()
			took, cpu := time.Since(start), cpuTime()-cpu0
			for _, c := range cs {
				if s := c.Stats(); s.Snapshots != 1 || s.Gaps != 0 {
					b.Fatalf("a cache read %d snapshots and saw %d gaps: every notice should apply as a delta", s.Snapshots, s.Gaps)
				}
			}
			per := float64(b.N) * float64(caches)
			b.ReportMetric(float64(took.Nanoseconds())/per, "ns/notice/cache")
			b.ReportMetric(float64(cpu.Nanoseconds())/per, "cpu-ns/notice/cache")
		})
	}
	b.Run("decode", func(b *testing.B) {
		notices := rolloutNotices(size, 2, snap.Revision, at)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			var ch services.Change
			if err := json.Unmarshal(notices[i%2], &ch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
