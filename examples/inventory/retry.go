package inventory

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/tandem-go/tandem/dialect"

	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
)

// RetryStore retries a Store's operations that failed on a deadlock or a
// serialization failure, which every engine may return under concurrent
// writes (MariaDB more than most once a move's triggers take their
// locks): the transaction was rolled back whole, so running it again is
// safe. Other errors are returned at once.
type RetryStore struct {
	Store
	// Retryable says whether an error is worth another attempt (default
	// dialect.IsRetryable).
	Retryable func(error) bool
	// Attempts is how many times an operation runs at most (default 4).
	Attempts int
}

func (s RetryStore) retry(ctx context.Context, fn func() error) error {
	attempts := s.Attempts
	if attempts <= 0 {
		attempts = 4
	}
	retryable := s.Retryable
	if retryable == nil {
		retryable = dialect.IsRetryable
	}
	wait := 5 * time.Millisecond
	for i := 1; ; i++ {
		err := fn()
		if err == nil || i == attempts || !retryable(err) {
			return err
		}
		// Jittered, so two writers that deadlocked do not meet again.
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait/2 + rand.N(wait)):
		}
		wait *= 2
	}
}

func (s RetryStore) Get(ctx context.Context, id string) (it *pb.Item, err error) {
	err = s.retry(ctx, func() error { it, err = s.Store.Get(ctx, id); return err })
	return it, err
}

func (s RetryStore) Put(ctx context.Context, item *pb.Item, createOnly bool) error {
	return s.retry(ctx, func() error { return s.Store.Put(ctx, item, createOnly) })
}

func (s RetryStore) Rename(ctx context.Context, id, name string) (it *pb.Item, err error) {
	err = s.retry(ctx, func() error { it, err = s.Store.Rename(ctx, id, name); return err })
	return it, err
}
