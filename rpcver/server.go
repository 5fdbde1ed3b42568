package rpcver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/tandem-go/tandem/services"
)

// Server serves one API as a nats.go micro service: one endpoint per
// method, each accepting every version from the API's oldest to its
// current. It reports its versions to the registry and heartbeats while it
// runs. Register handlers with Handle, then Start.
type Server struct {
	api      *API
	nc       *nats.Conn
	prefix   string // with the cluster's token
	cluster  string
	log      *slog.Logger
	rep      services.Reporter
	inst     services.Instance
	every    time.Duration
	hb       func() services.Heartbeat
	timeout  time.Duration // handler timeout when a request carries none
	handlers map[string]*endpoint

	concurrency int            // workers per endpoint
	queueLimit  int            // requests waiting per endpoint
	met         *serverMetrics // nil without WithMetrics

	mu       sync.Mutex
	state    int // 0 new, 1 started, 2 shut down
	own      *nats.Conn
	closed   chan struct{}
	svc      micro.Service // guarded by disc.svcMu once started
	disc     discovery
	ctx      context.Context // handlers' context, cancelled when a shutdown gives up waiting
	cancel   context.CancelFunc
	dl       *deadlines // handlers' deadline contexts, children of ctx
	disp     *dispatcher
	kaCancel context.CancelFunc
	kaDone   chan error

	// Fencing: see WithOnFenced.
	onFenced  func(error)
	fenceOnce sync.Once
	fenced    chan struct{}
	fencedErr error
	isFenced  atomic.Bool
}

type endpoint struct {
	api    *API
	info   *methodInfo
	met    *methodMetrics // nil without WithMetrics
	newReq func() proto.Message
	fn     func(ctx context.Context, req proto.Message) (proto.Message, error)
}

type serverConfig struct {
	prefix  string
	cluster string
	log     *slog.Logger
	rep     services.Reporter
	inst    services.Instance
	every   time.Duration
	timeout time.Duration
	hb      func() services.Heartbeat
	fenced  func(error)
	workers int
	queue   int
	metrics prometheus.Registerer
}

// NewServer returns a server of api over nc's NATS servers.
func NewServer(nc *nats.Conn, api *API, opts ...Option) (*Server, error) {
	cfg := serverConfig{prefix: DefaultPrefix, log: slog.New(slog.DiscardHandler), every: 10 * time.Second, workers: 1, queue: DefaultQueueLimit}
	if err := applyOptions("NewServer", &cfg, opts, func(o Option) func(*serverConfig) { return o.server }); err != nil {
		return nil, err
	}
	if nc == nil || api == nil {
		return nil, &DefinitionError{API: "?", Where: "NewServer", Reason: "a NATS connection and an API are required"}
	}
	if err := checkPrefix(cfg.prefix); err != nil {
		return nil, &DefinitionError{API: api.name, Where: "WithPrefix", Reason: err.Error()}
	}
	if cfg.timeout < 0 {
		return nil, &DefinitionError{API: api.name, Where: "WithHandlerTimeout", Reason: "the handler timeout must not be negative"}
	}
	if cfg.workers < 1 {
		return nil, &DefinitionError{API: api.name, Where: "WithConcurrency", Reason: fmt.Sprintf("%d workers per endpoint: at least 1 is needed", cfg.workers)}
	}
	if cfg.queue < 1 {
		return nil, &DefinitionError{API: api.name, Where: "WithQueueLimit", Reason: fmt.Sprintf("a queue of %d requests: at least 1 is needed", cfg.queue)}
	}
	if cfg.rep != nil {
		if cfg.inst.ID == "" || cfg.inst.Service == "" {
			return nil, &DefinitionError{API: api.name, Where: "WithRegistry", Reason: "the instance needs an ID and a Service"}
		}
		if cfg.every <= 0 {
			return nil, &DefinitionError{API: api.name, Where: "WithRegistry", Reason: "the heartbeat interval must be positive"}
		}
	}
	if cfg.hb == nil {
		cfg.hb = func() services.Heartbeat { return services.Heartbeat{} }
	}
	cluster, err := pickCluster(api.name, "WithCluster", cfg.cluster, clusterOf(cfg.rep))
	if err != nil {
		return nil, err
	}
	var met *serverMetrics
	if cfg.metrics != nil {
		if met, err = newServerMetrics(cfg.metrics, api); err != nil {
			return nil, &DefinitionError{API: api.name, Where: "WithMetrics", Reason: err.Error()}
		}
	}
	return &Server{api: api, nc: nc, prefix: scoped(cfg.prefix, cluster), cluster: cluster, log: cfg.log, rep: cfg.rep, inst: cfg.inst, every: cfg.every, hb: cfg.hb,
		timeout: cfg.timeout, handlers: map[string]*endpoint{}, dl: &deadlines{parent: context.Background()},
		onFenced: cfg.fenced, fenced: make(chan struct{}),
		concurrency: cfg.workers, queueLimit: cfg.queue, met: met}, nil
}

