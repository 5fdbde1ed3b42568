package dualwrite

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/internal/option"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// ErrInvalidOption means an option value is out of range (a negative
// batch size, a rate that is not a number, a nil logger ...), or an option
// was given to a constructor or call it does not apply to.
var ErrInvalidOption = option.ErrInvalid

// OptionError names the option and the value refused, and why.
type OptionError = option.Error

func badOption(opt string, v any, reason string) error {
	return option.Bad("dualwrite", opt, v, reason)
}

// Option is an optional setting of New (and Load), NewTracker, Backfill,
// Verify or Advance: the package has this one option type. Each takes the
// options that apply to it and refuses any other, and any value out of
// range, with an *OptionError (errors.Is ErrInvalidOption) before it does
// anything. WithLogger and WithMetrics apply to New and NewTracker alike,
// WithProgress and WithGoTransforms to Backfill and Verify.
type Option struct {
	name string
	bad  string // why the value is refused, if it is
	val  any

	manager  func(*Manager)
	tracker  func(*Tracker)
	backfill func(*backfillConfig)
	verify   func(*verifyConfig)
	advance  func(*advanceConfig)
}

// appliesTo lists where o applies, for the error of a call it does not.
func (o Option) appliesTo() []option.Call {
	return []option.Call{{Applies: o.manager != nil, Name: "New"}, {Applies: o.tracker != nil, Name: "NewTracker"}, {Applies: o.backfill != nil, Name: "Backfill"}, {Applies: o.verify != nil, Name: "Verify"}, {Applies: o.advance != nil, Name: "Advance"}}
}

// applyOptions applies opts to t for call, where pick gives each option's
// effect (nil: it does not apply).
func applyOptions[T any](call string, t *T, opts []Option, pick func(Option) func(*T)) error {
	for _, o := range opts {
		f := pick(o)
		if err := option.Check("dualwrite", call, o.name, o.bad, o.val, f != nil, o.appliesTo); err != nil {
			return err
		}
		f(t)
	}
	return nil
}

// --- New (the Manager) ---------------------------------------------------

// WithRegistry sets where instances and the phases they act on are read.
// When src also implements Finalizer (a *services.Registry does), it is used
// to finalize too.
func WithRegistry(src services.Source) Option {
	return Option{name: "WithRegistry", manager: func(m *Manager) {
		m.src = src
		if f, ok := src.(Finalizer); ok && m.fin == nil {
			m.fin = f
		}
	}}
}

// WithFinalizer sets who records finalization (default: the registry).
func WithFinalizer(f Finalizer) Option {
	return Option{name: "WithFinalizer", manager: func(m *Manager) { m.fin = f }}
}

// WithRelease records the release of the runner in the ledger and step log
// (New); 0 records none, a negative release is refused.
func WithRelease(r int64) Option {
	o := Option{name: "WithRelease", val: r, manager: func(m *Manager) { m.release = r }}
	if r < 0 {
		o.bad = "a release is at least 1 (0: none)"
	}
	return o
}

// WithLockWait bounds the wait for another runner's lock (default 60s; at
// least 0).
func WithLockWait(d time.Duration) Option {
	return Option{name: "WithLockWait", val: d, bad: option.NotNegative(d), manager: func(m *Manager) { m.lockWait = d }}
}

// WithLogger sets the logger of a Manager (New) or a Tracker (NewTracker);
// both are silent by default. A nil logger is refused.
func WithLogger(l *slog.Logger) Option {
	return Option{name: "WithLogger", val: "nil", bad: option.Logger(l),
		manager: func(m *Manager) { m.log = l }, tracker: func(t *Tracker) { t.log = l }}
}

// WithNotices makes the tracker's Run follow the registry's notices on nc
// for cluster (services.Registry.Cluster): a write freeze or thaw
// announced there (services.EventWriteFreeze, which tandem freeze and thaw
// publish with --nats, and Manager.Freeze and Thaw with a registry that
// has NATS) refreshes the tracker at once, so it refuses writes within a
// notice's delay instead of within its refresh interval. Without a notice
// (none published, or lost) the interval still refreshes. NewTracker only.
// A nil nc or an invalid cluster identity is refused.
func WithNotices(nc *nats.Conn, cluster string) Option {
	o := Option{name: "WithNotices", val: cluster, tracker: func(t *Tracker) { t.notices, t.cluster = nc, cluster }}
	switch {
	case nc == nil:
		o.val, o.bad = "nil", "a NATS connection is needed"
	case services.CheckCluster(cluster) != nil:
		o.bad = services.CheckCluster(cluster).Error()
	}
	return o
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return Option{name: "WithClock", val: "nil", bad: option.Clock(now), manager: func(m *Manager) { m.now = now }}
}

// WithoutSetup makes New only read: it neither records definitions nor
// gives moves their rows, so status can run with read-only rights or
// before the first advance (a move the ledger does not know then reads as
// legacy). Declared moves are still compared with their recorded
// definitions. Load is New with WithoutSetup and WithRecorded.
func WithoutSetup() Option {
	return Option{name: "WithoutSetup", manager: func(m *Manager) { m.noSetup = true }}
}

