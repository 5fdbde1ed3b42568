package services

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// The registry over NATS, for nodes without database credentials. Serve runs
// on a node that has them; NewRemote is the client. It is a nats micro
// service, so `nats micro info tandem-registry` shows it (each cluster's
// registry with its tandem.cluster metadata), on the subjects of
// RemoteSubject(cluster).
const RemoteServiceName = "tandem-registry"

// Each Remote incarnation answers on RemoteSubject(cluster) + ".alive.<unique>"
// while its connection lives, so its successor can prove it gone.
const aliveToken = ".alive."

// Error codes carried in micro's Nats-Service-Error-Code header.
const (
	codeInvalid        = "400"
	codeBelowFinalized = "403"
	codeNotFound       = "404"
	codeDuplicate      = "409"
	codeFenced         = "410"
	codeInternal       = "500"
)

type registerRequest struct {
	Instance Instance `json:"instance"`
	Replace  bool     `json:"replace,omitempty"`
	// Alive is the subject the registering process answers on.
	Alive string `json:"alive,omitempty"`
}

type registerReply struct {
	Incarnation int64 `json:"incarnation"`
}

type heartbeatRequest struct {
	ID          string    `json:"id"`
	Incarnation int64     `json:"incarnation,omitempty"`
	Heartbeat   Heartbeat `json:"heartbeat"`
}

type changesRequest struct {
	Since int64 `json:"since"`
}

type idRequest struct {
	ID          string `json:"id"`
	Incarnation int64  `json:"incarnation,omitempty"`
}

