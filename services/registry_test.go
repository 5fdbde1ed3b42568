package services_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

func newRegistry(t *testing.T, db *dialect.DB, opts ...services.Option) *services.Registry {
	t.Helper()
	return mustRegistry(t, db, opts...)
}

func mustRegistry(t testing.TB, db *dialect.DB, opts ...services.Option) *services.Registry {
	t.Helper()
	ctx := context.Background()
	if _, err := schema.Ensure(ctx, db, services.Tables()); err != nil {
		t.Fatal(err)
	}
	reg, err := services.New(ctx, db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func inst(id string, release int64, apis ...services.API) services.Instance {
	return services.Instance{ID: id, Service: "volume", Host: "host-" + id, Release: release, APIs: apis}
}

func api(name, cur, oldest string) services.API {
	return services.API{Name: name, Current: services.MustParseVersion(cur), Oldest: services.MustParseVersion(oldest)}
}

func countRows(t *testing.T, db *dialect.DB) int {
	t.Helper()
	var n int
	if err := db.GetContext(context.Background(), &n, `SELECT COUNT(*) FROM `+services.InstancesTable); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFloorAndWhoHoldsIt(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		reg := newRegistry(t, db)
		for _, in := range []services.Instance{
			inst("a", 41, api("volume", "3.1", "3.0")),
			inst("b", 42, api("volume", "3.2", "3.0")),
			inst("c", 42, api("volume", "3.2", "3.1")),
		} {
			if err := reg.Register(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		f, err := reg.Floor(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Release != 41 || len(f.Holders) != 1 || f.Holders[0].ID != "a" {
			t.Fatalf("floor = %d held by %v, want 41 held by a", f.Release, f.Holders)
		}
		if f.Since.IsZero() {
			t.Error("floor has no since time")
		}
		caps, err := reg.Caps(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c := caps["volume"]; c.Version.String() != "3.1" || len(c.Holders) != 1 || c.Holders[0].ID != "a" {
			t.Fatalf("cap = %+v, want 3.1 held by a", c)
		}
		// Error and draining instances still hold the floor: they may come back old.
		if err := reg.SetState(ctx, "a", services.StateError); err != nil {
			t.Fatal(err)
		}
		if f, _ := reg.Floor(ctx); f.Release != 41 {
			t.Fatalf("an error instance must still hold the floor, got %d", f.Release)
		}
		if err := reg.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		f, _ = reg.Floor(ctx)
		if f.Release != 42 || len(f.Holders) != 2 {
			t.Fatalf("after delete floor = %d held by %d, want 42 held by 2", f.Release, len(f.Holders))
		}
		all, err := reg.List(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 3 || all[0].State != services.StateDeleted {
			t.Fatalf("list with deleted = %+v", all)
		}
		if err := reg.Delete(ctx, "a"); !errors.Is(err, services.ErrNotFound) {
			t.Fatalf("second delete: %v, want ErrNotFound", err)
		}
	})
}

func TestMissingIsDerivedFromHeartbeatAge(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		var now atomic.Int64
		now.Store(time.Now().UnixNano())
		clock := func() time.Time { return time.Unix(0, now.Load()) }
		reg := newRegistry(t, db, services.WithMissingAfter(30*time.Second), services.WithClock(clock))
		if err := reg.Register(ctx, inst("a", 41)); err != nil {
			t.Fatal(err)
		}
		now.Add(int64(31 * time.Second))
		got, err := reg.Get(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != services.StateMissing {
			t.Fatalf("state after 31s without heartbeat = %s, want missing", got.State)
		}
		if f, _ := reg.Floor(ctx); f.Release != 41 {
			t.Fatalf("a missing instance must hold the floor, got %d", f.Release)
		}
		// A missing instance's id may be taken over by its restarted process.
		if err := reg.Register(ctx, inst("a", 42)); err != nil {
			t.Fatalf("re-register over a missing row: %v", err)
		}
		if err := reg.Heartbeat(ctx, "a", services.Heartbeat{}); err != nil {
			t.Fatal(err)
		}
		got, _ = reg.Get(ctx, "a")
		if got.State != services.StateUp || got.Release != 42 {
			t.Fatalf("after heartbeat: %+v", got)
		}
	})
}

func TestBadInputsAreTypedAndWriteNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		reg := newRegistry(t, db)
		if err := reg.Register(ctx, inst("taken", 43)); err != nil {
			t.Fatal(err)
		}
		if err := reg.Finalize(ctx, 43, "move price_cents contracted"); err != nil {
			t.Fatal(err)
		}
		before := countRows(t, db)
		cases := []struct {
			name string
			in   services.Instance
			want error
		}{
			{"empty service", services.Instance{ID: "x", Release: 43}, services.ErrInvalid},
			{"empty id", services.Instance{Service: "volume", Release: 43}, services.ErrInvalid},
			{"negative release", services.Instance{ID: "x", Service: "volume", Release: -1}, services.ErrInvalid},
			{"unknown state", services.Instance{ID: "x", Service: "volume", Release: 43, State: "sleeping"}, services.ErrInvalid},
			{"deleted state", services.Instance{ID: "x", Service: "volume", Release: 43, State: services.StateDeleted}, services.ErrInvalid},
			{"oldest above current", inst("x", 43, api("volume", "3.1", "3.4")), services.ErrInvalid},
			{"zero API version", services.Instance{ID: "x", Service: "volume", Release: 43, APIs: []services.API{{Name: "volume"}}}, services.ErrInvalid},
			{"space in id", services.Instance{ID: "x y", Service: "volume", Release: 43}, services.ErrInvalid},
			{"duplicate id", inst("taken", 43), services.ErrDuplicateInstance},
			{"below finalized floor", inst("old", 42), services.ErrBelowFinalized},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				err := reg.Register(ctx, tc.in)
				if !errors.Is(err, tc.want) {
					t.Fatalf("Register(%+v) = %v, want %v", tc.in, err, tc.want)
				}
				if len(err.Error()) < 30 {
					t.Errorf("message too terse to act on: %q", err)
				}
				if n := countRows(t, db); n != before {
					t.Fatalf("rows = %d after a refused register, want %d", n, before)
				}
			})
		}
		var below *services.BelowFinalizedError
		err := reg.Register(ctx, inst("old", 42))
		if !errors.As(err, &below) || below.Finalized != 43 || below.Release != 42 {
			t.Fatalf("want *BelowFinalizedError{42 < 43}, got %v", err)
		}
		if _, err := services.ParseState("sleeping"); !errors.Is(err, services.ErrInvalid) {
			t.Fatalf("ParseState(sleeping) = %v", err)
		}
	})
}

