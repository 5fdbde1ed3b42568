package rpcver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
)

// slowStore's Put of an item named "slow" holds its handler, ignoring the
// handler's context, until release is closed; every Put records when its
// handler started.
type slowStore struct {
	inventory.Store
	holding chan struct{} // gets one value when the slow Put starts
	release chan struct{}
	mu      sync.Mutex
	started map[string]time.Time
}

func newSlowStore() *slowStore {
	return &slowStore{Store: inventory.NewMemStore(), holding: make(chan struct{}, 1), release: make(chan struct{}), started: map[string]time.Time{}}
}

func (s *slowStore) Put(ctx context.Context, it *pb.Item, createOnly bool) error {
	s.mu.Lock()
	s.started[it.Id] = time.Now()
	s.mu.Unlock()
	if it.Name == "slow" {
		s.holding <- struct{}{}
		<-s.release
		return s.Store.Put(context.WithoutCancel(ctx), it, createOnly)
	}
	return s.Store.Put(ctx, it, createOnly)
}

func (s *slowStore) startedAt(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.started[id]
	return t, ok
}

// queueStats reads the server's per-endpoint figures from $SRV.STATS.
func queueStats(t *testing.T, srv *rpcver.Server, method string) rpcver.QueueStats {
	t.Helper()
	for _, e := range srv.Service().Stats().Endpoints {
		if e.Name == method {
			var qs rpcver.QueueStats
			if err := json.Unmarshal(e.Data, &qs); err != nil {
				t.Fatalf("stats of %s: %v (%s)", method, err, e.Data)
			}
			return qs
		}
	}
	t.Fatalf("no stats for %s", method)
	return rpcver.QueueStats{}
}

// TestQueuedRequestsDoNotOutliveCallers: requests that wait at the server
// behind a slow handler count their caller's time from when they arrived.
// Those whose callers gave up while they waited never run their handler,
// however long after the slow one finishes; one whose caller still waits
// runs.
func TestQueuedRequestsDoNotOutliveCallers(t *testing.T) {
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	st := newSlowStore()
	srv := startServer(t, nc, inventory.API, st)
	client := newClient(t, nc, inventory.API, nil)
	ctx := context.Background()

	slowDone := make(chan error, 1)
	go func() {
		_, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "slow", Name: "slow"}})
		slowDone <- err
	}()
	<-st.holding

	const queued = 8
	failedAt := make([]time.Time, queued)
	errs := make([]error, queued)
	var wg sync.WaitGroup
	for i := range queued {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
			defer cancel()
			_, errs[i] = inventory.PutItem.Call(cctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: fmt.Sprintf("queued-%d", i)}})
			failedAt[i] = time.Now()
		})
	}
	// The patient call queues behind them all.
	waitFor(t, func() bool { return queueStats(t, srv, "PutItem").Waiting == queued })
	patient := make(chan error, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := inventory.PutItem.Call(cctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "patient"}})
		patient <- err
	}()
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("queued-%d: %v, want its caller's deadline", i, err)
		}
	}
	// Hold the slow handler a while longer: the queued requests' budgets
	// are well gone when it finishes.
	time.Sleep(200 * time.Millisecond)
	close(st.release)
	if err := <-slowDone; err != nil {
		t.Fatalf("slow call: %v", err)
	}
	if err := <-patient; err != nil {
		t.Fatalf("a queued call whose caller still waits: %v", err)
	}
	// The patient call came last, so every queued request has had its turn.
	if qs := queueStats(t, srv, "PutItem"); qs.Waiting != 0 {
		t.Fatalf("stats %+v: requests still wait after the last one was answered", qs)
	}
	ghosts := 0
	for i := range queued {
		if at, ok := st.startedAt(fmt.Sprintf("queued-%d", i)); ok && at.After(failedAt[i]) {
			ghosts++
			t.Errorf("queued-%d: handler started %s after its caller gave up", i, at.Sub(failedAt[i]))
		}
	}
	if ghosts != 0 {
		t.Fatalf("%d of %d queued requests ran their handler after their caller gave up", ghosts, queued)
	}
	qs := queueStats(t, srv, "PutItem")
	if qs.Expired != queued || qs.Waiting != 0 {
		t.Fatalf("stats %+v, want %d expired in the queue and none waiting", qs, queued)
	}
	t.Logf("%d queued requests dropped unrun, 0 ran after their caller gave up; stats %+v", queued, qs)
}

// TestQueueLimit: a request that finds its endpoint's queue full is
// answered CodeUnavailable at once; the options are validated.
func TestQueueLimit(t *testing.T) {
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	st := newSlowStore()
	srv := startServer(t, nc, inventory.API, st, rpcver.WithQueueLimit(1))
	client := newClient(t, nc, inventory.API, nil)
	ctx := context.Background()

	slowDone := make(chan error, 1)
	go func() {
		_, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "slow", Name: "slow"}})
		slowDone <- err
	}()
	<-st.holding
	waiting := make(chan error, 1)
	go func() {
		_, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "waiting"}})
		waiting <- err
	}()
	waitFor(t, func() bool { return queueStats(t, srv, "PutItem").Waiting == 1 })
	_, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "refused"}})
	var re *rpcver.RemoteError
	if !errors.As(err, &re) || re.Code != rpcver.CodeUnavailable || !strings.Contains(re.Description, "1 requests already wait") {
		t.Fatalf("third request: %v, want CodeUnavailable naming the queue limit", err)
	}
	close(st.release)
	if err := errors.Join(<-slowDone, <-waiting); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.startedAt("refused"); ok {
		t.Fatal("the refused request ran")
	}
	if qs := queueStats(t, srv, "PutItem"); qs.Refused != 1 {
		t.Fatalf("stats %+v, want 1 refused", qs)
	}

	for _, o := range []rpcver.Option{rpcver.WithQueueLimit(0), rpcver.WithConcurrency(0), rpcver.WithConcurrency(-3)} {
		if _, err := rpcver.NewServer(nc, inventory.API, o); !errors.Is(err, rpcver.ErrInvalid) {
			t.Errorf("bad option: %v, want ErrInvalid", err)
		}
	}
}

// TestConcurrency: with WithConcurrency(2), a slow handler does not hold
// back the next request of its endpoint.
func TestConcurrency(t *testing.T) {
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	st := newSlowStore()
	startServer(t, nc, inventory.API, st, rpcver.WithConcurrency(2))
	client := newClient(t, nc, inventory.API, nil)
	ctx := context.Background()
	slowDone := make(chan error, 1)
	go func() {
		_, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "slow", Name: "slow"}})
		slowDone <- err
	}()
	<-st.holding
	if _, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "beside"}}); err != nil {
		t.Fatalf("a call beside a slow handler: %v", err)
	}
	close(st.release)
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	st.mu.Lock()
	for id := range st.started {
		ids = append(ids, id)
	}
	st.mu.Unlock()
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"beside", "slow"}) {
		t.Fatalf("handlers started: %v", ids)
	}
}
