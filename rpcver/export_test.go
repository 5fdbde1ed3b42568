package rpcver

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/protobuf/proto"
)

// Hooks for the external tests, which need the example API (and so cannot
// live in this package without an import cycle).

// BackportMessage backports m in place to version to, as a client (strict)
// or a server answering (lenient) would.
func BackportMessage(a *API, m proto.Message, to Version, strict bool) error {
	r := m.ProtoReflect()
	return a.backport(r, a.msgInfo(r), to, strict)
}

// NeedsBackport reports whether m has a set field newer than to.
func NeedsBackport(a *API, m proto.Message, to Version) bool {
	r := m.ProtoReflect()
	return a.needsBackport(r, a.msgInfo(r), to)
}

// UpgradeMessage upgrades m in place from version from.
func UpgradeMessage(a *API, m proto.Message, from Version) error {
	r := m.ProtoReflect()
	return a.upgrade(r, a.msgInfo(r), from)
}

// DecodeRequest runs a server's request decoding for method without
// NATS, returning the error code ("" when it decoded).
func DecodeRequest(a *API, method, subject string, data []byte, newReq func() proto.Message) (proto.Message, Version, string) {
	ep := &endpoint{api: a, info: a.methods[method], newReq: newReq}
	m, v, _, err := ep.decode(subject, data)
	if err != nil {
		return m, v, err.code
	}
	return m, v, ""
}

// RoundTrip runs the CPU work of one call in process, without NATS: the
// client's checks, backport and encode, the server's decode, upgrade,
// handler, backport and encode, and the client's decode and upgrade. s
// needs its handlers registered; it need not be started.
func RoundTrip(c *Client, s *Server, method string, req, resp proto.Message) error {
	cm := c.methods[method]
	to := c.Target()
	sa, data, buf, err := c.encode(cm, req.ProtoReflect(), to)
	if err != nil {
		return err
	}
	r := &loopRequest{subject: sa.budgeted[budgetBucket(c.timeout)], data: data}
	s.serve(loopDispatcher, &queue{ep: s.handlers[method]}, job{r: r, at: time.Now()})
	release(buf)
	return c.decode(cm, &r.reply, resp, to)
}

// loopDispatcher answers a loopRequest in memory.
var loopDispatcher = &dispatcher{send: func(r micro.Request, m *nats.Msg) {
	lr := r.(*loopRequest)
	lr.reply.Header = m.Header
	lr.reply.Data = append([]byte(nil), m.Data...)
}}

// loopRequest is a micro.Request answered in memory. Like a publish, it
// copies the response, since the server reuses its encode buffer.
type loopRequest struct {
	subject string
	data    []byte
	reply   nats.Msg
}

func (r *loopRequest) Respond(b []byte, _ ...micro.RespondOpt) error {
	r.reply.Data = append([]byte(nil), b...)
	return nil
}

func (r *loopRequest) RespondJSON(any, ...micro.RespondOpt) error { return nil }

func (r *loopRequest) Error(code, description string, data []byte, _ ...micro.RespondOpt) error {
	r.reply.Header = nats.Header{micro.ErrorCodeHeader: {code}, micro.ErrorHeader: {description}}
	r.reply.Data = append([]byte(nil), data...)
	return nil
}

func (r *loopRequest) Data() []byte           { return r.data }
func (r *loopRequest) Headers() micro.Headers { return nil }
func (r *loopRequest) Subject() string        { return r.subject }
func (r *loopRequest) Reply() string          { return "" }

// ParseTimeout reads a TimeoutHeader value as a server does.
func ParseTimeout(s string) (time.Duration, bool) { return parseTimeout(s) }

// ClientConn is the client's own connection, so a test can flush what it sent.
func ClientConn(c *Client) *nats.Conn { return c.link.nc }
