package dualwrite_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
)

// TestOptionsValidated: every option value out of range is refused with
// ErrInvalidOption and an *OptionError naming it; zero keeps a default.
func TestOptionsValidated(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []dualwrite.BackfillOption
		bad  string // the option the error names; "" when valid
	}{
		{"defaults", nil, ""},
		{"zeros keep defaults", []dualwrite.BackfillOption{dualwrite.BatchSize(0, 0, 0), dualwrite.TargetBatchTime(0), dualwrite.RateLimit(0)}, ""},
		{"max alone below the default min", []dualwrite.BackfillOption{dualwrite.BatchSize(0, 0, 50)}, ""},
		{"initial alone above the default max", []dualwrite.BackfillOption{dualwrite.BatchSize(5_000_000, 0, 0)}, ""},
		{"min above max", []dualwrite.BackfillOption{dualwrite.BatchSize(0, 500, 50), dualwrite.TargetBatchTime(-time.Second)}, "TargetBatchTime"},
		{"min above max alone", []dualwrite.BackfillOption{dualwrite.BatchSize(0, 500, 50)}, "BatchSize"},
		{"initial outside the bounds", []dualwrite.BackfillOption{dualwrite.BatchSize(10, 50, 100)}, "BatchSize"},
		{"negative initial", []dualwrite.BackfillOption{dualwrite.BatchSize(-5, 0, 0)}, "BatchSize initial"},
		{"negative min", []dualwrite.BackfillOption{dualwrite.BatchSize(0, -1, 0)}, "BatchSize min"},
		{"negative max", []dualwrite.BackfillOption{dualwrite.BatchSize(0, 0, -1)}, "BatchSize max"},
		{"negative target", []dualwrite.BackfillOption{dualwrite.TargetBatchTime(-5 * time.Second)}, "TargetBatchTime"},
		{"negative rate", []dualwrite.BackfillOption{dualwrite.RateLimit(-1)}, "RateLimit"},
		{"NaN rate", []dualwrite.BackfillOption{dualwrite.RateLimit(math.NaN())}, "RateLimit"},
		{"infinite rate", []dualwrite.BackfillOption{dualwrite.RateLimit(math.Inf(1))}, "RateLimit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := dualwrite.CheckBackfillOptions(tc.opts...)
			checkOptionError(t, err, tc.bad)
		})
	}
	checkOptionError(t, dualwrite.CheckVerifyOptions(dualwrite.ListMismatches(-1)), "ListMismatches")
	checkOptionError(t, dualwrite.CheckVerifyOptions(dualwrite.ListMismatches(0)), "")
}

func checkOptionError(t *testing.T, err error, bad string) {
	t.Helper()
	if bad == "" {
		if err != nil {
			t.Fatalf("valid options refused: %v", err)
		}
		return
	}
	var oe *dualwrite.OptionError
	if !errors.Is(err, dualwrite.ErrInvalidOption) || !errors.As(err, &oe) || oe.Option != bad {
		t.Fatalf("err = %v, want an *OptionError naming %s", err, bad)
	}
}

// TestBadOptionsWriteNothing: Backfill, Verify and New refuse bad option
// values before they touch the database, on every engine.
func TestBadOptionsWriteNothing(t *testing.T) {
	p, err := dualwrite.ParsePlan(strings.NewReader(`version: 1
moves:
  - {name: price_cents, table: products, key: [id], old: price, new: {column: price_cents, type: BIGINT}}
`))
	if err != nil {
		t.Fatal(err)
	}
	m := p.Moves[0]
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		before := dbtest.Dump(t, db)
		if _, err := dualwrite.New(ctx, db, []move.Move{m}, dualwrite.WithRelease(-5)); !errors.Is(err, dualwrite.ErrInvalidOption) {
			t.Fatalf("New(WithRelease(-5)) = %v, want ErrInvalidOption", err)
		}
		if after := dbtest.Dump(t, db); after != before {
			t.Fatalf("a refused New changed the database:\n%s\n%s", before, after)
		}
		e := newEnv(t, db, 10, m)
		before = dbtest.Dump(t, db)
		if _, err := e.mg.Backfill(ctx, m.Name, dualwrite.BatchSize(0, 500, 50), dualwrite.TargetBatchTime(-time.Second)); !errors.Is(err, dualwrite.ErrInvalidOption) {
			t.Fatalf("Backfill = %v, want ErrInvalidOption", err)
		}
		if _, err := e.mg.Verify(ctx, m.Name, dualwrite.ListMismatches(-1)); !errors.Is(err, dualwrite.ErrInvalidOption) {
			t.Fatalf("Verify = %v, want ErrInvalidOption", err)
		}
		if after := dbtest.Dump(t, db); after != before {
			t.Fatalf("a refused backfill or verify changed the database:\n%s\n%s", before, after)
		}
	})
}
