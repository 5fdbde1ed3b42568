package services_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/services"
)

// restartsConfig reads TANDEM_NATS_RESTARTS (how many NATS restarts per
// engine); by default five, so CI stays fast.
func restartsConfig(t *testing.T) int {
	if v := os.Getenv("TANDEM_NATS_RESTARTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("TANDEM_NATS_RESTARTS=%q: want a positive number", v)
		}
		return n
	}
	return 5
}

// TestCacheResyncsAfterNATSRestart: an instance holding a cap down is
// deleted while NATS is down, by a node that cannot announce it (as
// `tandem services delete` on a host that cannot reach NATS). No notice
// ever reaches the caches, and their TTL is an hour; every cache, whether
// it reads the database or the remote registry over NATS, still sees the
// cap rise within 2s of NATS coming back, because it resynchronises when
// its connection does.
func TestCacheResyncsAfterNATSRestart(t *testing.T) {
	restarts := restartsConfig(t)
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		ns := natstest.New(t)
		dbNode := natstest.Connect(t, ns)
		reg := newRegistry(t, db, services.WithNATS(dbNode))
		quiet, err := services.New(ctx, db) // deletes without announcing
		if err != nil {
			t.Fatal(err)
		}
		svc, err := services.Serve(dbNode, reg)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = svc.Stop() }()
		if err := reg.Register(ctx, inst("new", 42, api("volume", "3.2", "3.0"))); err != nil {
			t.Fatal(err)
		}
		type follower struct {
			name  string
			cache *services.Cache
		}
		var caches []follower
		for i, src := range []services.Source{reg, reg, services.NewRemote(natstest.Connect(t, ns), reg.Cluster())} {
			c, err := services.NewCache(ctx, src, natstest.Connect(t, ns), services.WithTTL(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			name := fmt.Sprintf("cache %d (database)", i+1)
			if i == 2 {
				name = "cache 3 (remote registry)"
			}
			caches = append(caches, follower{name, c})
		}
		waitCap := func(want string, within time.Duration) (time.Duration, string) {
			start := time.Now()
			for _, f := range caches {
				for {
					if v, ok := f.cache.Cap("volume"); ok && v.String() == want {
						break
					}
					if time.Since(start) > within {
						return 0, f.name
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			return time.Since(start), ""
		}
		var slowest time.Duration
		for n := range restarts {
			old := fmt.Sprintf("old-%d", n)
			if err := reg.Register(ctx, inst(old, 41, api("volume", "3.1", "3.0"))); err != nil {
				t.Fatal(err)
			}
			if _, late := waitCap("3.1", 10*time.Second); late != "" {
				t.Fatalf("restart %d: %s never saw %s register", n+1, late, old)
			}
			ns.Shutdown()
			ns.WaitForShutdown()
			if err := quiet.Delete(ctx, old); err != nil {
				t.Fatal(err)
			}
			// Restart on the same port (Restart's own stop is then a no-op).
			if err := ns.Restart(200 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
			took, late := waitCap("3.2", 2*time.Second)
			if late != "" {
				t.Fatalf("restart %d: %s did not see the delete of %s within 2s of NATS coming back", n+1, late, old)
			}
			slowest = max(slowest, took)
		}
		t.Logf("%d NATS restarts, a delete during each: every cache saw it at most %s after NATS came back", restarts, slowest.Round(time.Millisecond))
	})
}
