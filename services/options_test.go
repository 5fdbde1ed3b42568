package services_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// One Option type: each constructor refuses an option that does not apply
// to it, naming where it does, and a value out of range; New creates no
// table.
func TestOptionsApplyWhereTheyBelong(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t, dialect.SQLite)
	if _, err := services.New(ctx, db); !errors.Is(err, services.ErrNoSchema) || !errors.Is(err, schema.ErrNotEnsured) || !strings.Contains(err.Error(), "tandem schema ensure") {
		t.Fatalf("New before schema ensure: %v", err)
	}
	if _, err := schema.Ensure(ctx, db, services.Tables()); err != nil {
		t.Fatal(err)
	}
	reg, err := services.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"New takes no TTL", func() error { _, err := services.New(ctx, db, services.WithTTL(time.Second)); return err }(),
			"WithTTL: does not apply to New (it applies to NewCache)"},
		{"NewCache takes no clock", func() error { _, err := services.NewCache(ctx, reg, nil, services.WithClock(time.Now)); return err }(),
			"WithClock: does not apply to NewCache (it applies to New)"},
		{"Register takes no logger", reg.Register(ctx, services.Instance{ID: "a", Service: "s", Release: 1}, services.WithLogger(nil)), "WithLogger = nil"},
		{"Register does not fence", reg.Register(ctx, services.Instance{ID: "a", Service: "s", Release: 1}, services.WithOnFenced(func(error) {})),
			"WithOnFenced: does not apply to Register (it applies to KeepAlive)"},
		{"a nil logger", func() error { _, err := services.New(ctx, db, services.WithLogger(nil)); return err }(), "a nil logger"},
		{"a missing-after of zero", func() error { _, err := services.New(ctx, db, services.WithMissingAfter(0)); return err }(), "WithMissingAfter = 0s: must be positive"},
		{"a negative TTL", func() error { _, err := services.NewCache(ctx, reg, nil, services.WithTTL(-time.Second)); return err }(), "WithTTL = -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var oe *services.OptionError
			if !errors.Is(tc.err, services.ErrInvalidOption) || !errors.As(tc.err, &oe) || !strings.Contains(tc.err.Error(), tc.want) {
				t.Fatalf("err = %v, want an *OptionError saying %q", tc.err, tc.want)
			}
		})
	}
}