func TestFinalizeRefusesWhileOlderInstancesLive(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		reg := newRegistry(t, db)
		for _, in := range []services.Instance{inst("a", 41), inst("b", 42)} {
			if err := reg.Register(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		err := reg.Finalize(ctx, 42, "test")
		if !errors.Is(err, services.ErrInvalid) {
			t.Fatalf("finalize with a live 41: %v", err)
		}
		if fin, _ := reg.Finalized(ctx); fin != 0 {
			t.Fatalf("finalized = %d after a refused finalize", fin)
		}
		if err := reg.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		for range 2 { // idempotent
			if err := reg.Finalize(ctx, 42, "test"); err != nil {
				t.Fatal(err)
			}
		}
		if fin, _ := reg.Finalized(ctx); fin != 42 {
			t.Fatalf("finalized = %d, want 42", fin)
		}
	})
}

func TestConcurrentRegisterOfOneIDAdmitsOne(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		reg := newRegistry(t, db)
		var wg sync.WaitGroup
		var ok, dup atomic.Int32
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := reg.Register(ctx, inst("same", 42))
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, services.ErrDuplicateInstance):
					dup.Add(1)
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 || dup.Load() != 7 {
			t.Fatalf("ok=%d dup=%d, want 1 and 7", ok.Load(), dup.Load())
		}
	})
}

// countingSource counts reads that reach the database.
type countingSource struct {
	src services.Source
	n   atomic.Int64
}

func (c *countingSource) Snapshot(ctx context.Context) (services.Snapshot, error) {
	c.n.Add(1)
	return c.src.Snapshot(ctx)
}

