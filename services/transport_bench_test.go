package services_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/services"
)

// BenchmarkNoticeTransport compares the two ways a cache could follow the
// registry's notices, in one run: core NATS subscriptions (what Cache
// does: a gap in the revisions is caught up from the database), and a
// JetStream stream holding the notices with one ordered consumer per
// cache (what a KV watcher does too), which would replay a missed notice
// from the stream instead. Each of TANDEM_NOTICE_CONSUMERS (200) followers
// receives every one of b.N fleet-rollout notices, published at
// TANDEM_NOTICE_RATE (200) per second the way Registry publishes them
// (nc.Publish, no acknowledgement awaited); the followers only count what
// they receive, so the transport alone is measured (BenchmarkCacheNotice
// measures what a cache does with a notice). Reported: the process's CPU
// time per notice per follower (NATS server included), the latency from
// publish to a follower's handler (p50, p99), and how long it took to
// start a follower. Run it with -benchtime 2000x a few times over (a
// shell loop, not -count, which repeats each mode before the next), so
// that the modes alternate and load weighs on all alike.
func BenchmarkNoticeTransport(b *testing.B) {
	followers := fleetEnv(b, "TANDEM_NOTICE_CONSUMERS", 200)
	rate := fleetEnv(b, "TANDEM_NOTICE_RATE", 200)
	for _, mode := range []string{"core", "jetstream-file", "jetstream-memory"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			ns := natstest.New(b)
			pub := natstest.Connect(b, ns)
			subj := services.ChangedSubject("bench")
			var storage jetstream.StorageType
			var stream jetstream.Stream
			if mode != "core" {
				storage = jetstream.FileStorage
				if mode == "jetstream-memory" {
					storage = jetstream.MemoryStorage
				}
				js, err := jetstream.New(pub)
				if err != nil {
					b.Fatal(err)
				}
				// The last hour of notices, enough for any cache to
				// replay what it missed while disconnected.
				stream, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "NOTICES", Subjects: []string{subj},
					Storage: storage, MaxAge: time.Hour, Discard: jetstream.DiscardOld})
				if err != nil {
					b.Fatal(err)
				}
			}
			var (
				sent []atomic.Int64 // publish times, unix ns, by notice
				lags lagHistogram
				done sync.WaitGroup
			)
			sent = make([]atomic.Int64, b.N)
			received := func(k int) {
				if k < len(sent) {
					lags.add(time.Duration(time.Now().UnixNano() - sent[k].Load()))
				}
				if k == len(sent)-1 {
					done.Done()
				}
			}
			done.Add(followers)
			var conns []*nats.Conn
			var stops []func()
			startAt := time.Now()
			for i := range followers {
				if i%50 == 0 {
					conns = append(conns, natstest.Connect(b, ns))
				}
				nc := conns[len(conns)-1]
				var n atomic.Int64
				if mode == "core" {
					sub, err := nc.Subscribe(subj, func(*nats.Msg) { received(int(n.Add(1) - 1)) })
					if err != nil {
						b.Fatal(err)
					}
					_ = sub.SetPendingLimits(-1, 256<<20)
					stops = append(stops, func() { _ = sub.Unsubscribe() })
					continue
				}
				js, err := jetstream.New(nc)
				if err != nil {
					b.Fatal(err)
				}
				s, err := js.Stream(ctx, "NOTICES")
				if err != nil {
					b.Fatal(err)
				}
				cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
				if err != nil {
					b.Fatal(err)
				}
				cc, err := cons.Consume(func(m jetstream.Msg) {
					k := int(n.Add(1) - 1)
					if md, err := m.Metadata(); err != nil || md.Sequence.Stream != uint64(k+1) {
						b.Errorf("follower got stream sequence %v (%v) as its notice %d", md, err, k+1)
					}
					received(k)
				})
				if err != nil {
					b.Fatal(err)
				}
				stops = append(stops, cc.Stop)
			}
			for _, nc := range conns {
				if err := nc.Flush(); err != nil {
					b.Fatal(err)
				}
			}
			perFollower := time.Since(startAt) / time.Duration(followers)
			defer func() {
				for _, stop := range stops {
					stop()
				}
			}()
			notices := rolloutNotices(10000, b.N, 1, time.Now().UTC())
			every := time.Second / time.Duration(rate)
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for k, n := range notices {
				if d := time.Until(start.Add(time.Duration(k) * every)); d > 0 {
					time.Sleep(d)
				}
				sent[k].Store(time.Now().UnixNano())
				if err := pub.Publish(subj, n); err != nil {
					b.Fatal(err)
				}
			}
			finished := make(chan struct{})
			go func() { done.Wait(); close(finished) }()
			select {
			case <-finished:
			case <-time.After(2 * time.Minute):
				b.Fatalf("%d followers did not receive all %d notices within 2 minutes of the last", followers, b.N)
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			if stream != nil {
				info, err := stream.Info(ctx)
				if err != nil || info.State.Msgs != uint64(b.N) {
					b.Fatalf("the stream holds %v notices (%v), want %d", info, err, b.N)
				}
			}
			per := float64(b.N) * float64(followers)
			b.ReportMetric(float64(cpu.Nanoseconds())/per, "cpu-ns/notice/follower")
			b.ReportMetric(float64(lags.quantile(0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lags.quantile(0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(perFollower.Microseconds())/1000, "start-ms/follower")
			b.Log(fmt.Sprintf("%s: %d followers, %d notices at %d/s, load %s", mode, followers, b.N, rate, loadAverage()))
		})
	}
}
