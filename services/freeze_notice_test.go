package services_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// A write freeze's notice is the ledger's, not the registry's: a cache
// leaves it, reading nothing again, and applies the next change as a
// delta.
func TestCacheLeavesWriteFreezeNotices(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		if _, err := schema.Ensure(ctx, db, services.Tables()); err != nil {
			t.Fatal(err)
		}
		ns := natstest.New(t)
		reg, err := services.New(ctx, db, services.WithNATS(natstest.Connect(t, ns)))
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var kinds []string
		c, err := services.NewCache(ctx, reg, natstest.Connect(t, ns), services.WithTTL(time.Hour), services.WithCacheEvents(func(e services.CacheEvent) {
			mu.Lock()
			defer mu.Unlock()
			kinds = append(kinds, e.Kind)
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		mu.Lock()
		kinds = nil // what the cache read at its start
		mu.Unlock()
		reg.AnnounceWriteFreeze()
		// Published after it on the same connection: it arrives after it.
		if err := reg.Register(ctx, services.Instance{ID: "a", Service: "s", Release: 1}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if len(c.Snapshot().Instances) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the cache never saw the registration")
			}
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if got := strings.Join(kinds, ","); got != "delta" {
			t.Fatalf("after a write freeze notice and a registration the cache did %q, want one delta", got)
		}
	})
}
