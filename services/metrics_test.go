package services_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/internal/promreg"
	"github.com/tandem-go/tandem/services"
)

// TestCacheMetrics checks each metric of a cache against the registry on
// every engine: floor, instances by release and state (missing derived
// from the clock), caps, the finalized release, refreshes ok and failed,
// notices received and the snapshot's age.
func TestCacheMetrics(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		ns := natstest.New(t)
		nc := natstest.Connect(t, ns)
		var now atomic.Int64
		now.Store(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixNano())
		clock := func() time.Time { return time.Unix(0, now.Load()) }
		reg := newRegistry(t, db, services.WithNATS(nc), services.WithMissingAfter(30*time.Second), services.WithClock(clock))
		for _, in := range []services.Instance{
			inst("a", 41, api("volume", "3.1", "3.0")),
			inst("b", 42, api("volume", "3.2", "3.0")),
			inst("c", 42, api("volume", "3.2", "3.0")),
		} {
			if err := reg.Register(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		src := &failingSource{Source: reg}
		pr := prometheus.NewPedanticRegistry()
		cache, err := services.NewCache(ctx, src, nc, services.WithTTL(time.Hour), services.WithMetrics(pr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cache.Close)
		cl := "cluster=" + reg.Cluster()
		want := func(name string, w float64, labels ...string) {
			t.Helper()
			got, ok := promreg.Value(pr, name, append(labels, cl)...)
			if !ok || got != w {
				t.Errorf("%s%v = %v (found %v), want %v", name, labels, got, ok, w)
			}
		}
		want("tandem_services_floor", 41)
		want("tandem_services_instances", 1, "release=41", "state=up")
		want("tandem_services_instances", 2, "release=42", "state=up")
		want("tandem_services_cap_minor", 1, "api=volume", "major=3")
		want("tandem_services_finalized_release", 0)
		want("tandem_services_cache_refreshes_total", 1, "result=ok")
		want("tandem_services_cache_refreshes_total", 0, "result=error")
		want("tandem_services_notifications_total", 0)
		if age, _ := promreg.Value(pr, "tandem_services_cache_age_seconds", cl); age <= 0 {
			t.Errorf("cache age = %v, want above 0 (the registry's clock is in the past)", age)
		}

		// a's heartbeats stop: 31s later it is missing and still holds the floor.
		now.Add(int64(31 * time.Second))
		for _, id := range []string{"b", "c"} {
			if err := reg.Heartbeat(ctx, id, services.Heartbeat{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := cache.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		want("tandem_services_instances", 1, "release=41", "state=missing")
		want("tandem_services_floor", 41)
		// The operator deletes it: one notice, the floor and the cap rise.
		changed := cache.Changed()
		if err := reg.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatal("no notice reached the cache within 10s")
		}
		want("tandem_services_floor", 42)
		want("tandem_services_cap_minor", 2, "api=volume", "major=3")
		if _, ok := promreg.Value(pr, "tandem_services_instances", cl, "release=41"); ok {
			t.Error("a deleted instance is still counted")
		}
		if n, _ := promreg.Value(pr, "tandem_services_notifications_total", cl); n < 1 {
			t.Errorf("notices = %v, want at least 1", n)
		}
		if err := reg.Finalize(ctx, 42, "rollout done"); err != nil {
			t.Fatal(err)
		}
		if err := cache.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		want("tandem_services_finalized_release", 42)

		// The delete's notice was applied as a delta, with no read; the
		// TTL may still add a read of its own: count at least.
		ok, _ := promreg.Value(pr, "tandem_services_cache_refreshes_total", cl, "result=ok")
		if ok < 3 {
			t.Errorf("refreshes ok = %v, want at least the 3 made here", ok)
		}
		src.fail.Store(true)
		if err := cache.Refresh(ctx); err == nil {
			t.Fatal("a failing source refreshed")
		}
		if n, _ := promreg.Value(pr, "tandem_services_cache_refreshes_total", cl, "result=error"); n < 1 {
			t.Errorf("refreshes failed = %v, want at least 1", n)
		}
		want("tandem_services_floor", 42) // the last snapshot still serves
	})
}

// failingSource fails every read once fail is set.
type failingSource struct {
	services.Source
	fail atomic.Bool
}

func (f *failingSource) Snapshot(ctx context.Context) (services.Snapshot, error) {
	if f.fail.Load() {
		return services.Snapshot{}, errors.New("registry unreachable")
	}
	return f.Source.Snapshot(ctx)
}