// Handle registers fn as the handler of method m. A method newer than the
// server's current version is accepted and not served, as an older build
// would not have it.
func Handle[Req, Resp proto.Message](s *Server, m Method[Req, Resp], fn func(ctx context.Context, req Req) (Resp, error)) error {
	mi := s.api.methods[m.name]
	if mi == nil {
		return fmt.Errorf("rpcver: handle %s.%s: %w", s.api.name, m.name, ErrUnknownMethod)
	}
	var zreq Req
	var zresp Resp
	if zreq.ProtoReflect().Descriptor().FullName() != mi.input.desc.FullName() || zresp.ProtoReflect().Descriptor().FullName() != mi.output.desc.FullName() {
		return &DefinitionError{API: s.api.name, Where: m.name, Reason: fmt.Sprintf("handler types are %s -> %s, the method is %s -> %s",
			zreq.ProtoReflect().Descriptor().FullName(), zresp.ProtoReflect().Descriptor().FullName(), mi.input.desc.FullName(), mi.output.desc.FullName())}
	}
	reqType := zreq.ProtoReflect().Type()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != 0 {
		return fmt.Errorf("rpcver: handle %s.%s: %w: register handlers before Start", s.api.name, m.name, ErrServerState)
	}
	ep := &endpoint{api: s.api, info: mi,
		newReq: func() proto.Message { return reqType.New().Interface() },
		fn: func(ctx context.Context, req proto.Message) (proto.Message, error) {
			return fn(ctx, req.(Req))
		}}
	if s.met != nil {
		ep.met = s.met.method(m.name)
	}
	s.handlers[m.name] = ep
	return nil
}

// Start registers with the registry (when configured), then subscribes the
// endpoints. In that order a server older than the cluster's cap lowers
// the cap before it takes a request: a client that still sends at the old
// cap and reaches it gets CodeUnsupportedVersion, refreshes, and finds the
// lower cap, so its one retry succeeds. Registered but not yet listening,
// the server only keeps the cap low for a moment; requests go to the
// servers already in the queue group.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != 0 {
		return fmt.Errorf("rpcver: start %s: %w: already started", s.api.name, ErrServerState)
	}
	for _, name := range s.api.Methods() {
		if s.handlers[name] == nil {
			return &DefinitionError{API: s.api.name, Where: name, Reason: fmt.Sprintf("no handler; version %s of the API has this method, register one with rpcver.Handle", s.api.current)}
		}
	}
	if s.rep != nil {
		inst := s.inst
		inst.APIs = withAPI(inst.APIs, s.api.Registration())
		if inst.State == "" {
			inst.State = services.StateUp
		}
		if err := s.rep.Register(ctx, inst); err != nil {
			return fmt.Errorf("rpcver: start %s: register: %w", s.api.name, err)
		}
		s.inst = inst
	}
	if err := s.listen(ctx); err != nil {
		if s.rep != nil {
			// Leave nothing behind: a registered server that never listens
			// would hold the cap down until it went missing.
			if derr := s.rep.Deregister(context.WithoutCancel(ctx), s.inst.ID); derr != nil {
				err = errors.Join(err, fmt.Errorf("deregister: %w", derr))
			}
		}
		return fmt.Errorf("rpcver: start %s: %w", s.api.name, err)
	}
	if s.rep != nil {
		inst, own := s.inst, s.own
		kctx, kcancel := context.WithCancel(context.WithoutCancel(ctx))
		s.kaCancel, s.kaDone = kcancel, make(chan error, 1)
		go s.updateMetadata(kctx)
		hb := func() services.Heartbeat {
			h := s.hb()
			s.notePhases(h.Phases)
			return h
		}
		go func() {
			// Change notices on NATS fence at once; the heartbeat does
			// within one interval otherwise.
			err := services.KeepAlive(kctx, s.rep, inst.ID, s.every, hb,
				services.WithNATS(own), services.WithOnFenced(func(err error) { s.fence(inst.ID, err) }))
			if err != nil && !errors.Is(err, services.ErrFenced) {
				s.log.Warn("rpcver: heartbeats stopped", "api", s.api.name, "instance", inst.ID, "err", err)
			}
			s.kaDone <- err
		}()
	}
	s.state = 1
	return nil
}

