package services_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

// TestListPages pages through the registry with every filter, on every
// engine: the pages, joined, are exactly the instances the filter selects
// from the whole list, in order, each once; a bad cursor or limit is
// refused.
func TestListPages(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		reg := newRegistry(t, db, services.WithClock(clock.now))
		// 23 instances of three services and two releases; the first
		// seven stop heartbeating (missing), two drain, two fail, three
		// are deleted.
		for i := range 23 {
			in := inst(fmt.Sprintf("i%02d", i), 41+int64(i%2))
			in.Service = []string{"volume", "image", "api"}[i%3]
			if err := reg.Register(ctx, in); err != nil {
				t.Fatal(err)
			}
			if i == 6 {
				clock.add(time.Minute) // i00..i06 lapse
			}
		}
		for id, st := range map[string]services.State{"i10": services.StateDraining, "i11": services.StateDraining, "i12": services.StateError, "i13": services.StateError} {
			if err := reg.SetState(ctx, id, st); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"i20", "i21", "i22"} {
			if err := reg.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		every, err := reg.List(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			q    services.ListQuery
			keep func(services.Instance) bool
		}{
			{"live", services.ListQuery{}, func(in services.Instance) bool { return in.State != services.StateDeleted }},
			{"all", services.ListQuery{All: true}, func(services.Instance) bool { return true }},
			{"service", services.ListQuery{Service: "image"}, func(in services.Instance) bool {
				return in.Service == "image" && in.State != services.StateDeleted
			}},
			{"release", services.ListQuery{Release: 42}, func(in services.Instance) bool { return in.Release == 42 && in.State != services.StateDeleted }},
			{"missing", services.ListQuery{State: services.StateMissing}, func(in services.Instance) bool { return in.State == services.StateMissing }},
			{"up", services.ListQuery{State: services.StateUp}, func(in services.Instance) bool { return in.State == services.StateUp }},
			{"draining", services.ListQuery{State: services.StateDraining}, func(in services.Instance) bool { return in.State == services.StateDraining }},
			{"error", services.ListQuery{State: services.StateError}, func(in services.Instance) bool { return in.State == services.StateError }},
			{"deleted", services.ListQuery{State: services.StateDeleted}, func(in services.Instance) bool { return in.State == services.StateDeleted }},
			{"service and release", services.ListQuery{Service: "volume", Release: 41}, func(in services.Instance) bool {
				return in.Service == "volume" && in.Release == 41 && in.State != services.StateDeleted
			}},
			{"nothing", services.ListQuery{Service: "none"}, func(services.Instance) bool { return false }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var want []string
				for _, in := range every {
					if tc.keep(in) {
						want = append(want, in.ID)
					}
				}
				for _, limit := range []int{0, 1, 3, 100} {
					q := tc.q
					q.Limit = limit
					var got []string
					for pages := 0; ; pages++ {
						if pages > 30 {
							t.Fatalf("limit %d: more than 30 pages", limit)
						}
						p, err := reg.ListPage(ctx, q)
						if err != nil {
							t.Fatal(err)
						}
						if limit > 0 && len(p.Instances) > limit {
							t.Fatalf("limit %d: a page of %d", limit, len(p.Instances))
						}
						for _, in := range p.Instances {
							got = append(got, in.ID)
						}
						if p.Next == "" {
							break
						}
						q.After = p.Next
					}
					if !slices.Equal(got, want) {
						t.Fatalf("limit %d: pages hold %v, want %v", limit, got, want)
					}
				}
			})
		}
		for _, q := range []services.ListQuery{{Limit: -1}, {Limit: services.MaxPageSize + 1}, {After: "not-a-cursor"}, {State: "sleeping"}, {Release: -4}} {
			if _, err := reg.ListPage(ctx, q); !errors.Is(err, services.ErrInvalid) {
				t.Errorf("%+v: %v, want ErrInvalid", q, err)
			}
		}
	})
}
