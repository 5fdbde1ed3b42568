package rpcver_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
)

// applyLog is a store that commits a put only while its handler's context
// is live, as a handler that passes its context to the database does, and
// remembers when each value was committed.
type applyLog struct {
	inventory.Store
	mu      sync.Mutex
	applied map[string]time.Time // "<item>/<price>" -> commit time
}

func (a *applyLog) Put(ctx context.Context, it *pb.Item, createOnly bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	a.applied[it.Id+"/"+strconv.FormatInt(it.Price, 10)] = time.Now()
	return a.Store.Put(ctx, it, createOnly)
}

func (a *applyLog) at(key string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.applied[key]
	return t, ok
}

// failedCall is a call its caller saw fail, and when it returned.
type failedCall struct {
	key      string
	returned time.Time
	err      error
}

// outageRun is what one NATS outage under write load did.
type outageRun struct {
	calls, ok                  int
	notSent, inFlight, noSrv   int
	other                      []error
	ghosts                     []string
	resumed                    time.Duration // from the restart until every caller succeeded again
	noServerAfterRestartMisled int           // NoServerErrors that did not say NATS had just reconnected
}

// outageConfig reads TANDEM_NATS_OUTAGE ("<runs>x<outage>", e.g. 20x10s);
// by default a short outage, three times, so CI stays fast.
func outageConfig(t *testing.T) (runs int, down time.Duration) {
	runs, down = 3, time.Second
	if v := os.Getenv("TANDEM_NATS_OUTAGE"); v != "" {
		r, d, ok := strings.Cut(v, "x")
		n, err1 := strconv.Atoi(r)
		dd, err2 := time.ParseDuration(d)
		if !ok || err1 != nil || err2 != nil || n < 1 || dd <= 0 {
			t.Fatalf("TANDEM_NATS_OUTAGE=%q: want <runs>x<duration>, e.g. 20x10s", v)
		}
		runs, down = n, dd
	}
	return runs, down
}

// TestNoGhostWritesAcrossNATSOutage: four callers write through servers
// and clients on plain nats.Connect connections (whose reconnect buffer is
// on, as nats.go defaults) while NATS stops for a while and comes back on
// the same port. Every call its caller saw fail was not applied after the
// caller got the error (not at all when it was not sent), calls fail fast
// during the outage saying NATS is disconnected, and traffic resumes by
// itself.
func TestNoGhostWritesAcrossNATSOutage(t *testing.T) {
	runs, down := outageConfig(t)
	ns := natstest.New(t)
	var total outageRun
	for run := range runs {
		r := outageOnce(t, ns, run, down)
		t.Logf("run %d: %d calls, %d ok; failed: %d not sent (disconnected), %d in flight at the disconnect, %d no server yet, %d other; ghost writes %d; resumed %s after the restart",
			run+1, r.calls, r.ok, r.notSent, r.inFlight, r.noSrv, len(r.other), len(r.ghosts), r.resumed.Round(time.Millisecond))
		total.calls += r.calls
		total.ok += r.ok
		total.notSent += r.notSent
		total.inFlight += r.inFlight
		total.noSrv += r.noSrv
		total.other = append(total.other, r.other...)
		total.ghosts = append(total.ghosts, r.ghosts...)
		total.resumed = max(total.resumed, r.resumed)
		total.noServerAfterRestartMisled += r.noServerAfterRestartMisled
	}
	t.Logf("%d runs of a %s outage: %d calls, %d failed (%d not sent, %d in flight, %d no server yet, %d other), ghost writes %d, slowest resume %s",
		runs, down, total.calls, total.calls-total.ok, total.notSent, total.inFlight, total.noSrv, len(total.other), len(total.ghosts), total.resumed.Round(time.Millisecond))
	if len(total.ghosts) > 0 {
		t.Errorf("%d ghost writes (failed calls applied after their callers saw the failure), first: %s", len(total.ghosts), total.ghosts[0])
	}
	if total.notSent == 0 {
		t.Errorf("no call failed with ErrDisconnected during the outages; want calls to fail fast")
	}
	if total.noServerAfterRestartMisled > 0 {
		t.Errorf("%d NoServerErrors right after a restart did not say NATS had just reconnected", total.noServerAfterRestartMisled)
	}
	for i, err := range total.other {
		if i == 3 {
			break
		}
		t.Errorf("unexpected failure: %v", err)
	}
}

