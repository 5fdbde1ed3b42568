package services_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

// TestHeartbeatOnAnAdoptedPool heartbeats twice at one instant through a
// MySQL pool the application opened without clientFoundRows, which counts
// the second UPDATE as 0 rows: the instance is still there, not fenced.
func TestHeartbeatOnAnAdoptedPool(t *testing.T) {
	ctx := context.Background()
	raw, err := sql.Open("mysql", dbtest.DriverDSN(t, dialect.MySQL, "parseTime=true"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := dialect.Wrap(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	reg := newRegistry(t, db, services.WithClock(func() time.Time { return at }))
	if err := reg.Register(ctx, inst("hb-same", 42)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := reg.Heartbeat(ctx, "hb-same", services.Heartbeat{}); err != nil {
			t.Fatalf("heartbeat %d at the same instant: %v", i+1, err)
		}
	}
	if err := reg.Delete(ctx, "hb-same"); err != nil {
		t.Fatal(err)
	}
	if err := reg.Heartbeat(ctx, "hb-same", services.Heartbeat{}); err == nil {
		t.Fatal("a deleted instance's heartbeat was accepted")
	}
}
