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
		opts []dualwrite.Option
		bad  string // the option the error names; "" when valid
	}{
		{"defaults", nil, ""},
		{"zeros keep defaults", []dualwrite.Option{dualwrite.WithBatchSize(0, 0, 0), dualwrite.WithTargetBatchTime(0), dualwrite.WithRateLimit(0)}, ""},
		{"max alone below the default min", []dualwrite.Option{dualwrite.WithBatchSize(0, 0, 50)}, ""},
		{"initial alone above the default max", []dualwrite.Option{dualwrite.WithBatchSize(5_000_000, 0, 0)}, ""},
		{"min above max", []dualwrite.Option{dualwrite.WithBatchSize(0, 500, 50), dualwrite.WithTargetBatchTime(-time.Second)}, "WithTargetBatchTime"},
		{"min above max alone", []dualwrite.Option{dualwrite.WithBatchSize(0, 500, 50)}, "WithBatchSize"},
		{"initial outside the bounds", []dualwrite.Option{dualwrite.WithBatchSize(10, 50, 100)}, "WithBatchSize"},
		{"negative initial", []dualwrite.Option{dualwrite.WithBatchSize(-5, 0, 0)}, "WithBatchSize initial"},
		{"negative min", []dualwrite.Option{dualwrite.WithBatchSize(0, -1, 0)}, "WithBatchSize min"},
		{"negative max", []dualwrite.Option{dualwrite.WithBatchSize(0, 0, -1)}, "WithBatchSize max"},
		{"negative target", []dualwrite.Option{dualwrite.WithTargetBatchTime(-5 * time.Second)}, "WithTargetBatchTime"},
		{"negative rate", []dualwrite.Option{dualwrite.WithRateLimit(-1)}, "WithRateLimit"},
		{"NaN rate", []dualwrite.Option{dualwrite.WithRateLimit(math.NaN())}, "WithRateLimit"},
		{"infinite rate", []dualwrite.Option{dualwrite.WithRateLimit(math.Inf(1))}, "WithRateLimit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := dualwrite.CheckBackfillOptions(tc.opts...)
			checkOptionError(t, err, tc.bad)
		})
	}
	checkOptionError(t, dualwrite.CheckVerifyOptions(dualwrite.WithListMismatches(-1)), "WithListMismatches")
	checkOptionError(t, dualwrite.CheckVerifyOptions(dualwrite.WithListMismatches(0)), "")
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
		if _, err := e.mg.Backfill(ctx, m.Name, dualwrite.WithBatchSize(0, 500, 50), dualwrite.WithTargetBatchTime(-time.Second)); !errors.Is(err, dualwrite.ErrInvalidOption) {
			t.Fatalf("Backfill = %v, want ErrInvalidOption", err)
		}
		if _, err := e.mg.Verify(ctx, m.Name, dualwrite.WithListMismatches(-1)); !errors.Is(err, dualwrite.ErrInvalidOption) {
			t.Fatalf("Verify = %v, want ErrInvalidOption", err)
		}
		if after := dbtest.Dump(t, db); after != before {
			t.Fatalf("a refused backfill or verify changed the database:\n%s\n%s", before, after)
		}
	})
}
