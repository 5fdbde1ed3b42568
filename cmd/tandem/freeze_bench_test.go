package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/services"
)

// BenchmarkFreezeReach measures, on SQLite, the time from the start of
// `tandem freeze --all --no-wait` (each op alternates it with `tandem thaw
// --all --no-wait`) until every one of 20 trackers holds the new state, so
// refuses (or allows again) writes: trackers refreshing every second
// alone ("interval"), against trackers that also follow the notices that
// `tandem --nats` publishes ("notices", dualwrite.WithNotices). The
// trackers start at random points of an interval, and each op at a random
// point too, as an operator's command meets a fleet's refreshes.
// The metrics are the mean and the slowest op's time to the last tracker.
//
//	go test ./cmd/tandem -run '^$' -bench BenchmarkFreezeReach -benchtime 20x
func BenchmarkFreezeReach(b *testing.B) {
	const trackers, every = 20, time.Second
	for _, notices := range []bool{false, true} {
		name := map[bool]string{false: "interval", true: "notices"}[notices]
		b.Run(name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ns := natstest.New(b)
			dsn := dbtest.DSN(b, dialect.SQLite)
			cli := func(args ...string) {
				var out, errOut bytes.Buffer
				if code := run(context.Background(), append([]string{"--db", dsn}, args...), &out, &errOut); code != exitOK {
					b.Fatalf("tandem %v: exit %d\n%s%s", args, code, out.String(), errOut.String())
				}
			}
			cli("schema", "ensure")
			db, err := dialect.Open(ctx, dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			reg, err := services.New(ctx, db)
			if err != nil {
				b.Fatal(err)
			}
			var trs []*dualwrite.Tracker
			for range trackers {
				var opts []dualwrite.Option
				if notices {
					nc := natstest.Connect(b, ns)
					opts = append(opts, dualwrite.WithNotices(nc, reg.Cluster()))
				}
				tr, err := dualwrite.NewTracker(ctx, db, 1, nil, opts...)
				if err != nil {
					b.Fatal(err)
				}
				// Started at random within an interval, as a fleet's
				// instances are: their refreshes do not line up.
				go func() {
					time.Sleep(rand.N(every))
					_ = tr.Run(ctx, every, nil)
				}()
				trs = append(trs, tr)
			}
			time.Sleep(every + 100*time.Millisecond) // every Run started (and subscribed)
			var args []string
			if notices {
				args = []string{"--nats", ns.ClientURL()}
			}
			var total, slowest time.Duration
			b.ResetTimer()
			for i := range b.N {
				op := []string{"freeze", "--all", "--reason", "benchmark", "--no-wait"}
				if i%2 == 1 {
					op = []string{"thaw", "--all", "--no-wait"}
				}
				b.StopTimer()
				time.Sleep(rand.N(every)) // at no particular point of the trackers' intervals
				b.StartTimer()
				start := time.Now()
				cli(append(args, op...)...)
				want := int64(i + 1)
				for _, tr := range trs {
					for tr.Freeze().Seq != want {
						time.Sleep(100 * time.Microsecond)
					}
				}
				d := time.Since(start)
				total += d
				slowest = max(slowest, d)
			}
			b.StopTimer()
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-all")
			b.ReportMetric(float64(slowest.Milliseconds()), "slowest-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
