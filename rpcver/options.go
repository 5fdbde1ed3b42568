package rpcver

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/tandem-go/tandem/internal/option"
	"github.com/tandem-go/tandem/services"
)

// ErrInvalidOption means an option value is out of range (a nil logger, a
// negative duration ...), or an option was given to a constructor it does
// not apply to. Such errors match ErrInvalid too.
var ErrInvalidOption = option.ErrInvalid

// OptionError names the option and the value refused, and why.
type OptionError = option.Error

// Option is an optional setting of NewAPI, NewServer, NewClient or
// NewObjects: the package has this one option type. Each takes the options
// that apply to it and refuses any other, and any value out of range, with
// an *OptionError (errors.Is ErrInvalidOption and ErrInvalid) before it
// does anything. WithPrefix, WithCluster, WithLogger and WithMetrics apply
// to servers and clients alike.
type Option struct {
	name string
	bad  string // why the value is refused, if it is
	val  any

	api     func(*apiConfig)
	server  func(*serverConfig)
	client  func(*clientConfig)
	objects func(*objectsConfig)
}

func (o Option) appliesTo() []option.Call {
	return []option.Call{{Applies: o.api != nil, Name: "NewAPI"}, {Applies: o.server != nil, Name: "NewServer"}, {Applies: o.client != nil, Name: "NewClient"}, {Applies: o.objects != nil, Name: "NewObjects"}}
}

func applyOptions[T any](call string, t *T, opts []Option, pick func(Option) func(*T)) error {
	for _, o := range opts {
		f := pick(o)
		if err := option.Check("rpcver", call, o.name, o.bad, o.val, f != nil, o.appliesTo); err != nil {
			return fmt.Errorf("%w (%w)", err, ErrInvalid)
		}
		f(t)
	}
	return nil
}

// --- servers and clients ---------------------------------------------------

// WithPrefix sets the subject prefix (default DefaultPrefix); servers and
// their clients must agree on it.
func WithPrefix(p string) Option {
	return Option{name: "WithPrefix", server: func(c *serverConfig) { c.prefix = p }, client: func(c *clientConfig) { c.prefix = p }}
}

// WithCluster sets the cluster a server serves or a client calls (see
// services.ClusterTable). By default a server's is the cluster of
// WithRegistry's registry, a client's the cluster of its caps when caps
// knows one (a *services.Cache does); none otherwise. Clients reach a
// server only with the same cluster.
func WithCluster(id string) Option {
	return Option{name: "WithCluster", server: func(c *serverConfig) { c.cluster = id }, client: func(c *clientConfig) { c.cluster = id }}
}

// WithLogger sets the logger of a server or a client; both are silent by
// default. A nil logger is refused.
func WithLogger(l *slog.Logger) Option {
	return Option{name: "WithLogger", val: "nil", bad: option.Logger(l),
		server: func(c *serverConfig) { c.log = l }, client: func(c *clientConfig) { c.log = l }}
}

// WithMetrics registers metrics on reg. A server's:
// tandem_rpcver_server_requests_total, tandem_rpcver_server_request_seconds,
// tandem_rpcver_backports_total, tandem_rpcver_upgrades_total and
// tandem_rpcver_refusals_total. A client's: tandem_rpcver_client_calls_total,
// tandem_rpcver_client_call_seconds, tandem_rpcver_backports_total,
// tandem_rpcver_upgrades_total, tandem_rpcver_refusals_total and
// tandem_rpcver_cap_minor (see docs/observability.md). Without it a call
// pays nothing for metrics.
func WithMetrics(reg prometheus.Registerer) Option {
	return Option{name: "WithMetrics",
		server: func(c *serverConfig) { c.metrics = reg }, client: func(c *clientConfig) { c.metrics = reg }}
}

// --- clients ---------------------------------------------------------------

// WithTimeout bounds a client's calls whose context has no deadline
// (default 5s; must be positive).
func WithTimeout(d time.Duration) Option {
	return Option{name: "WithTimeout", val: d, bad: option.Positive(d), client: func(c *clientConfig) { c.timeout = d }}
}

