package rpcver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// A request's budget (its caller's remaining time) counts from when it
// reached the server, not from when its handler starts. nats.go delivers
// an endpoint's messages one at a time, so a request that waited behind a
// slow handler in nats.go's queue would otherwise start with its whole
// budget and could commit after its caller gave up. So the endpoint's
// micro handler only stamps each message with its arrival time and queues
// it, without blocking; the endpoint's workers (WithConcurrency, one by
// default, as nats.go would run them) take the queue in order, and a
// request whose caller's time is gone when its turn comes is answered
// CodeDeadlineExceeded without running its handler. A full queue
// (WithQueueLimit) answers CodeUnavailable at once, rather than stamping
// later requests late.

// DefaultQueueLimit is how many requests an endpoint holds waiting for a
// worker before it answers CodeUnavailable.
const DefaultQueueLimit = 4096

// job is one request and when it reached the server.
type job struct {
	r  micro.Request
	at time.Time // with its monotonic reading
}

// queue is one endpoint's waiting requests and its workers' counters.
type queue struct {
	ep      *endpoint
	jobs    chan job
	expired atomic.Int64 // dropped: the caller's time ran out in the queue
	busy    atomic.Int64 // refused: the queue was full
	failed  atomic.Int64 // answered with an error by a worker
}

// dispatcher runs the endpoints' workers of one listening connection.
type dispatcher struct {
	s      *Server
	own    *nats.Conn    // the answers' connection once the requests' one drains
	quit   chan struct{} // closed once no message can arrive any more
	once   sync.Once
	wg     sync.WaitGroup
	queues map[string]*queue // by method name; read-only once listening
	// send publishes an answer to r (m without its subject).
	send func(r micro.Request, m *nats.Msg)
}

// newDispatcher answers on reqs, the connection the requests came in on,
// and on own once reqs is draining or closed (Shutdown drains it while
// workers still answer what they took).
func newDispatcher(s *Server, reqs, own *nats.Conn) *dispatcher {
	return &dispatcher{s: s, own: own, quit: make(chan struct{}), queues: map[string]*queue{},
		send: func(r micro.Request, m *nats.Msg) {
			if m.Subject = r.Reply(); m.Subject == "" {
				return
			}
			if err := reqs.PublishMsg(m); errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) {
				_ = own.PublishMsg(m)
			}
		}}
}

// add makes ep's queue, starts its workers and returns its micro handler.
func (d *dispatcher) add(ep *endpoint) micro.Handler {
	q := &queue{ep: ep, jobs: make(chan job, d.s.queueLimit)}
	d.queues[ep.info.name] = q
	for range d.s.concurrency {
		d.wg.Add(1)
		go d.work(q)
	}
	return micro.HandlerFunc(func(r micro.Request) {
		select {
		case q.jobs <- job{r: r, at: time.Now()}:
		default:
			q.busy.Add(1)
			_ = r.Error(CodeUnavailable, fmt.Sprintf("%s.%s: %d requests already wait at this server; retry later, or add servers", d.s.api.name, ep.info.name, cap(q.jobs)), nil)
		}
	})
}

// work serves q's requests until quit, then serves what is left and
// returns.
func (d *dispatcher) work(q *queue) {
	defer d.wg.Done()
	for {
		select {
		case j := <-q.jobs:
			d.s.serve(d, q, j)
		case <-d.quit:
			for {
				select {
				case j := <-q.jobs:
					d.s.serve(d, q, j)
				default:
					return
				}
			}
		}
	}
}

// stop lets the workers finish the queues once no message can arrive any
// more (Shutdown drained the requests' connection), and returns when they
// have, or when ctx ends.
func (d *dispatcher) stop(ctx context.Context) error {
	d.release()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close flushes the answers sent (while ctx lasts) and closes their
// connection.
func (d *dispatcher) close(ctx context.Context) {
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_ = d.own.FlushWithContext(fctx)
	cancel()
	d.own.Close()
}

// release lets the workers return once their queues are empty.
func (d *dispatcher) release() { d.once.Do(func() { close(d.quit) }) }

// respond sends data as r's response. Workers answer through the
// connection, not through r: micro reads r's outcome for its statistics
// once the (queueing) handler returns, so r must not change after that.
func (d *dispatcher) respond(r micro.Request, data []byte) {
	d.send(r, &nats.Msg{Data: data})
}

// fail answers r with an error in micro's error headers.
func (d *dispatcher) fail(q *queue, r micro.Request, code, msg string, data []byte) {
	q.failed.Add(1)
	d.send(r, &nats.Msg{Data: data, Header: nats.Header{micro.ErrorHeader: []string{msg}, micro.ErrorCodeHeader: []string{code}}})
}

// QueueStats is an endpoint's entry in the data of $SRV.STATS. micro's own
// figures count requests as they are queued (its processing time is the
// queueing's) and errors answered at once; these count what the workers
// did.
type QueueStats struct {
	Waiting int   `json:"waiting"`          // requests in the queue now
	Expired int64 `json:"expired_in_queue"` // answered CodeDeadlineExceeded without running the handler
	Refused int64 `json:"refused_full"`     // answered CodeUnavailable: the queue was full
	Errors  int64 `json:"errors"`           // answered with an error by a worker
}

func (d *dispatcher) stats(e *micro.Endpoint) any {
	q := d.queues[e.Name]
	if q == nil {
		return nil
	}
	return QueueStats{Waiting: len(q.jobs), Expired: q.expired.Load(), Refused: q.busy.Load(), Errors: q.failed.Load()}
}