// WithRecorded makes the Manager run, besides the declared moves, every
// move the ledger records, rebuilt from its recorded definition: a command
// needs no declaration for a move the ledger knows.
func WithRecorded() Option {
	return Option{name: "WithRecorded", manager: func(m *Manager) { m.recorded = true }}
}

// WithAmend asks New to record the declared definition of the move named
// name as an amendment when it differs from the recorded one, with why in
// the definition's and the phase history. A change that would alter data
// already written at the move's phase is still refused (errors.Is
// ErrAmendRefused).
func WithAmend(name, why string) Option {
	o := Option{name: "WithAmend", val: name, manager: func(m *Manager) {
		if m.amends == nil {
			m.amends = map[string]string{}
		}
		m.amends[name] = why
	}}
	if name == "" {
		o.bad = "name the move to amend"
	}
	return o
}

// WithDeclaredIn names where the declared moves come from (such as "plan
// tandem-plan.yaml") and the command that records an intended change, for
// the *DriftError of a move that differs from its recorded definition.
func WithDeclaredIn(source string, amendCommand func(move string) string) Option {
	o := Option{name: "WithDeclaredIn", val: source, manager: func(m *Manager) { m.source, m.amendCmd = source, amendCommand }}
	if source == "" || amendCommand == nil {
		o.bad = "give both the source and the amend command"
	}
	return o
}

// WithMetrics registers metrics on reg: for New, the manager's, what the
// ledger and the registry say of each move, read when scraped (the phase,
// the next gate and its blockers by kind, backfill progress, failed rows,
// verify mismatches), and what this process's backfills did (batch
// durations, rows, rows per second); for NewTracker,
// tandem_dualwrite_acting_phase, the phase this instance acts on per move.
// docs/observability.md lists them.
func WithMetrics(reg prometheus.Registerer) Option {
	return Option{name: "WithMetrics", manager: func(m *Manager) { m.metricsReg = reg }, tracker: func(t *Tracker) { t.metricsReg = reg }}
}

// --- Backfill and Verify ---------------------------------------------------

// WithTargetBatchTime is the time one backfill batch should take (default
// 50ms; zero keeps it, a negative duration is refused with
// ErrInvalidOption); the batch size adapts toward it, like
// pt-online-schema-change's --chunk-time. The default leaves room for a
// batch to take four times as long as planned, on a busy machine, and
// still hold locks under 200ms, while a batch's fixed cost (its
// transaction, the cursor) stays a few percent.
func WithTargetBatchTime(d time.Duration) Option {
	return Option{name: "WithTargetBatchTime", backfill: func(c *backfillConfig) { c.target = d }}
}

// WithBatchSize sets the first backfill batch's size (default 1000) and
// the bounds the adaptive size stays within (defaults 100 and 1,000,000);
// zero keeps a default, a negative value or min above max is refused
// (ErrInvalidOption). The target time, not the maximum, normally decides
// the size.
func WithBatchSize(initial, minRows, maxRows int) Option {
	return Option{name: "WithBatchSize", backfill: func(c *backfillConfig) {
		if initial != 0 {
			c.initial = initial
		}
		if minRows != 0 {
			c.minBatch = minRows
		}
		if maxRows != 0 {
			c.maxBatch = maxRows
		}
	}}
}

// WithRateLimit caps the backfill at rows per second (0: no limit; a
// negative, infinite or NaN rate is refused with ErrInvalidOption).
func WithRateLimit(rowsPerSecond float64) Option {
	return Option{name: "WithRateLimit", backfill: func(c *backfillConfig) { c.rate = rowsPerSecond }}
}

// WithProgress is called after every batch of a backfill and once at its
// end, and after every batch of a Go-mode verify.
func WithProgress(f func(Progress)) Option {
	return Option{name: "WithProgress", backfill: func(c *backfillConfig) { c.progress = f }, verify: func(c *verifyConfig) { c.progress = f }}
}

// WithGoTransforms runs (Backfill) or compares with (Verify) the Go
// transform even when a SQL expression exists.
func WithGoTransforms() Option {
	return Option{name: "WithGoTransforms", backfill: func(c *backfillConfig) { c.forceGo = true }, verify: func(c *verifyConfig) { c.forceGo = true }}
}

// WithReverse makes a backfill refresh old from new (old = Backward(new))
// instead: the way back from write-new when no reverse trigger kept old.
func WithReverse() Option {
	return Option{name: "WithReverse", backfill: func(c *backfillConfig) { c.reverse = true }}
}

// WithRestart discards the saved backfill cursor and starts from the first
// key.
func WithRestart() Option {
	return Option{name: "WithRestart", backfill: func(c *backfillConfig) { c.restart = true }}
}

// WithRetryFailed transforms again the rows recorded as failed, and
// forgets those that succeed.
func WithRetryFailed() Option {
	return Option{name: "WithRetryFailed", backfill: func(c *backfillConfig) { c.retryFailed = true }}
}

