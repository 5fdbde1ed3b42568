package inventory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
)

var errConflict = errors.New("deadlock")

// flaky fails its first fails calls with err.
type flaky struct {
	inventory.Store
	fails, calls int
	err          error
}

func (f *flaky) Put(ctx context.Context, item *pb.Item, createOnly bool) error {
	f.calls++
	if f.calls <= f.fails {
		return f.err
	}
	return f.Store.Put(ctx, item, createOnly)
}

func TestRetryStore(t *testing.T) {
	for _, tt := range []struct {
		name      string
		fails     int
		err       error
		wantCalls int
		wantErr   error
	}{
		{"a conflict, then success", 2, errConflict, 3, nil},
		{"conflicts past the attempts", 9, errConflict, 4, errConflict},
		{"an error not worth retrying", 9, inventory.ErrExists, 1, inventory.ErrExists},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &flaky{Store: inventory.NewMemStore(), fails: tt.fails, err: tt.err}
			s := inventory.RetryStore{Store: f, Retryable: func(err error) bool { return errors.Is(err, errConflict) }}
			err := s.Put(context.Background(), &pb.Item{Id: "a"}, false)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) || f.calls != tt.wantCalls {
				t.Fatalf("err %v after %d calls, want %v after %d", err, f.calls, tt.wantErr, tt.wantCalls)
			}
		})
	}
}
