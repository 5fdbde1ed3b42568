package rpcver_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/services"
)

// TestRollingUpgrade is the rolling upgrade the package exists for, with the
// real registry: a 1.2 client among 1.1 and 1.2 servers sends at 1.1 and
// backports; what cannot be backported is refused before sending; once the
// last 1.1 server is deleted from the registry the client sends 1.2 after
// one notification, without a restart.
func TestRollingUpgrade(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		ns := natstest.New(t)
		nc := natstest.Connect(t, ns)
		reg, cache := newRegistry(t, db, nc)
		pre := rpcver.DefaultPrefix + "." + reg.Cluster() // the cluster's subjects
		w := spy(t, ns, pre)

		shared := inventory.NewMemStore() // the cluster's one database
		old := &recordingStore{Store: shared}
		cur := &recordingStore{Store: shared}
		a := startServer(t, nc, inventoryAt(t, v1_1), old,
			rpcver.WithRegistry(reg, services.Instance{ID: "inv-a", Service: "inventory", Host: "a", Release: 41}, time.Hour))
		startServer(t, nc, inventory.API, cur,
			rpcver.WithRegistry(reg, services.Instance{ID: "inv-b", Service: "inventory", Host: "b", Release: 42}, time.Hour))
		// A 1.1 node that crashed: it still holds the cap until deleted.
		if err := reg.Register(ctx, services.Instance{ID: "inv-c", Service: "inventory", Host: "c", Release: 41,
			APIs: []services.API{{Name: "inventory", Current: v1_1, Oldest: v1_0}}, State: services.StateUp}); err != nil {
			t.Fatal(err)
		}
		if err := cache.Refresh(ctx); err != nil {
			t.Fatal(err)
		}

		client := newClient(t, nc, inventory.API, cache)
		if got := client.Target(); got != v1_1 {
			t.Fatalf("target = %s, want 1.1 (the cap)", got)
		}

		// Sent at 1.1, tags backported into labels; the caller's message is untouched.
		req := &pb.PutItemRequest{Item: &pb.Item{Id: "i1", Name: "bolt", PriceCents: 250, Tags: []string{"steel"}}}
		resp, err := inventory.PutItem.Call(ctx, client, req)
		if err != nil {
			t.Fatal(err)
		}
		m := w.next(t)
		// The version rides in the subject, and so does the time the
		// caller waits (the client's 5s timeout, rounded down to 4096ms);
		// no header.
		if m.Subject != pre+".inventory.PutItem.v1.1.t4096" || len(m.Header) != 0 {
			t.Fatalf("sent on %s with headers %v, want %s.inventory.PutItem.v1.1.t4096 and none", m.Subject, m.Header, pre)
		}
		sent := decode[*pb.PutItemRequest](t, m.Data)
		if len(sent.Item.Tags) != 0 || len(sent.Item.Labels) != 1 || sent.Item.Labels["tag/steel"] != "" {
			t.Fatalf("sent item %v, want tags moved to label tag/steel", sent.Item)
		}
		if len(req.Item.Tags) != 1 || req.Item.Labels != nil {
			t.Fatalf("the caller's request changed: %v", req)
		}
		// The response came back at 1.1 and was upgraded: tags again.
		if got := resp.Item.GetTags(); len(got) != 1 || got[0] != "steel" || len(resp.Item.Labels) != 0 {
			t.Fatalf("response item %v, want tags [steel] and no labels", resp.Item)
		}

		// Either server may take a request: the 1.1 one must see only what
		// 1.1 knows, the 1.2 one the request upgraded back to 1.2.
		for i := 0; old.lastPut() == nil || cur.lastPut() == nil; i++ {
			if i == 64 {
				t.Fatal("64 requests and one of the servers got none")
			}
			if _, err := inventory.PutItem.Call(ctx, client, req); err != nil {
				t.Fatal(err)
			}
			w.next(t)
		}
		if it := old.lastPut(); len(it.Tags) != 0 || len(it.Labels) != 1 || it.Labels["tag/steel"] != "" || it.PriceCents != 250 {
			t.Fatalf("the 1.1 server stored %v", it)
		}
		if it := cur.lastPut(); len(it.Tags) != 1 || it.Tags[0] != "steel" || len(it.Labels) != 0 || it.PriceCents != 250 {
			t.Fatalf("the 1.2 server stored %v", it)
		}

		// A set field with no backport step: refused, nothing sent.
		_, err = inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "i2"}, CreateOnly: true})
		var cb *rpcver.CannotBackportError
		if !errors.Is(err, rpcver.ErrCannotBackport) || !errors.As(err, &cb) || cb.Field != "inventory.v1.PutItemRequest.create_only" || cb.Target != v1_1 {
			t.Fatalf("err = %v, want CannotBackportError on create_only to 1.1", err)
		}
		// A step that refuses this value (1.1 -> 1.0 is not in play here,
		// but a 1.2-only method is): nothing sent either.
		_, err = inventory.RenameItem.Call(ctx, client, &pb.RenameItemRequest{Id: "i1", Name: "nut"})
		var tooNew *rpcver.MethodTooNewError
		if !errors.Is(err, rpcver.ErrMethodTooNew) || !errors.As(err, &tooNew) || tooNew.Since != v1_2 || tooNew.Target != v1_1 {
			t.Fatalf("err = %v, want MethodTooNewError since 1.2 at 1.1", err)
		}
		w.none(t, rpcver.ClientConn(client))

		// The 1.1 server leaves (its shutdown deregisters it); the crashed one still pins the cap.
		if err := a.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := cache.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if got := client.Target(); got != v1_1 {
			t.Fatalf("target = %s after a 1.1 server left while another 1.1 row remains, want 1.1", got)
		}
		// The operator deletes the crashed node: one notification, cap 1.2.
		changed := cache.Changed()
		if err := reg.Delete(ctx, "inv-c"); err != nil {
			t.Fatal(err)
		}
		waitChanged(t, changed)
		if got := client.Target(); got != v1_2 {
			t.Fatalf("target = %s after the last 1.1 row was deleted, want 1.2", got)
		}
		if _, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "i3", Tags: []string{"new"}}, CreateOnly: true}); err != nil {
			t.Fatal(err)
		}
		m = w.next(t)
		if m.Subject != pre+".inventory.PutItem.v1.2.t4096" {
			t.Fatalf("sent on %s, want v1.2", m.Subject)
		}
		if sent := decode[*pb.PutItemRequest](t, m.Data); !sent.CreateOnly || len(sent.Item.Tags) != 1 {
			t.Fatalf("sent %v, want create_only and tags as given", sent)
		}
		if _, err := inventory.RenameItem.Call(ctx, client, &pb.RenameItemRequest{Id: "i1", Name: "nut"}); err != nil {
			t.Fatalf("RenameItem at 1.2: %v", err)
		}

	})
}

