package rpcver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Client calls an API's servers at min(own current, cluster cap). It reads
// the cap from a CapSource without I/O, so a call costs no database query.
// It is safe for concurrent use.
//
// A client sends over a NATS connection of its own (see link), so a
// request is either sent while NATS is connected, and then runs within its
// caller's deadline or not at all, or fails at once with ErrDisconnected.
type Client struct {
	link    *link
	api     *API
	caps    CapSource
	prefix  string
	timeout time.Duration
	log     *slog.Logger
	methods map[string]*clientMethod
	met     *clientMetrics // nil without WithMetrics
}

type clientMethod struct {
	info    *methodInfo
	last    atomic.Pointer[subjectAt] // the subject of the last target, reused while the cap holds
	latency prometheus.Observer       // nil without metrics
}

// subjectAt holds a method's subjects at one version: without a budget
// token, and with each budget token.
type subjectAt struct {
	v        Version
	subject  string
	budgeted [maxBudgetBucket + 1]string
	counts   *outcomeCounters // nil without metrics
}

type clientConfig struct {
	prefix  string
	cluster string
	timeout time.Duration
	log     *slog.Logger
	metrics prometheus.Registerer
}

// NewClient returns a client of api over nc's NATS servers, capped by caps
// (for instance a *services.Cache). A nil caps means no cap: the client
// sends at its current version. It opens a connection of its own with nc's
// options and no reconnect buffer; Close closes it, and so does closing nc.
func NewClient(nc *nats.Conn, api *API, caps CapSource, opts ...Option) (*Client, error) {
	cfg := clientConfig{prefix: DefaultPrefix, timeout: 5 * time.Second, log: slog.New(slog.DiscardHandler)}
	if err := applyOptions("NewClient", &cfg, opts, func(o Option) func(*clientConfig) { return o.client }); err != nil {
		return nil, err
	}
	if nc == nil || api == nil {
		return nil, &DefinitionError{API: "?", Where: "NewClient", Reason: "a NATS connection and an API are required"}
	}
	if cfg.timeout <= 0 {
		return nil, &DefinitionError{API: api.name, Where: "WithTimeout", Reason: "timeout must be positive"}
	}
	if err := checkPrefix(cfg.prefix); err != nil {
		return nil, &DefinitionError{API: api.name, Where: "WithPrefix", Reason: err.Error()}
	}
	cluster, err := pickCluster(api.name, "WithCluster", cfg.cluster, clusterOf(caps))
	if err != nil {
		return nil, err
	}
	l, err := dial(nc, "rpcver client "+api.name, cfg.log)
	if err != nil {
		return nil, fmt.Errorf("rpcver: client %s: connect: %w", api.name, err)
	}
	c := &Client{link: l, api: api, caps: caps, prefix: scoped(cfg.prefix, cluster), timeout: cfg.timeout, log: cfg.log, methods: map[string]*clientMethod{}}
	for name, mi := range api.methods {
		c.methods[name] = &clientMethod{info: mi}
	}
	if cfg.metrics != nil {
		if c.met, err = newClientMetrics(cfg.metrics, api); err != nil {
			l.close()
			return nil, &DefinitionError{API: api.name, Where: "WithMetrics", Reason: err.Error()}
		}
		c.met.shared.targets.add(c)
		for name, cm := range c.methods {
			cm.latency = c.met.shared.callSecs.WithLabelValues(api.name, name)
		}
	}
	return c, nil
}

// Close closes the client's connection; calls fail with ErrDisconnected
// afterwards. It is safe to call more than once.
func (c *Client) Close() {
	if c.met != nil {
		c.met.shared.targets.remove(c)
	}
	c.link.close()
}

// Target is the version the client sends at now: min(own current, cap).
// A cap in another major does not apply: majors are routed apart.
func (c *Client) Target() Version {
	cur := c.api.current
	if c.caps == nil {
		return cur
	}
	capv, ok := c.caps.Cap(c.api.name)
	if !ok || capv.Major != cur.Major || !capv.Less(cur) {
		return cur
	}
	return capv
}

// API is the API the client speaks.
func (c *Client) API() *API { return c.api }

