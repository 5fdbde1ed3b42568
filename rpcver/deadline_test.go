package rpcver_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/protobuf/proto"

	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
)

// commitStore is a store whose Put works until the handler's context ends
// or it is released, then commits only if the context is still live, as a
// handler that checks its context before committing would.
type commitStore struct {
	inventory.Store
	hold      chan struct{}      // closed to let a held Put finish
	seen      chan time.Duration // the handler's budget; -1 when its context has no deadline
	committed chan string
}

func newCommitStore() *commitStore {
	return &commitStore{Store: inventory.NewMemStore(), hold: make(chan struct{}), seen: make(chan time.Duration, 8), committed: make(chan string, 8)}
}

func (c *commitStore) Put(ctx context.Context, it *pb.Item, createOnly bool) error {
	if dl, ok := ctx.Deadline(); ok {
		c.seen <- time.Until(dl)
	} else {
		c.seen <- -1
	}
	if it.Name == "hold" {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.hold:
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.committed <- it.Id
	return c.Store.Put(ctx, it, createOnly)
}

// TestHandlerSeesCallerDeadline: a handler runs under the time its caller
// will wait. A call the caller gave up on stops in the handler instead of
// committing after the caller's retry, so writes stay in order.
func TestHandlerSeesCallerDeadline(t *testing.T) {
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	st := newCommitStore()
	startServer(t, nc, inventory.API, st)
	client := newClient(t, nc, inventory.API, nil)
	w := spy(t, ns, rpcver.DefaultPrefix)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "first", Name: "hold"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held call: %v, want DeadlineExceeded", err)
	}
	// Just under 300ms left, rounded down to a power of two.
	if m := w.next(t); m.Subject != "tandem.inventory.PutItem.v1.2.t256" || len(m.Header) != 0 {
		t.Fatalf("sent on %s with headers %v, want tandem.inventory.PutItem.v1.2.t256 and none", m.Subject, m.Header)
	}
	if budget := <-st.seen; budget < 0 || budget > 256*time.Millisecond {
		t.Fatalf("handler budget %v, want a deadline within the caller's 256ms token", budget)
	}
	// The caller retries the write; the abandoned one must not land after it.
	if _, err := inventory.PutItem.Call(context.Background(), client, &pb.PutItemRequest{Item: &pb.Item{Id: "second"}}); err != nil {
		t.Fatal(err)
	}
	w.next(t)
	if budget := <-st.seen; budget <= 3*time.Second || budget > 4096*time.Millisecond {
		t.Fatalf("a call with no deadline: handler budget %v, want the client's 5s timeout rounded down to 4096ms", budget)
	}
	close(st.hold)
	if id := <-st.committed; id != "second" {
		t.Fatalf("first commit is %q, want only the retry", id)
	}
	select {
	case id := <-st.committed:
		t.Fatalf("%q committed after its caller gave up", id)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestHandlerTimeout: a request without a caller deadline (sent with the
// plain nats API, as the nats tool would) runs under the server's default
// handler timeout; a malformed deadline is a bad request; a deadline that
// has already passed does not run the handler.
func TestHandlerTimeout(t *testing.T) {
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	st := newCommitStore()
	startServer(t, nc, inventory.API, st, rpcver.WithHandlerTimeout(150*time.Millisecond))
	var sendOn func(subject, name string, hdr nats.Header) *nats.Msg
	subject := rpcver.Subject(rpcver.DefaultPrefix, "inventory", "PutItem", v1_2)
	send := func(name string, hdr nats.Header) *nats.Msg {
		t.Helper()
		return sendOn(subject, name, hdr)
	}
	sendOn = func(subject, name string, hdr nats.Header) *nats.Msg {
		t.Helper()
		data, err := proto.Marshal(&pb.PutItemRequest{Item: &pb.Item{Id: "x", Name: name}})
		if err != nil {
			t.Fatal(err)
		}
		reply, err := nc.RequestMsg(&nats.Msg{Subject: subject, Data: data, Header: hdr}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return reply
	}
	code := func(m *nats.Msg) string { return m.Header.Get(micro.ErrorCodeHeader) }

	if r := send("hold", nil); code(r) != rpcver.CodeDeadlineExceeded {
		t.Fatalf("held request without a deadline: code %q (%s), want %s after the default timeout", code(r), r.Header.Get(micro.ErrorHeader), rpcver.CodeDeadlineExceeded)
	}
	if budget := <-st.seen; budget < 0 || budget > 150*time.Millisecond {
		t.Fatalf("handler budget %v, want the server's 150ms", budget)
	}
	if r := send("", nats.Header{rpcver.TimeoutHeader: {"2000"}}); code(r) != "" {
		t.Fatalf("request with a caller deadline: %s", r.Header.Get(micro.ErrorHeader))
	}
	if budget := <-st.seen; budget <= 150*time.Millisecond || budget > 2*time.Second {
		t.Fatalf("handler budget %v, want the caller's 2s, not the default", budget)
	}
	for _, bad := range []string{"", "-1", "1.5", "1234567890", "10s"} {
		if r := send("", nats.Header{rpcver.TimeoutHeader: {bad}}); code(r) != rpcver.CodeBadRequest {
			t.Fatalf("%s %q: code %q, want %s", rpcver.TimeoutHeader, bad, code(r), rpcver.CodeBadRequest)
		}
	}
	if r := send("", nats.Header{rpcver.TimeoutHeader: {"0"}}); code(r) != rpcver.CodeDeadlineExceeded {
		t.Fatalf("expired deadline: code %q, want %s", code(r), rpcver.CodeDeadlineExceeded)
	}
	// The subject's budget token wins over the header and the default.
	if r := sendOn(subject+".t1024", "", nats.Header{rpcver.TimeoutHeader: {"2000"}}); code(r) != "" {
		t.Fatalf("request with a budget token: %s", r.Header.Get(micro.ErrorHeader))
	}
	if budget := <-st.seen; budget <= 900*time.Millisecond || budget > 1024*time.Millisecond {
		t.Fatalf("handler budget %v, want the token's 1024ms", budget)
	}
	if r := sendOn(subject+".t0", "", nil); code(r) != rpcver.CodeDeadlineExceeded {
		t.Fatalf("expired budget token: code %q, want %s", code(r), rpcver.CodeDeadlineExceeded)
	}
	for _, bad := range []string{".t", ".t-1", ".t1234567890", ".tx", ".t1.t2", ".x.t5", ".3.t5"} {
		if r := sendOn(subject+bad, "", nil); code(r) != rpcver.CodeBadRequest {
			t.Fatalf("subject %s: code %q, want %s", subject+bad, code(r), rpcver.CodeBadRequest)
		}
	}
	select {
	case b := <-st.seen:
		t.Fatalf("a handler ran (budget %v) for a bad or expired deadline", b)
	default:
	}
	if _, err := rpcver.NewServer(nc, inventory.API, rpcver.WithHandlerTimeout(-time.Second)); !errors.Is(err, rpcver.ErrInvalid) {
		t.Fatalf("negative handler timeout: %v, want ErrInvalid", err)
	}
}

// TestRemoteDeadlineError: a handler that ran out of the caller's time is
// reported to the caller as context.DeadlineExceeded from the server.
func TestRemoteDeadlineError(t *testing.T) {
	err := error(&rpcver.RemoteError{API: "inventory", Method: "PutItem", Code: rpcver.CodeDeadlineExceeded})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, rpcver.ErrRemote) {
		t.Fatalf("%v: want DeadlineExceeded and ErrRemote", err)
	}
}
