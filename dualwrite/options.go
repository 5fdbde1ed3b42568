package dualwrite

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalidOption means an option value is out of range (a negative
// batch size, a rate that is not a number, a negative release ...).
var ErrInvalidOption = errors.New("invalid option")

// OptionError names the option and the value refused, and why.
type OptionError struct {
	Option string
	Value  string
	Reason string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("dualwrite: option %s = %s: %s", e.Option, e.Value, e.Reason)
}

func (e *OptionError) Unwrap() error { return ErrInvalidOption }

func badOption(opt string, v any, reason string) error {
	return &OptionError{Option: opt, Value: fmt.Sprint(v), Reason: reason}
}

// Backfill's defaults; an option left at zero keeps them.
const (
	defaultTargetBatchTime = 50 * time.Millisecond
	defaultInitialBatch    = 1000
	defaultMinBatch        = 100
	defaultMaxBatch        = 1_000_000
)

// newBackfillConfig applies opts and validates the result, once, before a
// backfill touches anything: every BackfillOption is checked here.
func newBackfillConfig(opts []BackfillOption) (backfillConfig, error) {
	var c backfillConfig
	for _, o := range opts {
		o(&c)
	}
	return c, c.validate()
}

// validate refuses values out of range and fills in the defaults for the
// ones left at zero, so that the batch bounds always hold: min <= initial
// <= max. A default that does not fit an explicit bound follows it (a max
// of 50 alone gives min 50 and a first batch of 50).
func (c *backfillConfig) validate() error {
	switch {
	case c.target < 0:
		return badOption("TargetBatchTime", c.target, "must be positive (0 keeps the default 50ms)")
	case c.initial < 0:
		return badOption("BatchSize initial", c.initial, "must be at least 1 (0 keeps the default 1000)")
	case c.minBatch < 0:
		return badOption("BatchSize min", c.minBatch, "must be at least 1 (0 keeps the default 100)")
	case c.maxBatch < 0:
		return badOption("BatchSize max", c.maxBatch, "must be at least 1 (0 keeps the default 1000000)")
	case math.IsNaN(c.rate) || math.IsInf(c.rate, 0) || c.rate < 0:
		return badOption("RateLimit", c.rate, "must be a finite number of rows per second, at least 0 (0: no limit)")
	case c.minBatch > 0 && c.maxBatch > 0 && c.minBatch > c.maxBatch:
		return badOption("BatchSize", fmt.Sprintf("min %d, max %d", c.minBatch, c.maxBatch), "min is above max")
	}
	if c.target == 0 {
		c.target = defaultTargetBatchTime
	}
	if c.maxBatch == 0 {
		c.maxBatch = max(defaultMaxBatch, c.minBatch, c.initial)
	}
	if c.minBatch == 0 {
		c.minBatch = min(defaultMinBatch, c.maxBatch)
		if c.initial > 0 {
			c.minBatch = min(c.minBatch, c.initial)
		}
	}
	if c.initial == 0 {
		c.initial = max(c.minBatch, min(c.maxBatch, defaultInitialBatch))
	}
	if c.initial < c.minBatch || c.initial > c.maxBatch {
		return badOption("BatchSize", fmt.Sprintf("initial %d, min %d, max %d", c.initial, c.minBatch, c.maxBatch), "initial is outside [min, max]")
	}
	return nil
}

// CheckBackfillOptions validates opts as Backfill does first, for callers
// that must refuse bad values before doing anything else (the CLI checks
// its flags with it before it opens the database).
func CheckBackfillOptions(opts ...BackfillOption) error {
	_, err := newBackfillConfig(opts)
	return err
}

// newVerifyConfig applies opts to Verify's defaults and validates them.
func newVerifyConfig(opts []VerifyOption) (verifyConfig, error) {
	c := verifyConfig{list: 20, batch: 5000}
	for _, o := range opts {
		o(&c)
	}
	return c, c.validate()
}

func (c *verifyConfig) validate() error {
	if c.list < 0 {
		return badOption("ListMismatches", c.list, "must be at least 0 (0 lists none)")
	}
	if c.batch < 1 {
		return badOption("verify batch", c.batch, "must be at least 1")
	}
	return nil
}

// CheckVerifyOptions validates opts as Verify does first.
func CheckVerifyOptions(opts ...VerifyOption) error {
	_, err := newVerifyConfig(opts)
	return err
}

// validate refuses Manager options out of range; New calls it before it
// touches the database.
func (mg *Manager) validate() error {
	if mg.release < 0 {
		return badOption("WithRelease", mg.release, "a release is at least 1 (0: not set)")
	}
	if mg.lockWait < 0 {
		return badOption("WithLockWait", mg.lockWait, "must be at least 0")
	}
	return nil
}