func (c *Client) call(ctx context.Context, method string, req, resp proto.Message) error {
	cm := c.methods[method]
	if cm == nil {
		return fmt.Errorf("rpcver: call %s.%s: %w", c.api.name, method, ErrUnknownMethod)
	}
	rm := req.ProtoReflect()
	if rm.Descriptor() != cm.info.input.desc && rm.Descriptor().FullName() != cm.info.input.desc.FullName() {
		return &DefinitionError{API: c.api.name, Where: method, Reason: fmt.Sprintf("request is %s, want %s", rm.Descriptor().FullName(), cm.info.input.desc.FullName())}
	}
	if c.met == nil {
		_, err := c.invoke(ctx, cm, rm, resp)
		return err
	}
	t0 := time.Now()
	to, err := c.invoke(ctx, cm, rm, resp)
	c.met.called(cm, cm.subjects(c.prefix, c.api.name, to, c.met), err, time.Since(t0))
	return err
}

// invoke sends at the target, and once more when the server refused the
// version and a refresh of the caps moved the target; it returns the
// version it sent at last.
func (c *Client) invoke(ctx context.Context, cm *clientMethod, rm protoreflect.Message, resp proto.Message) (Version, error) {
	method := cm.info.name
	to := c.Target()
	err := c.send(ctx, cm, rm, resp, to)
	if err == nil || c.caps == nil {
		return to, err
	}
	if uv := (*UnsupportedVersionError)(nil); errors.As(err, &uv) {
		if c.met != nil {
			c.met.refusedByServer()
		}
		// The cap may have moved under us (an older server joined). Refresh
		// once and retry at the new target; when the target did not move,
		// a resend would meet the same server range, so the error stands.
		if rerr := c.caps.Refresh(ctx); rerr != nil {
			return to, errors.Join(err, fmt.Errorf("rpcver: refresh caps: %w", rerr))
		}
		next := c.Target()
		if next == to {
			return to, err
		}
		c.log.Debug("rpcver: retrying after unsupported version", "api", c.api.name, "method", method, "was", to, "now", next)
		err = c.send(ctx, cm, rm, resp, next)
		if uv := (*UnsupportedVersionError)(nil); err != nil && c.met != nil && errors.As(err, &uv) {
			c.met.refusedByServer()
		}
		return next, err
	}
	return to, err
}

func (c *Client) send(ctx context.Context, cm *clientMethod, rm protoreflect.Message, resp proto.Message, to Version) error {
	sa, data, buf, err := c.encode(cm, rm, to)
	if err != nil {
		return err
	}
	if st, down := c.link.down(); down {
		release(buf)
		return &DisconnectedError{API: c.api.name, Method: cm.info.name, Status: st.String()}
	}
	epoch := c.link.epoch()
	reply, err := c.request(ctx, sa, data)
	release(buf)
	if err != nil {
		return c.requestError(cm, sa, epoch, err)
	}
	return c.decode(cm, reply, resp, to)
}

// requestError says what a failed request means for its caller: not sent
// (ErrDisconnected), sent but its connection dropped before an answer
// came (ErrDisconnected, in flight), no listener, or the timeout itself.
func (c *Client) requestError(cm *clientMethod, sa *subjectAt, epoch uint64, err error) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return &NoServerError{API: c.api.name, Subject: sa.subject, Reconnected: c.link.sinceReconnect()}
	case notSent(err):
		st, _ := c.link.down()
		return &DisconnectedError{API: c.api.name, Method: cm.info.name, Status: st.String(), Err: err}
	case errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
		if st, down := c.link.down(); down || c.link.epoch() != epoch {
			return &DisconnectedError{API: c.api.name, Method: cm.info.name, Status: st.String(), InFlight: true, Err: err}
		}
	}
	return fmt.Errorf("rpcver: call %s.%s: %w", c.api.name, cm.info.name, err)
}