// --- servers ---------------------------------------------------------------

// WithHandlerTimeout bounds a handler whose request carries no caller
// deadline (TimeoutHeader), for instance one sent with the nats tool: its
// context ends after d. Requests from rpcver clients always carry the time
// their caller will wait, and the handler's context ends with it. Zero, the
// default, leaves such handlers unbounded; a negative d is refused.
func WithHandlerTimeout(d time.Duration) Option {
	return Option{name: "WithHandlerTimeout", val: d, bad: option.NotNegative(d), server: func(c *serverConfig) { c.timeout = d }}
}

// WithConcurrency runs up to n handlers of each endpoint at once (default
// 1: an endpoint's requests are handled one at a time, in order, as
// nats.go delivers them). Whatever n, a request's time counts from when it
// reached the server, so one waiting for a busy handler never starts after
// its caller gave up.
func WithConcurrency(n int) Option {
	return Option{name: "WithConcurrency", server: func(c *serverConfig) { c.workers = n }}
}

// WithQueueLimit sets how many requests of an endpoint may wait for a
// handler (default DefaultQueueLimit); one more is answered
// CodeUnavailable at once.
func WithQueueLimit(n int) Option {
	return Option{name: "WithQueueLimit", server: func(c *serverConfig) { c.queue = n }}
}

// WithRegistry makes Start register inst, with this API added to its APIs,
// through rep (a *services.Registry or a *services.Remote), heartbeat every
// interval, and Shutdown report draining then deregister. A process that
// serves several APIs registers once itself and passes no registry here.
func WithRegistry(rep services.Reporter, inst services.Instance, every time.Duration) Option {
	return Option{name: "WithRegistry", server: func(c *serverConfig) { c.rep, c.inst, c.every = rep, inst, every }}
}

// WithHeartbeat sets what each heartbeat of WithRegistry reports, such as
// the phase this instance acts on per move (a dualwrite.Tracker's Phases),
// so moves' gates see the server's acknowledgements, and the write freeze
// it acknowledges (the Tracker's FreezeAck), so tandem freeze does.
func WithHeartbeat(hb func() services.Heartbeat) Option {
	return Option{name: "WithHeartbeat", server: func(c *serverConfig) { c.hb = hb }}
}

// WithOnFenced calls fn once when the registry fences the server's
// instance (WithRegistry): an operator deleted it, or a newer process of
// the same id superseded it. By then the server has withdrawn its
// endpoints and logged why; fn gets the *services.FencedError
// (errors.Is services.ErrFenced) and should stop what else acts for the
// instance, such as its dualwrite.Tracker (pass tracker.Stop), and exit.
func WithOnFenced(fn func(error)) Option {
	return Option{name: "WithOnFenced", server: func(c *serverConfig) { c.fenced = fn }}
}

// --- NewAPI and NewObjects -------------------------------------------------

// WithCurrent makes the API claim current version v instead of the one the
// .proto declares. An older v is what an older build would serve: methods
// and fields newer than v are unknown to it. Same major only.
func WithCurrent(v Version) Option {
	return Option{name: "WithCurrent", api: func(c *apiConfig) { c.current = &v }}
}

// WithOldest sets the oldest version servers accept (default: the .proto's
// (tandem.oldest), else major.0).
func WithOldest(v Version) Option {
	return Option{name: "WithOldest", api: func(c *apiConfig) { c.oldest = &v }}
}

// WithMessages adds messages that are not in any method, such as stored
// objects, so their history is read and their steps can be registered.
func WithMessages(msgs ...proto.Message) Option {
	return Option{name: "WithMessages", api: func(c *apiConfig) {
		for _, m := range msgs {
			c.messages = append(c.messages, m.ProtoReflect().Descriptor())
		}
	}}
}

// WithReaderAPI gates writes and write-backs of NewObjects on the cap of
// the API named name instead of the API's own: for objects read by
// processes that do not all serve the API. Each of them registers name
// (see Registration).
func WithReaderAPI(name string) Option {
	return Option{name: "WithReaderAPI", objects: func(c *objectsConfig) { c.reader = name }}
}
