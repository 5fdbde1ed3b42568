package services_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// TestClusterIdentity: schema ensure records one identity per database,
// exactly once however many runners start together, keeps it on every
// later run, and a dry run records none.
func TestClusterIdentity(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		res, err := schema.Ensure(ctx, db, services.Tables(), schema.WithDryRun())
		if err != nil {
			t.Fatal(err)
		}
		var planned bool
		for _, r := range res {
			for _, s := range r.SQL {
				planned = planned || strings.HasPrefix(s, "INSERT INTO")
			}
		}
		if !planned {
			t.Fatalf("the dry run does not show the identity's INSERT: %+v", res)
		}
		if ok, err := sqldialect.Of(db).TableExists(ctx, db, services.ClusterTable); err != nil || ok {
			t.Fatalf("the dry run created %s (%v)", services.ClusterTable, err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := schema.Ensure(ctx, db, services.Tables())
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM `+services.ClusterTable); err != nil || n != 1 {
			t.Fatalf("%d identities after four concurrent ensures (%v), want 1", n, err)
		}
		reg, err := services.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		id := reg.Cluster()
		if err := services.CheckCluster(id); err != nil || len(id) != 16 {
			t.Fatalf("identity %q: %v", id, err)
		}
		if _, err := schema.Ensure(ctx, db, services.Tables()); err != nil {
			t.Fatal(err)
		}
		again, err := services.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if again.Cluster() != id {
			t.Fatalf("identity changed from %s to %s on a later ensure", id, again.Cluster())
		}
		snap, err := reg.Snapshot(ctx)
		if err != nil || snap.Cluster != id {
			t.Fatalf("snapshot cluster %q (%v), want %s", snap.Cluster, err, id)
		}
		other := mustRegistry(t, dbtest.Open(t, db.Engine()))
		if other.Cluster() == id {
			t.Fatalf("two databases got the same identity %s", id)
		}
	})
}

func TestCheckCluster(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"3f9c2a7d10b4e865", true},
		{"prod-eu_1", true},
		{"", false},
		{"a.b", false},
		{"a*", false},
		{"a>", false},
		{"a b", false},
		{"it's", false},
		{strings.Repeat("a", 65), false},
	} {
		err := services.CheckCluster(tc.id)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, services.ErrInvalid)) {
			t.Errorf("CheckCluster(%q) = %v, want ok %v", tc.id, err, tc.ok)
		}
	}
}

// TestClustersShareNATS: two clusters on one NATS, each with its registry
// served over NATS. A node given one cluster's identity registers there
// only; an unknown identity reaches no registry and says so; a change in
// one cluster is announced to its own caches only.
func TestClustersShareNATS(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		ns := natstest.New(t)
		type cluster struct {
			reg   *services.Registry
			src   *countingSource
			cache *services.Cache
		}
		var cs []cluster
		for _, d := range []*dialect.DB{db, dbtest.Open(t, db.Engine())} {
			nc := natstest.Connect(t, ns)
			reg := newRegistry(t, d, services.WithNATS(nc))
			svc, err := services.Serve(nc, reg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = svc.Stop() })
			src := &countingSource{src: reg}
			cache, err := services.NewCache(ctx, src, natstest.Connect(t, ns), services.WithTTL(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cache.Close)
			cs = append(cs, cluster{reg, src, cache})
		}
		a, b := cs[0], cs[1]
		if a.cache.Cluster() != a.reg.Cluster() || b.cache.Cluster() != b.reg.Cluster() {
			t.Fatalf("caches follow %s and %s, want %s and %s", a.cache.Cluster(), b.cache.Cluster(), a.reg.Cluster(), b.reg.Cluster())
		}

		edge := natstest.Connect(t, ns)
		readsA := a.src.n.Load()
		if err := services.NewRemote(edge, b.reg.Cluster()).Register(ctx, inst("edge-1", 42, api("volume", "3.1", "3.0"))); err != nil {
			t.Fatal(err)
		}
		if _, err := b.reg.Get(ctx, "edge-1"); err != nil {
			t.Fatalf("registered with cluster %s's identity, not in its registry: %v", b.reg.Cluster(), err)
		}
		if _, err := a.reg.Get(ctx, "edge-1"); !errors.Is(err, services.ErrNotFound) {
			t.Fatalf("cluster %s's registry got another cluster's instance: %v", a.reg.Cluster(), err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if v, ok := b.cache.Cap("volume"); ok && v.String() == "3.1" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("cluster B's cache never saw its own change")
			}
		}
		// Give a stray notice every chance to arrive before counting.
		if err := edge.Flush(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if d := a.src.n.Load() - readsA; d != 0 {
			t.Fatalf("cluster %s's cache refreshed %d times on another cluster's change", a.reg.Cluster(), d)
		}
		if _, ok := a.cache.Cap("volume"); ok {
			t.Fatal("cluster A's cache shows cluster B's cap")
		}

		err := services.NewRemote(edge, "0000000000000000").Register(ctx, inst("edge-2", 42))
		if err == nil || !strings.Contains(err.Error(), "no registry of cluster 0000000000000000") || !strings.Contains(err.Error(), "tandem services cluster") {
			t.Fatalf("unknown cluster: %v", err)
		}
		if err := services.NewRemote(edge, "a.b").Register(ctx, inst("edge-3", 42)); !errors.Is(err, services.ErrInvalid) {
			t.Fatalf("malformed cluster: %v", err)
		}
	})
}
