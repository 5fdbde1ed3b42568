package rpcver_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
)

// frozenStore refuses writes the way an application under a write freeze
// does (its tracker's BeginWrite), while reads go on.
type frozenStore struct{ inventory.Store }

var since = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func (frozenStore) Put(context.Context, *pb.Item, bool) error {
	err := dualwrite.FreezeState{Seq: 3, Moves: []string{"items_price_cents"}, Reason: "restore of the catalog", Since: since}.Err("items_price_cents")
	return fmt.Errorf("inventory: put: %w", err)
}

// A handler's frozen refusal reaches the caller as CodeFrozen (423) with
// the freeze's reason, and the caller's error matches dualwrite.ErrFrozen;
// a read on the same server is served.
func TestFrozenWriteStatus(t *testing.T) {
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	mem := inventory.NewMemStore()
	if err := mem.Put(context.Background(), &pb.Item{Id: "a", Name: "apple"}, true); err != nil {
		t.Fatal(err)
	}
	startServer(t, nc, inventory.API, frozenStore{mem})
	client := newClient(t, nc, inventory.API, nil)
	ctx := context.Background()
	_, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "b"}})
	var re *rpcver.RemoteError
	switch {
	case !errors.As(err, &re) || re.Code != rpcver.CodeFrozen || rpcver.CodeFrozen != "423":
		t.Fatalf("err = %v, want a RemoteError %s", err, rpcver.CodeFrozen)
	case !errors.Is(err, dualwrite.ErrFrozen) || !errors.Is(err, rpcver.ErrFrozen) || !errors.Is(err, rpcver.ErrRemote):
		t.Fatalf("err = %v does not match ErrFrozen and ErrRemote", err)
	case !strings.Contains(re.Description, "restore of the catalog") || !strings.Contains(re.Description, "tandem thaw"):
		t.Fatalf("description %q lacks the reason and the thaw", re.Description)
	}
	got, err := inventory.GetItem.Call(ctx, client, &pb.GetItemRequest{Id: "a"})
	if err != nil || got.GetItem().GetName() != "apple" {
		t.Fatalf("a read while writes are frozen: %v %v", got, err)
	}
	// Any other handler error stays internal and does not match.
	if errors.Is(&rpcver.RemoteError{Code: rpcver.CodeInternal}, dualwrite.ErrFrozen) {
		t.Fatal("an internal error matches ErrFrozen")
	}
}
