package services_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

// Each registry stands for one process here: its liveness tokens live on
// its own connection (or lock file), and Close ends them as a crash would.
func TestIncarnationsSupersedeFenceAndRefuse(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		first := newRegistry(t, db)
		second := mustRegistry(t, db)
		if err := first.Register(ctx, inst("a", 42)); err != nil {
			t.Fatal(err)
		}
		// Alive: refused, naming both.
		var dup *services.DuplicateError
		err := second.Register(ctx, services.Instance{ID: "a", Service: "volume", Host: "other", Release: 42, PID: 99999})
		if !errors.As(err, &dup) || dup.Holder.Incarnation != 1 || dup.Holder.PID != os.Getpid() || dup.Holder.Host != "host-a" ||
			dup.Claimant.Host != "other" || dup.Claimant.PID != 99999 || dup.Holder.Since.IsZero() {
			t.Fatalf("second live process: %v (%+v)", err, dup)
		}
		// Replace supersedes a live one; it is fenced at its next heartbeat
		// and its deregistration leaves the successor alone.
		if err := second.Register(ctx, inst("a", 43), services.WithReplace()); err != nil {
			t.Fatal(err)
		}
		var fe *services.FencedError
		err = first.Heartbeat(ctx, "a", services.Heartbeat{})
		if !errors.As(err, &fe) || fe.Reason != services.FencedSuperseded || fe.Incarnation != 1 || fe.By.Incarnation != 2 || errors.Is(err, services.ErrNotFound) {
			t.Fatalf("heartbeat of a superseded incarnation: %v", err)
		}
		if err := first.Deregister(ctx, "a"); err != nil && !errors.Is(err, services.ErrFenced) {
			t.Fatalf("deregister of a superseded incarnation: %v", err)
		}
		if in, err := first.Get(ctx, "a"); err != nil || in.State != services.StateUp || in.Incarnation != 2 || in.Release != 43 {
			t.Fatalf("successor after its predecessor deregistered: %+v %v", in, err)
		}
		// A crash ends the tokens: the next process registers at once.
		if err := second.Close(); err != nil {
			t.Fatal(err)
		}
		third := mustRegistry(t, db)
		defer third.Close() //nolint:errcheck
		if err := third.Register(ctx, inst("a", 44)); err != nil {
			t.Fatalf("successor of a dead incarnation: %v", err)
		}
		past, err := third.PastIncarnations(ctx)
		if err != nil || len(past) != 2 || past[0].Incarnation != 1 || past[1].Incarnation != 2 || past[1].Release != 43 || past[1].State != services.StateDeleted {
			t.Fatalf("past incarnations: %+v %v", past, err)
		}
		// An operator's delete fences the running incarnation.
		if err := first.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		err = third.Heartbeat(ctx, "a", services.Heartbeat{})
		if !errors.As(err, &fe) || fe.Reason != services.FencedDeleted || !errors.Is(err, services.ErrNotFound) || !errors.Is(err, services.ErrFenced) {
			t.Fatalf("heartbeat after delete: %v", err)
		}
		// A deleted id registers again as a new incarnation.
		if err := third.Register(ctx, inst("a", 44)); err != nil {
			t.Fatal(err)
		}
		if in, _ := third.Get(ctx, "a"); in.Incarnation != 4 {
			t.Fatalf("incarnation after delete and register: %d", in.Incarnation)
		}
	})
}
