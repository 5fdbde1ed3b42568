package dualwrite_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
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

// One Option type: each constructor or call refuses an option that does
// not apply to it, naming where it does, and a value out of range, before
// it touches anything; constructors never create tandem's tables.
func TestOptionsApplyWhereTheyBelong(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t, dialect.SQLite)
	mustExec(t, db, `CREATE TABLE products (id BIGINT PRIMARY KEY, name VARCHAR(50), price DECIMAL(12,2))`)
	m := priceMove()
	if _, err := dualwrite.New(ctx, db, []move.Move{m}); !errors.Is(err, schema.ErrNotEnsured) || !strings.Contains(err.Error(), "tandem schema ensure") {
		t.Fatalf("New before schema ensure: %v", err)
	}
	if _, err := dualwrite.NewTracker(ctx, db, 1, []move.Move{m}); !errors.Is(err, schema.ErrNotEnsured) {
		t.Fatalf("NewTracker before schema ensure: %v", err)
	}
	ensureLedger(t, db)
	for _, tc := range []struct {
		name string
		err  error
		want string // in the message
	}{
		{"New takes no progress", func() error {
			_, err := dualwrite.New(ctx, db, []move.Move{m}, dualwrite.WithProgress(func(dualwrite.Progress) {}))
			return err
		}(),
			"WithProgress: does not apply to New (it applies to Backfill, Verify)"},
		{"NewTracker takes no clock", func() error {
			_, err := dualwrite.NewTracker(ctx, db, 1, []move.Move{m}, dualwrite.WithClock(time.Now))
			return err
		}(),
			"WithClock: does not apply to NewTracker (it applies to New)"},
		{"a nil logger", func() error {
			_, err := dualwrite.NewTracker(ctx, db, 1, []move.Move{m}, dualwrite.WithLogger(nil))
			return err
		}(),
			"WithLogger = nil: a nil logger"},
		{"a negative lock wait", func() error {
			_, err := dualwrite.New(ctx, db, []move.Move{m}, dualwrite.WithLockWait(-time.Second))
			return err
		}(),
			"WithLockWait = -1s"},
		{"Backfill takes no dry run", dualwrite.CheckBackfillOptions(dualwrite.WithDryRun()), "WithDryRun: does not apply to Backfill (it applies to Advance)"},
		{"Verify does not reverse", dualwrite.CheckVerifyOptions(dualwrite.WithReverse()), "WithReverse: does not apply to Verify (it applies to Backfill)"},
		{"a zero Option", dualwrite.CheckVerifyOptions(dualwrite.Option{}), "a zero Option"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var oe *dualwrite.OptionError
			if !errors.Is(tc.err, dualwrite.ErrInvalidOption) || !errors.As(tc.err, &oe) || !strings.Contains(tc.err.Error(), tc.want) {
				t.Fatalf("err = %v, want an *OptionError saying %q", tc.err, tc.want)
			}
		})
	}
	// What applies in two places works in both.
	if _, err := dualwrite.NewTracker(ctx, db, 1, []move.Move{m}, dualwrite.WithLogger(slog.New(slog.DiscardHandler))); err != nil {
		t.Fatal(err)
	}
	if err := dualwrite.CheckVerifyOptions(dualwrite.WithProgress(func(dualwrite.Progress) {}), dualwrite.WithGoTransforms()); err != nil {
		t.Fatal(err)
	}
}