// encode checks the method against the target, backports a copy of the
// request when a set field is newer than the target, and encodes it into a
// pooled buffer (release it once published).
func (c *Client) encode(cm *clientMethod, rm protoreflect.Message, to Version) (*subjectAt, []byte, *[]byte, error) {
	mi := cm.info
	if to.Less(mi.since) {
		return nil, nil, nil, &MethodTooNewError{API: c.api.name, Method: mi.name, Since: mi.since, Target: to}
	}
	msg := rm
	if to != c.api.current && c.api.needsBackport(rm, mi.input, to) {
		// Never touch the caller's message: backport a copy.
		msg = proto.Clone(rm.Interface()).ProtoReflect()
		if err := c.api.backport(msg, mi.input, to, true); err != nil {
			return nil, nil, nil, fmt.Errorf("rpcver: call %s.%s at %s: %w", c.api.name, mi.name, to, err)
		}
		if c.met != nil {
			c.met.backports.Inc()
		}
	}
	data, buf, err := marshal(msg.Interface())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("rpcver: call %s.%s: encode: %w", c.api.name, mi.name, err)
	}
	return cm.subjects(c.prefix, c.api.name, to, c.met), data, buf, nil
}

// decode reads a reply: a remote error, or the response, upgraded from the
// version it was sent at.
func (c *Client) decode(cm *clientMethod, reply *nats.Msg, resp proto.Message, to Version) error {
	mi := cm.info
	if reply.Header != nil {
		if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
			return c.remoteError(mi.name, to, code, reply)
		}
	}
	if err := unmarshalNew(reply.Data, resp); err != nil {
		return fmt.Errorf("rpcver: call %s.%s: decode response: %w", c.api.name, mi.name, err)
	}
	if to != c.api.current {
		if err := c.api.upgrade(resp.ProtoReflect(), mi.output, to); err != nil {
			return fmt.Errorf("rpcver: call %s.%s: response: %w", c.api.name, mi.name, err)
		}
		if c.met != nil {
			c.met.upgrades.Inc()
		}
	}
	return nil
}

// request sends one request. The time the client will wait, the context's
// deadline or the client's timeout, travels with it as the subject's
// budget token, so the handler stops when the caller has given up and a
// request the caller retried cannot commit after its retry.
func (c *Client) request(ctx context.Context, sa *subjectAt, data []byte) (*nats.Msg, error) {
	nc := c.link.nc
	if ctx.Done() == nil {
		// No cancellation: the plain request is cheaper than a context one.
		return nc.Request(sa.budgeted[budgetBucket(c.timeout)], data, c.timeout)
	}
	dl, ok := ctx.Deadline()
	if !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
		return nc.RequestWithContext(ctx, sa.budgeted[budgetBucket(c.timeout)], data)
	}
	left := time.Until(dl)
	if left <= 0 {
		return nil, context.DeadlineExceeded
	}
	return nc.RequestWithContext(ctx, sa.budgeted[budgetBucket(left)], data)
}

func (c *Client) remoteError(method string, to Version, code string, reply *nats.Msg) error {
	desc := reply.Header.Get(micro.ErrorHeader)
	if code == CodeUnsupportedVersion {
		var body versionErrorBody
		if json.Unmarshal(reply.Data, &body) == nil {
			return &UnsupportedVersionError{API: c.api.name, Method: method, Requested: to, Oldest: body.Oldest, Current: body.Current}
		}
	}
	return &RemoteError{API: c.api.name, Method: method, Code: code, Description: desc}
}

// versionErrorBody is the data of a CodeUnsupportedVersion error.
type versionErrorBody struct {
	Requested string  `json:"requested"`
	Oldest    Version `json:"oldest"`
	Current   Version `json:"current"`
}

func (cm *clientMethod) subjects(prefix, api string, v Version, met *clientMetrics) *subjectAt {
	if s := cm.last.Load(); s != nil && s.v == v {
		return s
	}
	s := &subjectAt{v: v, subject: Subject(prefix, api, cm.info.name, v)}
	if met != nil {
		s.counts = met.counters(cm.info.name, v)
	}
	for k := range s.budgeted {
		s.budgeted[k] = s.subject + "." + budgetToken(k)
	}
	cm.last.Store(s)
	return s
}

func checkPrefix(p string) error {
	if p == "" {
		return errors.New("the subject prefix must not be empty")
	}
	for _, r := range p {
		if r == ' ' || r == '*' || r == '>' || r < ' ' {
			return fmt.Errorf("subject prefix %q has a space, control character or wildcard", p)
		}
	}
	if p[0] == '.' || p[len(p)-1] == '.' {
		return fmt.Errorf("subject prefix %q must not start or end with '.'", p)
	}
	return nil
}