// remoteError is the JSON body of an error reply: enough to rebuild the typed error.
type remoteError struct {
	Message   string    `json:"message"`
	ID        string    `json:"id,omitempty"`
	Host      string    `json:"host,omitempty"`
	Release   int64     `json:"release,omitempty"`
	Finalized int64     `json:"finalized,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Field     string    `json:"field,omitempty"`
	Value     string    `json:"value,omitempty"`
	Heartbeat time.Time `json:"heartbeat,omitempty"`
	// Duplicate and Fenced carry those typed errors whole.
	Duplicate *DuplicateError `json:"duplicate,omitempty"`
	Fenced    *FencedError    `json:"fenced,omitempty"`
}

// Serve exposes reg on nc until the returned service is stopped; the
// endpoints are live when it returns. They listen on the subjects of reg's
// cluster only, so another cluster's nodes on the same NATS never reach it.
func Serve(nc *nats.Conn, reg *Registry) (micro.Service, error) {
	svc, err := micro.AddService(nc, micro.Config{
		Name:        RemoteServiceName,
		Version:     "1.0.0",
		Description: "tandem services registry for nodes without database credentials",
		Metadata:    map[string]string{"tandem.cluster": reg.Cluster()},
	})
	if err != nil {
		return nil, fmt.Errorf("services: serve: %w", err)
	}
	g := svc.AddGroup(RemoteSubject(reg.Cluster()))
	add := func(name string, fn func(ctx context.Context, data []byte) (any, error)) error {
		return g.AddEndpoint(name, micro.HandlerFunc(func(req micro.Request) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := fn(ctx, req.Data())
			if err != nil {
				respondError(req, err)
				return
			}
			_ = req.RespondJSON(out)
		}))
	}
	errs := []error{
		add("register", func(ctx context.Context, b []byte) (any, error) {
			var r registerRequest
			if err := decode(b, &r); err != nil {
				return nil, err
			}
			cfg := registerConfig{replace: r.Replace, probe: nc}
			if r.Alive != "" {
				if under := RemoteSubject(reg.Cluster()) + aliveToken; !strings.HasPrefix(r.Alive, under) {
					return nil, &ValidationError{Field: "alive", Value: truncate(r.Alive), Reason: "must be a subject under " + under}
				}
				cfg.liveness = livenessNATS + r.Alive
			} else {
				// An older client with no liveness subject: only its
				// heartbeat proves it alive.
				cfg.liveness = "none"
			}
			in, err := reg.register(ctx, r.Instance, cfg)
			if err != nil {
				return nil, err
			}
			return registerReply{Incarnation: in.Incarnation}, nil
		}),
		add("heartbeat", func(ctx context.Context, b []byte) (any, error) {
			var r heartbeatRequest
			if err := decode(b, &r); err != nil {
				return nil, err
			}
			inc := r.Incarnation
			if inc == 0 {
				inc = r.Heartbeat.Incarnation
			}
			return struct{}{}, reg.heartbeat(ctx, r.ID, inc, r.Heartbeat)
		}),
		add("deregister", func(ctx context.Context, b []byte) (any, error) {
			var r idRequest
			if err := decode(b, &r); err != nil {
				return nil, err
			}
			return struct{}{}, reg.deregister(ctx, r.ID, r.Incarnation)
		}),
		add("snapshot", func(ctx context.Context, _ []byte) (any, error) {
			return reg.Snapshot(ctx)
		}),
		add("changes", func(ctx context.Context, b []byte) (any, error) {
			var r changesRequest
			if err := decode(b, &r); err != nil {
				return nil, err
			}
			return reg.Changes(ctx, r.Since)
		}),
	}
	if err := errors.Join(errs...); err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("services: serve: %w", err)
	}
	// Return only once the NATS server knows the endpoints, so a node that
	// registers right after Serve returns finds a responder.
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("services: serve: %w", err)
	}
	return svc, nil
}

func decode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return &ValidationError{Field: "request", Value: truncate(string(b)), Reason: "not valid JSON: " + err.Error()}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func respondError(req micro.Request, err error) {
	body := remoteError{Message: err.Error()}
	code := codeInternal
	var (
		ve *ValidationError
		de *DuplicateError
		fe *FencedError
		be *BelowFinalizedError
		nf *notFound
	)
	switch {
	case errors.As(err, &ve):
		code, body.Field, body.Value, body.Reason = codeInvalid, ve.Field, ve.Value, ve.Reason
	case errors.As(err, &de):
		code, body.ID, body.Duplicate = codeDuplicate, de.ID, de
	case errors.As(err, &fe):
		code, body.ID, body.Fenced = codeFenced, fe.ID, fe
	case errors.As(err, &be):
		code, body.ID, body.Release, body.Finalized, body.Reason = codeBelowFinalized, be.ID, be.Release, be.Finalized, be.Reason
	case errors.As(err, &nf):
		code, body.ID = codeNotFound, nf.id
	}
	b, _ := json.Marshal(body)
	_ = req.Error(code, firstLineOf(err.Error()), b)
}

func firstLineOf(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '\r' {
			return s[:i]
		}
	}
	return s
}

// RemoteError is an error reported by the remote registry that maps to no
// typed error (an internal failure on the serving node).
type RemoteError struct {
	Op      string
	Code    string
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("remote registry %s failed (code %s): %s", e.Op, e.Code, e.Message)
}

// ErrDisconnected means a Remote's NATS connection was not connected: the
// request was not sent. Retry once nats.go has reconnected.
var ErrDisconnected = errors.New("NATS disconnected")

// Remote reaches the registry over NATS. It implements Reporter and Source.
type Remote struct {
	nc      *nats.Conn
	cluster string
	timeout time.Duration

	mu   sync.Mutex
	held map[string]remoteHold
}

// remoteHold is an incarnation this Remote registered: its number and
// the subscription that answers for it while this process lives.
type remoteHold struct {
	inc int64
	sub *nats.Subscription
}

var (
	_ Reporter = (*Remote)(nil)
	_ Source   = (*Remote)(nil)
)

// NewRemote returns a client of cluster's registry, served by Serve
// somewhere on nc. The cluster is the identity `tandem services cluster`
// prints for the cluster's database; a node without database credentials
// has to be given it (its configuration), since several clusters may
// share one NATS. A malformed cluster fails every call with ErrInvalid.
func NewRemote(nc *nats.Conn, cluster string) *Remote {
	return &Remote{nc: nc, cluster: cluster, timeout: 10 * time.Second, held: map[string]remoteHold{}}
}

// Cluster is the identity of the cluster whose registry r reaches.
func (r *Remote) Cluster() string { return r.cluster }

func (r *Remote) call(ctx context.Context, op string, in, out any) error {
	if err := CheckCluster(r.cluster); err != nil {
		return fmt.Errorf("services: remote %s: %w", op, err)
	}
	if st := r.nc.Status(); st != nats.CONNECTED {
		// Not sent now rather than kept in nats.go's reconnect buffer and
		// run once NATS is back, after the caller gave up.
		return fmt.Errorf("services: remote %s: %w (connection %s): not sent; nats.go reconnects by itself, retry once it has", op, ErrDisconnected, st)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	subj := RemoteSubject(r.cluster) + "." + op
	msg, err := r.nc.RequestWithContext(ctx, subj, b)
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("services: remote %s: %w: no registry of cluster %s serves %s: run services.Serve on a node with the cluster's database, and check the cluster identity (`tandem services cluster`)", op, err, r.cluster, subj)
	}
	if err != nil {
		return fmt.Errorf("services: remote %s: %w", op, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return fmt.Errorf("services: remote %s: %w", op, remoteErr(op, code, msg))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		return fmt.Errorf("services: remote %s: bad reply: %w", op, err)
	}
	return nil
}

func remoteErr(op, code string, msg *nats.Msg) error {
	var body remoteError
	_ = json.Unmarshal(msg.Data, &body)
	if body.Message == "" {
		body.Message = msg.Header.Get(micro.ErrorHeader)
	}
	switch code {
	case codeInvalid:
		return &ValidationError{Field: body.Field, Value: body.Value, Reason: body.Reason}
	case codeDuplicate:
		if body.Duplicate != nil {
			return body.Duplicate
		}
		return &DuplicateError{ID: body.ID, Holder: Claim{Host: body.Host, LastHeartbeat: body.Heartbeat}}
	case codeFenced:
		if body.Fenced != nil {
			return body.Fenced
		}
		return &FencedError{ID: body.ID, Reason: FencedDeleted}
	case codeBelowFinalized:
		return &BelowFinalizedError{ID: body.ID, Release: body.Release, Finalized: body.Finalized, Reason: body.Reason}
	case codeNotFound:
		return &notFound{id: body.ID}
	}
	return &RemoteError{Op: op, Code: code, Message: body.Message}
}

// Register implements Reporter. Before registering, the Remote subscribes
// to a subject of its own and answers on it while its connection lives:
// that is how the registry tells a dead predecessor (nothing answers) from
// a live one when the same id registers again.
func (r *Remote) Register(ctx context.Context, in Instance, opts ...Option) error {
	var cfg registerConfig
	if err := applyOptions("Register", &cfg, opts, func(o Option) func(*registerConfig) { return o.register }); err != nil {
		return err
	}
	// Validate here too, so a bad input fails before any network round trip.
	check := in
	check.APIs = append([]API(nil), in.APIs...)
	if err := check.normalize(); err != nil {
		return fmt.Errorf("services: register: %w", err)
	}
	if in.PID == 0 {
		in.PID = os.Getpid()
	}
	alive := RemoteSubject(r.cluster) + aliveToken + strings.TrimPrefix(nats.NewInbox(), nats.InboxPrefix)
	sub, err := r.nc.Subscribe(alive, func(m *nats.Msg) { _ = m.Respond([]byte(`{}`)) })
	if err != nil {
		return fmt.Errorf("services: register %s: subscribe %s: %w", in.ID, alive, err)
	}
	var reply registerReply
	if err := r.call(ctx, "register", registerRequest{Instance: in, Replace: cfg.replace, Alive: alive}, &reply); err != nil {
		_ = sub.Unsubscribe()
		return err
	}
	r.mu.Lock()
	old, had := r.held[in.ID]
	r.held[in.ID] = remoteHold{inc: reply.Incarnation, sub: sub}
	r.mu.Unlock()
	if had && old.sub != nil {
		_ = old.sub.Unsubscribe()
	}
	return nil
}

// Incarnation returns the incarnation this Remote registered for id.
func (r *Remote) Incarnation(id string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.held[id]
	return h.inc, ok
}

// forget stops answering for incarnation inc of id; the incarnation stays
// known, so later calls for id from this process stay guarded.
func (r *Remote) forget(id string, inc int64) {
	r.mu.Lock()
	h, ok := r.held[id]
	mine := ok && h.inc == inc && h.sub != nil
	if mine {
		r.held[id] = remoteHold{inc: inc}
	}
	r.mu.Unlock()
	if mine {
		_ = h.sub.Unsubscribe()
	}
}

// Heartbeat implements Reporter.
func (r *Remote) Heartbeat(ctx context.Context, id string, hb Heartbeat) error {
	inc := hb.Incarnation
	if inc == 0 {
		inc, _ = r.Incarnation(id)
	}
	err := r.call(ctx, "heartbeat", heartbeatRequest{ID: id, Incarnation: inc, Heartbeat: hb}, nil)
	if errors.Is(err, ErrFenced) {
		r.forget(id, inc)
	}
	return err
}

// Deregister implements Reporter; like Registry.Deregister it leaves a
// successor of this process's incarnation alone.
func (r *Remote) Deregister(ctx context.Context, id string) error {
	inc, _ := r.Incarnation(id)
	err := r.call(ctx, "deregister", idRequest{ID: id, Incarnation: inc}, nil)
	if err == nil || errors.Is(err, ErrFenced) {
		r.forget(id, inc)
	}
	return err
}

// Snapshot implements Source.
func (r *Remote) Snapshot(ctx context.Context) (Snapshot, error) {
	var s Snapshot
	err := r.call(ctx, "snapshot", struct{}{}, &s)
	return s, err
}

// Changes implements ChangeSource. A registry served by an older release
// has no changes endpoint: the error makes a Cache take a snapshot instead.
func (r *Remote) Changes(ctx context.Context, since int64) (Delta, error) {
	var d Delta
	err := r.call(ctx, "changes", changesRequest{Since: since}, &d)
	return d, err
}
