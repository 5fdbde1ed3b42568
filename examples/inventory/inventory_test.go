package inventory_test

import (
	"context"
	"errors"
	"flag"
	"testing"

	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/rpcver/fingerprint"
	"github.com/tandem-go/tandem/services"
)

var update = flag.Bool("update", false, "record the inventory API's current version in testdata/fingerprints.json")

// TestFingerprints fails when inventory.proto changes without a version
// bump or breaks the wire; go test -run TestFingerprints -update records a
// new version.
func TestFingerprints(t *testing.T) {
	fingerprint.Verify(t, "testdata/fingerprints.json", *update, inventory.API.Service())
}

// TestSteps walks an item through every version and back.
func TestSteps(t *testing.T) {
	v := services.MustParseVersion
	tests := []struct {
		name    string
		item    *pb.Item
		to      string
		want    *pb.Item // after the backport
		wantErr bool
	}{
		{"cents to whole units", &pb.Item{Id: "a", PriceCents: 1200}, "1.0", &pb.Item{Id: "a", Price: 12}, false},
		{"cents that are not whole", &pb.Item{Id: "a", PriceCents: 1250}, "1.0", nil, true},
		{"labels have no 1.0 form", &pb.Item{Id: "a", Labels: map[string]string{"k": "v"}}, "1.0", nil, true},
		{"tags to labels", &pb.Item{Id: "a", Tags: []string{"x"}}, "1.1", &pb.Item{Id: "a", Labels: map[string]string{"tag/x": ""}}, false},
		{"tags to 1.0 go through labels, which stop there", &pb.Item{Id: "a", Tags: []string{"x"}}, "1.0", nil, true},
		{"milli to whole quantity", &pb.Item{Id: "a", QuantityMilli: 3000}, "1.1", &pb.Item{Id: "a", Quantity: 3}, false},
		{"milli that is not whole", &pb.Item{Id: "a", QuantityMilli: 3500}, "1.1", nil, true},
		{"nothing newer set", &pb.Item{Id: "a", Name: "n", Price: 4}, "1.0", &pb.Item{Id: "a", Name: "n", Price: 4}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := &pb.PutItemRequest{Item: tc.item}
			err := inventory.API.BackportTo(req, v(tc.to))
			if tc.wantErr {
				if !errors.Is(err, rpcver.ErrCannotBackport) {
					t.Fatalf("err = %v, want ErrCannotBackport", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equal(req.Item, tc.want) {
				t.Fatalf("backported %v, want %v", req.Item, tc.want)
			}
		})
	}
}

func equal(a, b *pb.Item) bool {
	return a.String() == b.String()
}

// TestHandlers runs the handlers over a MemStore without NATS.
func TestHandlers(t *testing.T) {
	st := inventory.NewMemStore()
	ctx := context.Background()
	if err := st.Put(ctx, &pb.Item{Id: "a", Name: "bolt"}, true); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, &pb.Item{Id: "a"}, true); !errors.Is(err, inventory.ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
	it, err := st.Rename(ctx, "a", "nut")
	if err != nil || it.Name != "nut" {
		t.Fatalf("rename: %v %v", it, err)
	}
	if _, err := st.Get(ctx, "b"); !errors.Is(err, inventory.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}