func waitChanged(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no registry notification reached the cache within 10s")
	}
}

// TestTooNewRequest: a server handed a request above its range answers with
// the typed error in micro's error headers, and the client surfaces it
// after one refresh, without resending when the refresh left its target
// where it was.
func TestTooNewRequest(t *testing.T) {
	ctx := context.Background()
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	startServer(t, nc, inventory.API, inventory.NewMemStore())
	w := spy(t, ns, rpcver.DefaultPrefix)

	// Raw: the error rides in micro's headers.
	msg, err := nc.Request("tandem.inventory.GetItem.v1.3", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get(micro.ErrorCodeHeader) != rpcver.CodeUnsupportedVersion || msg.Header.Get(micro.ErrorHeader) == "" {
		t.Fatalf("headers %v, want code %s and a description", msg.Header, rpcver.CodeUnsupportedVersion)
	}
	w.next(t)

	// A 1.3 build whose cap source (wrongly) says 1.3.
	caps := capAt(v1_3)
	client := newClient(t, nc, inventoryAt(t, v1_3), caps)
	_, err = inventory.GetItem.Call(ctx, client, &pb.GetItemRequest{Id: "x"})
	var uv *rpcver.UnsupportedVersionError
	if !errors.Is(err, rpcver.ErrUnsupportedVersion) || !errors.As(err, &uv) {
		t.Fatalf("err = %v, want UnsupportedVersionError", err)
	}
	if uv.Requested != v1_3 || uv.Oldest != v1_0 || uv.Current != v1_2 || uv.Method != "GetItem" {
		t.Fatalf("error %+v, want 1.3 refused by a 1.0-1.2 server", uv)
	}
	if n := caps.refreshes.Load(); n != 1 {
		t.Fatalf("refreshed %d times, want 1", n)
	}
	w.next(t) // the request; the cap did not move, so no retry
	w.none(t, rpcver.ClientConn(client))

	// When the refresh lowers the cap, the retry succeeds.
	caps = capAt(v1_3)
	caps.onRefresh = map[string]rpcver.Version{"inventory": v1_2}
	client = newClient(t, nc, inventoryAt(t, v1_3), caps)
	_, err = inventory.GetItem.Call(ctx, client, &pb.GetItemRequest{Id: "x"})
	var re *rpcver.RemoteError
	if !errors.As(err, &re) || re.Code != rpcver.CodeNotFound {
		t.Fatalf("err = %v, want the retry at 1.2 to reach the handler (404)", err)
	}
	if m1, m2 := w.next(t), w.next(t); m1.Subject != "tandem.inventory.GetItem.v1.3.t4096" || m2.Subject != "tandem.inventory.GetItem.v1.2.t4096" {
		t.Fatalf("sent on %s then %s, want 1.3 then the retry at 1.2", m1.Subject, m2.Subject)
	}
	w.none(t, rpcver.ClientConn(client))
}

// TestTooOldRequest: below the server's oldest is refused the same way.
func TestTooOldRequest(t *testing.T) {
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	api, err := inventory.NewAPI(rpcver.WithOldest(v1_1))
	if err != nil {
		t.Fatal(err)
	}
	startServer(t, nc, api, inventory.NewMemStore())
	client := newClient(t, nc, inventoryAt(t, v1_0), nil)
	_, err = inventory.GetItem.Call(context.Background(), client, &pb.GetItemRequest{Id: "x"})
	var uv *rpcver.UnsupportedVersionError
	if !errors.As(err, &uv) || uv.Requested != v1_0 || uv.Oldest != v1_1 {
		t.Fatalf("err = %v, want 1.0 refused by a 1.1-1.2 server", err)
	}
}

// TestServiceInfo: $SRV.INFO shows the API's versions and each endpoint's.
func TestServiceInfo(t *testing.T) {
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	startServer(t, nc, inventory.API, inventory.NewMemStore())
	msg, err := nc.Request("$SRV.INFO.inventory", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	if info.Version != "1.2.0" || info.Metadata["tandem.current"] != "1.2" || info.Metadata["tandem.oldest"] != "1.0" || info.Metadata["tandem.api"] != "inventory" {
		t.Fatalf("info %+v", info)
	}
	want := map[string][2]string{
		"GetItem":    {"1.0", "tandem.inventory.GetItem.v1.>"},
		"PutItem":    {"1.0", "tandem.inventory.PutItem.v1.>"},
		"RenameItem": {"1.2", "tandem.inventory.RenameItem.v1.>"},
	}
	if len(info.Endpoints) != len(want) {
		t.Fatalf("endpoints %+v", info.Endpoints)
	}
	for _, ep := range info.Endpoints {
		w, ok := want[ep.Name]
		if !ok || ep.Metadata["tandem.since"] != w[0] || ep.Subject != w[1] {
			t.Errorf("endpoint %s: since %q subject %q, want %v", ep.Name, ep.Metadata["tandem.since"], ep.Subject, w)
		}
	}
	// An older build serves only the methods it has.
	ns2 := natstest.New(t)
	nc2 := natstest.Connect(t, ns2)
	startServer(t, nc2, inventoryAt(t, v1_1), inventory.NewMemStore())
	msg, err = nc2.Request("$SRV.INFO.inventory", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	info = micro.Info{}
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Endpoints) != 2 || info.Metadata["tandem.current"] != "1.1" {
		t.Fatalf("a 1.1 server: %+v, want 2 endpoints (no RenameItem) at 1.1", info)
	}
}
