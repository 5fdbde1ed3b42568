package services_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/services"
)

// fakeClock is a clock the test moves, shared by every registry so that
// instances go missing when the test says.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// seedConfig reads TANDEM_SEED, or picks one and logs it, so a failing
// sequence can be replayed.
func seedConfig(t *testing.T) uint64 {
	if v := os.Getenv("TANDEM_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("TANDEM_SEED=%q: want a number", v)
		}
		return n
	}
	n := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay with TANDEM_SEED=%d)", n, n)
	return n
}

// TestCachesEqualTheDatabaseAfterRandomChanges runs a random sequence of
// registrations, heartbeats that change something and heartbeats that do
// not, restarts (new incarnations), deregistrations, deletes, finalizes and
// instances going missing through two registries: one announces its
// changes on NATS, the other announces nothing, so its notices are
// dropped and the caches see gaps. Caches on the database and on the
// remote registry over NATS must end holding exactly what the database
// holds: the same instances (id, release, APIs, state, incarnation,
// phases, revision), floor, caps and finalized release.
func TestCachesEqualTheDatabaseAfterRandomChanges(t *testing.T) {
	seed := seedConfig(t)
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(seed, 7))
		clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		ns := natstest.New(t)
		nc := natstest.Connect(t, ns)
		loud := newRegistry(t, db, services.WithNATS(nc), services.WithClock(clock.now))
		quiet := newRegistry(t, db, services.WithClock(clock.now)) // its notices are "dropped"
		svc, err := services.Serve(nc, loud)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = svc.Stop() }()

		var caches []*services.Cache
		for i := range 4 {
			var src services.Source = loud
			if i == 3 {
				src = services.NewRemote(natstest.Connect(t, ns), loud.Cluster())
			}
			// A short TTL: the check for lapsed heartbeats runs on it.
			c, err := services.NewCache(ctx, src, natstest.Connect(t, ns), services.WithTTL(300*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			caches = append(caches, c)
		}

		const ids = 12
		versions := []string{"3.0", "3.1", "3.2", "3.3"}
		randAPIs := func() []services.API {
			var out []services.API
			for _, name := range []string{"volume", "image"} {
				if rng.IntN(3) > 0 {
					v := versions[rng.IntN(len(versions))]
					out = append(out, api(name, v, "3.0"))
				}
			}
			return out
		}
		converge := func(when string) {
			t.Helper()
			want, err := loud.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for i, c := range caches {
				for {
					diff := cacheDiff(c, want)
					if diff == "" {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: cache %d never matched the database (revision %d): %s; stats %+v", when, i+1, want.Revision, diff, c.Stats())
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		}
		counts := map[string]int{}
		for step := range 300 {
			if step > 0 && step%60 == 0 {
				converge(fmt.Sprintf("after %d changes", step))
			}
			reg := loud
			if rng.IntN(12) == 0 {
				reg = quiet
			}
			id := fmt.Sprintf("i%02d", rng.IntN(ids))
			var (
				op  string
				err error
			)
			switch n := rng.IntN(100); {
			case n < 25:
				op = "register"
				in := inst(id, 40+int64(rng.IntN(4)), randAPIs()...)
				err = reg.Register(ctx, in, services.WithReplace())
			case n < 40:
				op = "heartbeat-state"
				st := []services.State{services.StateUp, services.StateDraining, services.StateError}[rng.IntN(3)]
				err = reg.Heartbeat(ctx, id, services.Heartbeat{State: st})
			case n < 45:
				op = "heartbeat-apis"
				err = reg.Heartbeat(ctx, id, services.Heartbeat{APIs: randAPIs(), Phases: map[string]string{"m": fmt.Sprint(rng.IntN(3))}})
			case n < 50:
				op = "heartbeat-freeze" // a write freeze's acknowledgement
				err = reg.Heartbeat(ctx, id, services.Heartbeat{Freeze: 1 + int64(rng.IntN(3))})
			case n < 65:
				op = "heartbeat-nothing" // no change: no revision, no notice
				err = reg.Heartbeat(ctx, id, services.Heartbeat{})
			case n < 75:
				op = "deregister"
				err = reg.Deregister(ctx, id)
			case n < 85:
				op = "delete"
				err = reg.Delete(ctx, id)
			case n < 90:
				op = "finalize"
				var f services.Floor
				if f, err = reg.Floor(ctx); err == nil && f.Release > 0 {
					err = reg.Finalize(ctx, f.Release, "test")
				}
			default:
				op = "time-passes" // some heartbeats lapse: missing, with no change recorded
				clock.add(time.Duration(10+rng.IntN(25)) * time.Second)
			}
			if err != nil && !errors.Is(err, services.ErrNotFound) && !errors.Is(err, services.ErrFenced) &&
				!errors.Is(err, services.ErrBelowFinalized) && !errors.Is(err, services.ErrDuplicateInstance) {
				t.Fatalf("%s %s: %v", op, id, err)
			}
			if err == nil {
				counts[op]++
			}
		}
		t.Logf("applied: %v", counts)

		converge("at the end")
		for i, c := range caches {
			t.Logf("cache %d: %+v", i+1, c.Stats())
		}
	})
}

// cacheDiff says how the cache differs from the database's snapshot, or "".
func cacheDiff(c *services.Cache, want services.Snapshot) string {
	got := c.Snapshot()
	if got.Revision != want.Revision {
		return fmt.Sprintf("revision %d, want %d", got.Revision, want.Revision)
	}
	if got.Finalized != want.Finalized {
		return fmt.Sprintf("finalized %d, want %d", got.Finalized, want.Finalized)
	}
	if c.Floor() != want.Floor().Release {
		return fmt.Sprintf("floor %d, want %d", c.Floor(), want.Floor().Release)
	}
	caps := want.Caps()
	for _, name := range []string{"volume", "image"} {
		v, ok := c.Cap(name)
		w, wok := caps[name]
		if ok != wok || v != w.Version {
			return fmt.Sprintf("cap %s %s (%v), want %s (%v)", name, v, ok, w.Version, wok)
		}
	}
	if len(got.Instances) != len(want.Instances) {
		return fmt.Sprintf("%d instances, want %d", len(got.Instances), len(want.Instances))
	}
	byID := map[string]services.Instance{}
	for _, in := range got.Instances {
		byID[in.ID] = in
	}
	for _, w := range want.Instances {
		g, ok := byID[w.ID]
		switch {
		case !ok:
			return "missing instance " + w.ID
		case g.Release != w.Release || g.State != w.State || g.Incarnation != w.Incarnation || g.Revision != w.Revision || g.Freeze != w.Freeze ||
			fmt.Sprint(g.APIs) != fmt.Sprint(w.APIs) || fmt.Sprint(g.Phases) != fmt.Sprint(w.Phases):
			return fmt.Sprintf("instance %s: %+v, want %+v", w.ID, g, w)
		}
	}
	return ""
}

// TestHeartbeatRevisions: a heartbeat that changes nothing takes no
// revision (and sends no notice) but moves the heartbeat time; one that
// reports other phases, or comes back from missing, takes one; one of a
// superseded incarnation is fenced, on every engine.
func TestHeartbeatRevisions(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		reg := newRegistry(t, db, services.WithClock(clock.now))
		in := inst("a", 42, api("volume", "3.2", "3.0"))
		in.Phases = map[string]string{"m": "legacy"}
		if err := reg.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
		rev := func() int64 {
			t.Helper()
			r, err := reg.Revision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		r0 := rev()
		for i, tc := range []struct {
			name    string
			advance time.Duration
			hb      services.Heartbeat
			bump    int64
		}{
			{"nothing", 5 * time.Second, services.Heartbeat{}, 0},
			{"the same phases, APIs and state", 5 * time.Second, services.Heartbeat{State: services.StateUp, APIs: []services.API{api("volume", "3.2", "3.0")}, Phases: map[string]string{"m": "legacy"}}, 0},
			{"other phases", 5 * time.Second, services.Heartbeat{Phases: map[string]string{"m": "write-both"}}, 1},
			{"draining", 5 * time.Second, services.Heartbeat{State: services.StateDraining}, 1},
			{"back from missing", 2 * services.DefaultMissingAfter, services.Heartbeat{}, 1},
		} {
			clock.add(tc.advance)
			before := rev()
			if err := reg.Heartbeat(ctx, "a", tc.hb); err != nil {
				t.Fatalf("%d %s: %v", i, tc.name, err)
			}
			if got := rev() - before; got != tc.bump {
				t.Errorf("%s: took %d revisions, want %d", tc.name, got, tc.bump)
			}
			got, err := reg.Get(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			if !got.HeartbeatAt.Equal(clock.now()) || got.State == services.StateMissing {
				t.Errorf("%s: heartbeat at %s (%s), want %s", tc.name, got.HeartbeatAt, got.State, clock.now())
			}
		}
		if r := rev(); r != r0+3 {
			t.Errorf("revision %d after the heartbeats, want %d", r, r0+3)
		}
		// A successor registers: the old incarnation's quiet heartbeat is
		// fenced, not recorded.
		if err := reg.Register(ctx, in, services.WithReplace()); err != nil {
			t.Fatal(err)
		}
		if err := reg.Heartbeat(ctx, "a", services.Heartbeat{Incarnation: 1}); !errors.Is(err, services.ErrFenced) {
			t.Fatalf("a superseded incarnation's heartbeat: %v, want ErrFenced", err)
		}
	})
}
