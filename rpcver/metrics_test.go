package rpcver_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/internal/promreg"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/services"
)

// TestMetrics checks every rpcver metric's value after a known sequence
// of calls, with the cap read from the registry on each engine: calls at
// the cap with backports and upgrades on both sides, the two client-side
// refusals, a server refusing a version, and the cap rising once the old
// server is deleted.
func TestMetrics(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		ns := natstest.New(t)
		nc := natstest.Connect(t, ns)
		reg, cache := newRegistry(t, db, nc)
		pr := prometheus.NewPedanticRegistry()

		shared := inventory.NewMemStore() // the cluster's one database
		old := startServer(t, nc, inventoryAt(t, v1_1), shared, rpcver.WithMetrics(pr),
			rpcver.WithRegistry(reg, services.Instance{ID: "inv-a", Service: "inventory", Host: "a", Release: 41}, time.Hour))
		startServer(t, nc, inventory.API, shared, rpcver.WithMetrics(pr),
			rpcver.WithRegistry(reg, services.Instance{ID: "inv-b", Service: "inventory", Host: "b", Release: 42}, time.Hour))
		if err := cache.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		client := newClient(t, nc, inventory.API, cache, rpcver.WithMetrics(pr))
		value := func(name string, labels ...string) float64 {
			t.Helper()
			v, _ := promreg.Value(pr, name, labels...)
			return v
		}
		want := func(name string, w float64, labels ...string) {
			t.Helper()
			if got := value(name, labels...); got != w {
				t.Errorf("%s%v = %v, want %v", name, labels, got, w)
			}
		}
		// A server counts a request once its answer is out, so the caller
		// may see the answer first.
		wantServed := func(name string, w float64, labels ...string) {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for value(name, labels...) != w && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			want(name, w, labels...)
		}
		want("tandem_rpcver_cap_minor", 1, "api=inventory", "major=1")

		// Three calls at the cap, 1.1: each request backported by the
		// client, and its response upgraded; the 1.2 server upgrades the
		// requests it takes and backports their responses.
		req := &pb.PutItemRequest{Item: &pb.Item{Id: "i1", Tags: []string{"steel"}}}
		for range 3 {
			if _, err := inventory.PutItem.Call(ctx, client, req); err != nil {
				t.Fatal(err)
			}
		}
		want("tandem_rpcver_client_calls_total", 3, "api=inventory", "method=PutItem", "version=1.1", "outcome=ok")
		want("tandem_rpcver_client_call_seconds", 3, "api=inventory", "method=PutItem")
		want("tandem_rpcver_backports_total", 3, "api=inventory", "side=client")
		want("tandem_rpcver_upgrades_total", 3, "api=inventory", "side=client")
		wantServed("tandem_rpcver_server_requests_total", 3, "api=inventory", "method=PutItem", "version=1.1", "outcome=ok")
		wantServed("tandem_rpcver_server_request_seconds", 3, "api=inventory", "method=PutItem")
		// The 1.2 server's share of the three went through its steps; the
		// 1.1 server had nothing to convert.
		if up, bp := value("tandem_rpcver_upgrades_total", "side=server"), value("tandem_rpcver_backports_total", "side=server"); up != bp || up > 3 {
			t.Errorf("server upgrades %v and backports %v, want equal and at most 3", up, bp)
		}

		// Refused before sending: a set field with no step, a method newer than the cap.
		if _, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "i2"}, CreateOnly: true}); !errors.Is(err, rpcver.ErrCannotBackport) {
			t.Fatalf("err = %v, want ErrCannotBackport", err)
		}
		if _, err := inventory.RenameItem.Call(ctx, client, &pb.RenameItemRequest{Id: "i1", Name: "nut"}); !errors.Is(err, rpcver.ErrMethodTooNew) {
			t.Fatalf("err = %v, want ErrMethodTooNew", err)
		}
		want("tandem_rpcver_refusals_total", 1, "api=inventory", "side=client", "kind=cannot_backport")
		want("tandem_rpcver_refusals_total", 1, "api=inventory", "side=client", "kind=method_too_new")
		want("tandem_rpcver_client_calls_total", 1, "method=PutItem", "version=1.1", "outcome=refused")
		want("tandem_rpcver_client_calls_total", 1, "method=RenameItem", "version=1.1", "outcome=refused")

		// A 1.3 build whose cap source says 1.3: both servers refuse it.
		wrong := newClient(t, nc, inventoryAt(t, v1_3), capAt(v1_3), rpcver.WithMetrics(pr), rpcver.WithCluster(reg.Cluster()))
		if _, err := inventory.GetItem.Call(ctx, wrong, &pb.GetItemRequest{Id: "x"}); !errors.Is(err, rpcver.ErrUnsupportedVersion) {
			t.Fatalf("err = %v, want ErrUnsupportedVersion", err)
		}
		want("tandem_rpcver_refusals_total", 1, "side=client", "kind=unsupported_version")
		wantServed("tandem_rpcver_refusals_total", 1, "side=server", "kind=unsupported_version")
		want("tandem_rpcver_client_calls_total", 1, "method=GetItem", "version=1.3", "outcome=unsupported_version")
		wantServed("tandem_rpcver_server_requests_total", 1, "method=GetItem", "version=other", "outcome=505")
		// Two clients of one API at different targets: the lower is in force.
		want("tandem_rpcver_cap_minor", 1, "api=inventory", "major=1")
		wrong.Close()

		// The operator deletes the 1.1 server's row: the cap rises to 1.2
		// after one notification, and calls go out at 1.2 unconverted.
		changed := cache.Changed()
		if err := reg.Delete(ctx, "inv-a"); err != nil {
			t.Fatal(err)
		}
		waitChanged(t, changed)
		// Its process stops too (until then, it would refuse 1.2).
		if err := old.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		want("tandem_rpcver_cap_minor", 2, "api=inventory", "major=1")
		if _, err := inventory.GetItem.Call(ctx, client, &pb.GetItemRequest{Id: "i1"}); err != nil {
			t.Fatal(err)
		}
		want("tandem_rpcver_client_calls_total", 1, "method=GetItem", "version=1.2", "outcome=ok")
		want("tandem_rpcver_backports_total", 3, "api=inventory", "side=client")
		// A handler's error code is kept: the memory store answers 404.
		if _, err := inventory.GetItem.Call(ctx, client, &pb.GetItemRequest{Id: "absent"}); err == nil {
			t.Fatal("GetItem of an absent item succeeded")
		}
		want("tandem_rpcver_client_calls_total", 1, "method=GetItem", "version=1.2", "outcome=remote_error")
		wantServed("tandem_rpcver_server_requests_total", 1, "method=GetItem", "version=1.2", "outcome=404")
	})
}