func TestCachedFloorRisesWithinOneNotification(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		nc := natstest.Connect(t, natstest.New(t))
		reg := newRegistry(t, db, services.WithNATS(nc))
		for _, in := range []services.Instance{
			inst("r41", 41, api("volume", "3.1", "3.0")),
			inst("r42a", 42, api("volume", "3.2", "3.0")),
			inst("r42b", 42, api("volume", "3.2", "3.0")),
		} {
			if err := reg.Register(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		src := &countingSource{src: reg}
		// A TTL far beyond the test: only the notification can refresh it.
		cache, err := services.NewCache(ctx, src, nc, services.WithTTL(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		defer cache.Close()
		if err := nc.Flush(); err != nil { // the subscription is live before we change anything
			t.Fatal(err)
		}
		reads := src.n.Load()
		for range 10000 {
			if cache.Floor() != 41 {
				t.Fatal("floor moved by itself")
			}
			if v, _ := cache.Cap("volume"); v.String() != "3.1" {
				t.Fatal("cap moved by itself")
			}
		}
		if d := src.n.Load() - reads; d != 0 {
			t.Fatalf("10000 cached reads made %d database reads, want 0", d)
		}
		changed := cache.Changed()
		if err := reg.Delete(ctx, "r41"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatal("cache did not change within 10s of the delete notification")
		}
		if got := cache.Floor(); got != 42 {
			t.Fatalf("floor after notification = %d, want 42", got)
		}
		if v, _ := cache.Cap("volume"); v.String() != "3.2" {
			t.Fatalf("cap after notification = %s, want 3.2", v)
		}
		// The notice carries the deleted row and the revision that follows
		// the cache's: it is applied as a delta, with no read at all.
		if d := src.n.Load() - reads; d != 0 {
			t.Fatalf("one notification caused %d reads of the source, want 0 (applied as a delta)", d)
		}
	})
}

func TestCacheExpiresWithoutNotifications(t *testing.T) {
	db := dbtest.Open(t, dialect.SQLite)
	ctx := context.Background()
	reg := newRegistry(t, db) // no NATS: only the TTL can refresh caches
	if err := reg.Register(ctx, inst("a", 41)); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(ctx, inst("b", 42)); err != nil {
		t.Fatal(err)
	}
	cache, err := services.NewCache(ctx, reg, nil, services.WithTTL(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	changed := cache.Changed()
	if err := reg.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("cache never expired")
	}
	if cache.Floor() != 42 {
		t.Fatalf("floor = %d, want 42", cache.Floor())
	}
}

// A registration racing a finalize must never leave a live instance below
// the finalized release: one of the two has to lose.
func TestRegisterAndFinalizeDoNotInterleave(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		reg := newRegistry(t, db)
		for i := 1; i <= 40; i++ {
			release := int64(2 * i)
			var regErr, finErr error
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				regErr = reg.Register(ctx, inst(fmt.Sprintf("racer-%d", i), release))
			}()
			go func() {
				defer wg.Done()
				finErr = reg.Finalize(ctx, release+1, "race")
			}()
			wg.Wait()
			if regErr == nil && finErr == nil {
				t.Fatalf("round %d: release %d registered and release %d finalized: an old instance is live below the finalized floor", i, release, release+1)
			}
			if regErr != nil && !errors.Is(regErr, services.ErrBelowFinalized) {
				t.Fatalf("round %d: register: %v", i, regErr)
			}
			if finErr != nil && !errors.Is(finErr, services.ErrInvalid) {
				t.Fatalf("round %d: finalize: %v", i, finErr)
			}
			if regErr == nil { // clear the way for the next round
				if err := reg.Delete(ctx, fmt.Sprintf("racer-%d", i)); err != nil {
					t.Fatal(err)
				}
				if err := reg.Finalize(ctx, release+1, "race"); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

func TestHeartbeatDoesNotResurrectADeletedInstance(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		reg := newRegistry(t, db)
		for i := range 30 {
			id := fmt.Sprintf("hb-%d", i)
			if err := reg.Register(ctx, inst(id, 42)); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); _ = reg.Heartbeat(ctx, id, services.Heartbeat{State: services.StateDraining}) }()
			go func() { defer wg.Done(); _ = reg.Delete(ctx, id) }()
			wg.Wait()
			got, err := reg.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != services.StateDeleted {
				t.Fatalf("%s: state %s after a delete raced a heartbeat, want deleted", id, got.State)
			}
		}
	})
}