// listen connects, adds the micro service and its endpoints, and flushes
// the subscriptions, so requests reach this server once it returns.
func (s *Server) listen(ctx context.Context) error {
	// A connection of its own lets Shutdown drain it, so requests already
	// delivered finish, without closing the caller's connection.
	s.closed = make(chan struct{})
	opts := s.nc.Opts
	opts.Name = "rpcver " + s.api.name
	opts.ClosedCB = func(*nats.Conn) { close(s.closed) }
	opts.DisconnectedCB, opts.ReconnectedCB, opts.DiscoveredServersCB, opts.LameDuckModeHandler = nil, nil, nil, nil
	// The caller's callbacks belong to its own connection; this one reports
	// through the server's logger (silent by default), never to stderr.
	opts.DisconnectedErrCB = func(_ *nats.Conn, err error) {
		s.log.Info("rpcver: disconnected from NATS", "api", s.api.name, "err", err)
	}
	opts.AsyncErrorCB = func(_ *nats.Conn, _ *nats.Subscription, err error) {
		s.log.Warn("rpcver: NATS error", "api", s.api.name, "err", err)
	}
	own, err := opts.Connect()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	// Answers go out on the same connection, and on a second one once
	// Shutdown drains the first: draining delivers every request to the
	// endpoints' queues and closes it, and the workers still answer what
	// they took.
	popts := opts
	popts.Name += " answers"
	popts.ClosedCB = nil
	pub, err := popts.Connect()
	if err != nil {
		own.Close()
		return fmt.Errorf("connect: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.dl = &deadlines{parent: s.ctx}
	disp := newDispatcher(s, own, pub)
	handlers := map[string]micro.Handler{}
	for _, name := range s.api.Methods() {
		handlers[name] = disp.add(s.handlers[name])
	}
	// Until the dispatcher's workers are released, they wait; leave none
	// behind when listening fails.
	abandon := func() {
		s.cancel()
		disp.release()
		own.Close()
		pub.Close()
	}
	// The phases the instance acts on now, for the metadata; heartbeats
	// keep them current (see discovery.go).
	phases := s.inst.Phases
	if s.rep != nil {
		if h := s.hb(); h.Phases != nil {
			phases = h.Phases
		}
	}
	s.disc = discovery{handlers: handlers, stats: disp.stats, applied: phases, wake: make(chan struct{}, 1)}
	svc, err := s.addService(ctx, own, phases)
	if err != nil {
		abandon()
		return err
	}
	s.own, s.svc, s.disp = own, svc, disp
	return nil
}

// fence withdraws the endpoints of an instance the registry no longer
// knows as this process's: requests go to the other servers instead.
func (s *Server) fence(id string, err error) {
	s.fenceOnce.Do(func() {
		s.isFenced.Store(true)
		s.fencedErr = err
		if serr := s.stopService(); serr != nil {
			s.log.Warn("rpcver: withdraw endpoints", "api", s.api.name, "err", serr)
		}
		s.log.Warn("rpcver: instance fenced; endpoints withdrawn, this server no longer serves", "api", s.api.name, "instance", id, "err", err)
		close(s.fenced)
		if s.onFenced != nil {
			s.onFenced(err)
		}
	})
}

// Fenced is closed once the registry fenced the server's instance (see
// WithOnFenced); FencedErr then says why.
func (s *Server) Fenced() <-chan struct{} { return s.fenced }

// FencedErr returns the *services.FencedError that fenced the server, or nil.
func (s *Server) FencedErr() error {
	select {
	case <-s.fenced:
		return s.fencedErr
	default:
		return nil
	}
}

// Service is the running micro service (nil before Start).
func (s *Server) Service() micro.Service {
	s.disc.svcMu.Lock()
	defer s.disc.svcMu.Unlock()
	return s.svc
}

// Shutdown reports the instance draining, stops taking requests, waits for
// the requests already delivered to finish, and deregisters. When ctx ends
// first, running handlers see their context cancelled and the connection
// closes.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != 1 {
		return fmt.Errorf("rpcver: shutdown %s: %w: not running", s.api.name, ErrServerState)
	}
	s.state = 2
	var errs []error
	fenced := s.isFenced.Load()
	if s.rep != nil && !fenced {
		// An operator may have deleted the instance already; that is no failure.
		if err := s.rep.Heartbeat(ctx, s.inst.ID, services.Heartbeat{State: services.StateDraining}); err != nil && !errors.Is(err, services.ErrNotFound) {
			errs = append(errs, fmt.Errorf("report draining: %w", err))
		}
	}
	if err := s.stopService(); err != nil {
		errs = append(errs, fmt.Errorf("stop service: %w", err))
	}
	if err := s.own.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("drain: %w", err))
	}
	select {
	case <-s.closed:
	case <-ctx.Done():
		s.cancel()
		s.own.Close()
		<-s.closed
		errs = append(errs, fmt.Errorf("drain: %w", ctx.Err()))
	}
	// Every request delivered is queued or running now: let the workers
	// finish and answer, then close the answers' connection.
	if err := s.disp.stop(ctx); err != nil {
		s.cancel()
		errs = append(errs, fmt.Errorf("finish requests: %w", err))
	}
	s.disp.close(ctx)
	s.cancel()
	if s.rep != nil {
		s.kaCancel()
		if err := <-s.kaDone; err != nil && !errors.Is(err, services.ErrNotFound) && !errors.Is(err, services.ErrFenced) {
			errs = append(errs, fmt.Errorf("heartbeat: %w", err))
		}
		// A fenced instance leaves the row to whoever holds it now.
		if !s.isFenced.Load() {
			if err := s.rep.Deregister(ctx, s.inst.ID); err != nil && !errors.Is(err, services.ErrNotFound) && !errors.Is(err, services.ErrFenced) {
				errs = append(errs, fmt.Errorf("deregister: %w", err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("rpcver: shutdown %s: %w", s.api.name, errors.Join(errs...))
	}
	return nil
}

// serve handles one request a worker took from q. Errors travel in
// micro's error headers; the data of CodeUnsupportedVersion is the
// server's range as JSON. A handler error that is no StatusError (nor a
// frozen write's refusal, answered CodeFrozen with its message) reaches
// the caller as CodeInternal with an id and nothing else; the server's
// logger gets the error with that id.
func (s *Server) serve(d *dispatcher, q *queue, j job) {
	ep, r := q.ep, j.r
	defer func() {
		// A handler's panic fails its request, not the process.
		if p := recover(); p != nil {
			id := newErrorID()
			s.log.Error("rpcver: handler panicked", "api", s.api.name, "method", ep.info.name, "error_id", id, "panic", p)
			d.fail(q, r, CodeInternal, internalMessage(id), nil)
			if ep.met != nil {
				s.met.served(ep.met, ep.info.name, Version{}, CodeInternal, j.at)
			}
		}
	}()
	v, code := s.handle(d, q, j)
	if ep.met != nil {
		s.met.served(ep.met, ep.info.name, v, code, j.at)
	}
}

// handle answers one request and returns the version it was asked at and
// the error code it was answered with ("" for success).
func (s *Server) handle(d *dispatcher, q *queue, j job) (Version, string) {
	ep, r := q.ep, j.r
	if s.isFenced.Load() {
		// Delivered before the endpoints were withdrawn: nothing runs
		// for an instance that is no longer this process's.
		d.fail(q, r, CodeFenced, "this server's instance was deleted or superseded; retry on another server", nil)
		return Version{}, CodeFenced
	}
	req, v, budget, rerr := ep.decode(r.Subject(), r.Data())
	if rerr != nil {
		d.fail(q, r, rerr.code, rerr.msg, rerr.data)
		return v, rerr.code
	}
	if v != s.api.current && s.met != nil {
		s.met.upgrades.Inc()
	}
	ctx, cancel, rerr := handlerContext(s.dl, j.at, budget, nats.Header(r.Headers()), s.timeout)
	if rerr != nil {
		d.fail(q, r, rerr.code, rerr.msg, rerr.data)
		return v, rerr.code
	}
	defer cancel()
	if err := ctx.Err(); err != nil {
		if err == context.DeadlineExceeded {
			// The caller's time ran out before the handler could start,
			// on the wire or waiting behind earlier requests.
			q.expired.Add(1)
			d.fail(q, r, CodeDeadlineExceeded, fmt.Sprintf("the caller's deadline passed before the handler started (the request waited %s at the server); it did not run",
				time.Since(j.at).Round(time.Millisecond)), nil)
			return v, CodeDeadlineExceeded
		}
		d.fail(q, r, CodeUnavailable, "the server is shutting down; the request did not run", nil)
		return v, CodeUnavailable
	}
	resp, err := ep.fn(ctx, req)
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			d.fail(q, r, se.Code, se.Message, nil)
			return v, se.Code
		}
		if isFrozen(err) {
			// A refusal the operator asked for, not a failure: the caller
			// sees why (the freeze's reason), and that it may retry later.
			d.fail(q, r, CodeFrozen, err.Error(), nil)
			return v, CodeFrozen
		}
		id := newErrorID()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == context.DeadlineExceeded {
			s.log.Info("rpcver: handler ran out of its caller's time", "api", s.api.name, "method", ep.info.name, "error_id", id, "err", err)
			d.fail(q, r, CodeDeadlineExceeded, "the handler ran out of the caller's time (error id "+id+")", nil)
			return v, CodeDeadlineExceeded
		}
		s.log.Error("rpcver: handler error", "api", s.api.name, "method", ep.info.name, "error_id", id, "err", err)
		d.fail(q, r, CodeInternal, internalMessage(id), nil)
		return v, CodeInternal
	}
	if v != s.api.current {
		// Back to the caller's version: fields the caller cannot know and
		// no step handles stay on the wire; its protobuf keeps them as
		// unknown fields, so a read-modify-write does not lose them.
		if err := s.api.backport(resp.ProtoReflect(), ep.info.output, v, false); err != nil {
			d.fail(q, r, CodeCannotBackport, err.Error(), nil)
			return v, CodeCannotBackport
		}
		if s.met != nil {
			s.met.backports.Inc()
		}
	}
	data, buf, err := marshal(resp)
	if err != nil {
		id := newErrorID()
		s.log.Error("rpcver: encode response", "api", s.api.name, "method", ep.info.name, "error_id", id, "err", err)
		d.fail(q, r, CodeInternal, internalMessage(id), nil)
		return v, CodeInternal
	}
	d.respond(r, data)
	release(buf)
	return v, ""
}

type requestError struct {
	code, msg string
	data      []byte
}

// decode reads the version and the caller's budget (-1 when the subject
// has none) from the subject and the request from the payload, checks the
// version against the server's range and upgrades the request to the
// current version. It never panics on any input.
func (ep *endpoint) decode(subject string, data []byte) (proto.Message, Version, time.Duration, *requestError) {
	a := ep.api
	minor, budget, ok, budgetOK := subjectTail(subject, a.current.Major)
	if !ok {
		return nil, Version{}, -1, &requestError{code: CodeBadRequest, msg: fmt.Sprintf("subject %q does not end in v%d.<minor> or v%d.<minor>.t<milliseconds>", subject, a.current.Major, a.current.Major)}
	}
	v := Version{Major: a.current.Major, Minor: minor}
	if !budgetOK {
		return nil, v, -1, &requestError{code: CodeBadRequest, msg: fmt.Sprintf("subject %q: the budget token is not t and a whole number of milliseconds (at most 9 digits)", subject)}
	}
	if v.Less(a.oldest) || a.current.Less(v) {
		body, _ := json.Marshal(versionErrorBody{Requested: v.String(), Oldest: a.oldest, Current: a.current})
		return nil, v, -1, &requestError{code: CodeUnsupportedVersion,
			msg:  fmt.Sprintf("%s.%s at %s: this server accepts %s to %s", a.name, ep.info.name, v, a.oldest, a.current),
			data: body}
	}
	if v.Less(ep.info.since) {
		return nil, v, -1, &requestError{code: CodeBadRequest, msg: fmt.Sprintf("%s.%s came in %s; a request at %s cannot call it", a.name, ep.info.name, ep.info.since, v)}
	}
	req := ep.newReq()
	if err := unmarshalNew(data, req); err != nil {
		return nil, v, -1, &requestError{code: CodeBadRequest, msg: "decode " + string(ep.info.input.desc.FullName()) + ": " + err.Error()}
	}
	if v != a.current {
		if err := a.upgrade(req.ProtoReflect(), ep.info.input, v); err != nil {
			return nil, v, -1, &requestError{code: CodeBadRequest, msg: err.Error()}
		}
	}
	return req, v, budget, nil
}

func withAPI(apis []services.API, a services.API) []services.API {
	out := make([]services.API, 0, len(apis)+1)
	for _, x := range apis {
		if x.Name != a.Name {
			out = append(out, x)
		}
	}
	return append(out, a)
}

func maxVersion(a, b Version) Version {
	if a.Less(b) {
		return b
	}
	return a
}