func outageOnce(t *testing.T, ns *natstest.Server, run int, down time.Duration) outageRun {
	const callers = 4
	const callTimeout = 500 * time.Millisecond
	ctx := context.Background()
	// Plain connections, as an application would open them: reconnects
	// on, and nats.go's default reconnect buffer.
	connect := func() *nats.Conn {
		nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return nc
	}
	srvNC, cliNC := connect(), connect()
	defer srvNC.Close()
	defer cliNC.Close()
	store := &applyLog{Store: inventory.NewMemStore(), applied: map[string]time.Time{}}
	srv, err := rpcver.NewServer(srvNC, inventory.API)
	if err != nil {
		t.Fatal(err)
	}
	if err := inventory.Handle(srv, store); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Shutdown(ctx) }()
	client, err := rpcver.NewClient(cliNC, inventory.API, nil, rpcver.WithTimeout(callTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	var (
		mu        sync.Mutex
		res       outageRun
		failed    []failedCall
		restarted time.Time // zero until NATS is back
		lastOK    = make([]time.Time, callers)
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for n := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := int64(1); ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("run%d-caller%d", run, n)
				_, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: id, Price: seq}})
				now := time.Now()
				mu.Lock()
				res.calls++
				if err == nil {
					res.ok++
					lastOK[n] = now
					mu.Unlock()
					continue
				}
				key := id + "/" + strconv.FormatInt(seq, 10)
				failed = append(failed, failedCall{key: key, returned: now, err: err})
				var de *rpcver.DisconnectedError
				var nse *rpcver.NoServerError
				switch {
				case errors.As(err, &de) && !de.InFlight:
					res.notSent++
				case errors.As(err, &de):
					res.inFlight++
				case errors.As(err, &nse):
					res.noSrv++
					if !restarted.IsZero() && now.Sub(restarted) < 2*time.Second && nse.Reconnected == 0 {
						res.noServerAfterRestartMisled++
					}
				default:
					res.other = append(res.other, err)
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond) // a caller's pause before its retry
			}
		}()
	}
	// Load first, then the outage, then wait until every caller succeeds again.
	time.Sleep(300 * time.Millisecond)
	if err := ns.Restart(down); err != nil {
		close(stop)
		wg.Wait()
		t.Fatal(err)
	}
	mu.Lock()
	restarted = time.Now()
	mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		all := true
		for _, at := range lastOK {
			all = all && at.After(restarted)
		}
		if all {
			last := restarted
			for _, at := range lastOK {
				if at.After(last) {
					last = at
				}
			}
			res.resumed = last.Sub(restarted)
		}
		mu.Unlock()
		if all {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("run %d: traffic did not resume within 30s of the NATS restart", run+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	// A request that reached the server before the outage could still be
	// running: give stragglers every chance to commit before counting.
	time.Sleep(2 * callTimeout)
	for _, f := range failed {
		at, ok := store.at(f.key)
		if !ok {
			continue
		}
		var de *rpcver.DisconnectedError
		if errors.As(f.err, &de) && !de.InFlight {
			res.ghosts = append(res.ghosts, fmt.Sprintf("%s: applied %s after its caller got %q", f.key, at.Sub(f.returned), f.err))
			continue
		}
		if at.After(f.returned) {
			res.ghosts = append(res.ghosts, fmt.Sprintf("%s: applied %s after its caller got %q", f.key, at.Sub(f.returned), f.err))
		}
	}
	return res
}
