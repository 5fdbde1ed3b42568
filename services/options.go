package services

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/internal/option"
)

// ErrInvalidOption means an option value is out of range (a nil logger, a
// duration that is not positive ...), or an option was given to a
// constructor or call it does not apply to.
var ErrInvalidOption = option.ErrInvalid

// OptionError names the option and the value refused, and why.
type OptionError = option.Error

// Option is an optional setting of New, Register, KeepAlive or NewCache:
// the package has this one option type. Each takes the options that apply
// to it and refuses any other, and any value out of range, with an
// *OptionError (errors.Is ErrInvalidOption) before it does anything.
type Option struct {
	name string
	bad  string // why the value is refused, if it is
	val  any

	registry  func(*Registry)
	register  func(*registerConfig)
	keepAlive func(*keepAliveConfig)
	cache     func(*Cache)
}

func (o Option) appliesTo() []option.Call {
	return []option.Call{{Applies: o.registry != nil, Name: "New"}, {Applies: o.register != nil, Name: "Register"}, {Applies: o.keepAlive != nil, Name: "KeepAlive"}, {Applies: o.cache != nil, Name: "NewCache"}}
}

func applyOptions[T any](call string, t *T, opts []Option, pick func(Option) func(*T)) error {
	for _, o := range opts {
		f := pick(o)
		if err := option.Check("services", call, o.name, o.bad, o.val, f != nil, o.appliesTo); err != nil {
			return err
		}
		f(t)
	}
	return nil
}

// WithNATS is the NATS connection the registry's change notices travel on
// (ChangedSubject of the cluster). New announces every change on it;
// KeepAlive listens on it and heartbeats at once when a notice names its
// instance, so a delete or a successor announced on NATS fences it within
// a round trip instead of at the next tick.
func WithNATS(conn *nats.Conn) Option {
	return Option{name: "WithNATS", registry: func(r *Registry) { r.nc = conn }, keepAlive: func(c *keepAliveConfig) { c.watch = conn }}
}

// WithMissingAfter sets the heartbeat age after which an instance is
// missing (New; default DefaultMissingAfter; must be positive).
func WithMissingAfter(d time.Duration) Option {
	return Option{name: "WithMissingAfter", val: d, bad: option.Positive(d), registry: func(r *Registry) { r.missingAfter = d }}
}

// WithLogger sets the logger of a Registry (New) or a Cache (NewCache);
// both are silent by default. A nil logger is refused.
func WithLogger(l *slog.Logger) Option {
	return Option{name: "WithLogger", val: "nil", bad: option.Logger(l),
		registry: func(r *Registry) { r.log = l }, cache: func(c *Cache) { c.log = l }}
}

// WithClock replaces time.Now, for tests of missing instances (New).
func WithClock(now func() time.Time) Option {
	return Option{name: "WithClock", val: "nil", bad: option.Clock(now), registry: func(r *Registry) { r.now = now }}
}

// WithReplace makes Register supersede the id's current incarnation even
// while it looks alive: it is fenced at its next heartbeat. A restarted
// process does not need it (a dead predecessor is superseded at once, see
// Register); use it only when the old process cannot leave a liveness
// token to check, as an in-process restart does.
func WithReplace() Option {
	return Option{name: "WithReplace", register: func(c *registerConfig) { c.replace = true }}
}

// WithOnFenced makes KeepAlive call fn once, with the *FencedError
// (errors.Is ErrFenced), when the instance turns out deleted or
// superseded, before it returns. Stop what acts for the instance there:
// withdraw its endpoints, stop its dualwrite.Tracker (Tracker.Stop has the
// right signature).
func WithOnFenced(fn func(error)) Option {
	return Option{name: "WithOnFenced", keepAlive: func(c *keepAliveConfig) { c.onFenced = fn }}
}

// WithTTL sets how long a Cache goes without checking its source when no
// notice arrives (default DefaultTTL; must be positive). Each wait is up
// to a fifth shorter, at random, so that caches started together spread
// their checks.
func WithTTL(d time.Duration) Option {
	return Option{name: "WithTTL", val: d, bad: option.Positive(d), cache: func(c *Cache) { c.ttl = d }}
}

// WithCacheEvents calls fn for every notice, snapshot and catch-up a Cache
// applies, for measurements. fn runs while the cache holds its lock: keep
// it short and do not call the cache from it.
func WithCacheEvents(fn func(CacheEvent)) Option {
	return Option{name: "WithCacheEvents", cache: func(c *Cache) { c.hook = fn }}
}

// WithMetrics registers a Cache's metrics on reg, labelled with its
// cluster: the floor, the instances by release and state, each API's cap
// and the finalized release, read from the cached snapshot when scraped
// (no query), and the cache's refreshes, the age of its snapshot and the
// change notices it received. docs/observability.md lists them.
func WithMetrics(reg prometheus.Registerer) Option {
	return Option{name: "WithMetrics", cache: func(c *Cache) { c.metricsReg = reg }}
}