// WithListMismatches sets how many mismatching rows Verify lists (default
// 20; 0 lists none, a negative count is refused with ErrInvalidOption).
func WithListMismatches(n int) Option {
	return Option{name: "WithListMismatches", verify: func(c *verifyConfig) { c.list = n }}
}

// --- Advance ---------------------------------------------------------------

// WithDryRun makes Advance check the gate and return the steps with their
// SQL, changing nothing.
func WithDryRun() Option {
	return Option{name: "WithDryRun", advance: func(c *advanceConfig) { c.dryRun = true }}
}

// WithNote records why, in the phase history.
func WithNote(s string) Option {
	return Option{name: "WithNote", advance: func(c *advanceConfig) { c.note = s }}
}

// WithExpectFrom makes Advance refuse, with a *PhaseChangedError, unless
// the ledger still stands at p (or already at the target) when read under
// the lock. A caller that chose the target from a phase read earlier ("the
// next phase") passes it, so that a move another runner advanced meanwhile
// is neither advanced again nor taken one step back: with the ledger two
// phases on, p's next phase is the ledger's previous one, and Advance
// would treat it as a rollback. When another runner made the very
// transition asked for, Advance succeeds with Already set and
// Transition.ByOther true.
func WithExpectFrom(p move.Phase) Option {
	o := Option{name: "WithExpectFrom", val: p, advance: func(c *advanceConfig) { c.from = &p }}
	if !p.Valid() {
		o.bad = "not a phase"
	}
	return o
}

// WithStartedAt says when the caller started (before it read the phase it
// chose the target from). If the move made a transition since, another
// runner made it while this one was starting up or waiting for the lock:
// Advance changes nothing and reports ByOther with that transition. With
// WithExpectFrom this makes two runners started together, that each take
// "the next phase", make one transition, even when one of them reads the
// phase only after the other wrote it. Transitions are compared by the
// time the runner that made them recorded, so the runners' clocks must
// agree to within the time a transition takes.
func WithStartedAt(t time.Time) Option {
	return Option{name: "WithStartedAt", advance: func(c *advanceConfig) { c.started = t }}
}

// Backfill's defaults; an option left at zero keeps them.
const (
	defaultTargetBatchTime = 50 * time.Millisecond
	defaultInitialBatch    = 1000
	defaultMinBatch        = 100
	defaultMaxBatch        = 1_000_000
)

// newBackfillConfig applies opts and validates the result, once, before a
// backfill touches anything: every option given to Backfill is checked here.
func newBackfillConfig(opts []Option) (backfillConfig, error) {
	var c backfillConfig
	if err := applyOptions("Backfill", &c, opts, func(o Option) func(*backfillConfig) { return o.backfill }); err != nil {
		return c, err
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
		return badOption("WithTargetBatchTime", c.target, "must be positive (0 keeps the default 50ms)")
	case c.initial < 0:
		return badOption("WithBatchSize initial", c.initial, "must be at least 1 (0 keeps the default 1000)")
	case c.minBatch < 0:
		return badOption("WithBatchSize min", c.minBatch, "must be at least 1 (0 keeps the default 100)")
	case c.maxBatch < 0:
		return badOption("WithBatchSize max", c.maxBatch, "must be at least 1 (0 keeps the default 1000000)")
	case math.IsNaN(c.rate) || math.IsInf(c.rate, 0) || c.rate < 0:
		return badOption("WithRateLimit", c.rate, "must be a finite number of rows per second, at least 0 (0: no limit)")
	case c.minBatch > 0 && c.maxBatch > 0 && c.minBatch > c.maxBatch:
		return badOption("WithBatchSize", fmt.Sprintf("min %d, max %d", c.minBatch, c.maxBatch), "min is above max")
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
		return badOption("WithBatchSize", fmt.Sprintf("initial %d, min %d, max %d", c.initial, c.minBatch, c.maxBatch), "initial is outside [min, max]")
	}
	return nil
}

// CheckBackfillOptions validates opts as Backfill does first, for callers
// that must refuse bad values before doing anything else (the CLI checks
// its flags with it before it opens the database).
func CheckBackfillOptions(opts ...Option) error {
	_, err := newBackfillConfig(opts)
	return err
}

// newVerifyConfig applies opts to Verify's defaults and validates them.
func newVerifyConfig(opts []Option) (verifyConfig, error) {
	c := verifyConfig{list: 20, batch: 5000}
	if err := applyOptions("Verify", &c, opts, func(o Option) func(*verifyConfig) { return o.verify }); err != nil {
		return c, err
	}
	return c, c.validate()
}

func (c *verifyConfig) validate() error {
	if c.list < 0 {
		return badOption("WithListMismatches", c.list, "must be at least 0 (0 lists none)")
	}
	if c.batch < 1 {
		return badOption("verify batch", c.batch, "must be at least 1")
	}
	return nil
}

// CheckVerifyOptions validates opts as Verify does first.
func CheckVerifyOptions(opts ...Option) error {
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
