package demo

import (
	"sync"
	"time"

	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/history"
)

// A ghost write is a write the server applied after its caller had been
// told it failed: the caller retried or gave up, and its old request then
// landed anyway, perhaps over a newer value. It is found from two records:
// the load keeps when each caller saw its write fail, and every instance's
// store keeps when each write began to commit (inventory.WithApplied). Each
// attempt writes a value of its own (the key's next sequence number), so
// the two records name the same request.

// failedWrite is a write attempt whose caller saw it fail.
type failedWrite struct {
	how          string // PutItem or store put
	qty          int64  // the attempt's sequence number
	sent, failed time.Time
	err          string
	outcome      history.Outcome
}

// appliedKey names one write: its table, item and sequence number.
type appliedKey struct {
	table, id string
	qty       int64
}

// applied is what the stores committed, and when each commit began.
type applied struct {
	mu sync.Mutex
	at map[appliedKey]time.Time
}

// recorder returns the inventory.WithApplied callback of table's stores.
func (a *applied) recorder(table string) func(*pb.Item, time.Time) {
	return func(it *pb.Item, at time.Time) {
		k := appliedKey{table: table, id: it.GetId(), qty: valueOf(it).qty}
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.at == nil {
			a.at = map[appliedKey]time.Time{}
		}
		if prev, ok := a.at[k]; !ok || at.After(prev) {
			a.at[k] = at
		}
	}
}

func (a *applied) when(k appliedKey) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.at[k]
	return t, ok
}

// ghostCheck counts the writes whose callers saw them fail, and the ghosts
// among them, reporting each ghost: which request, when it was sent, when
// its caller saw it fail and when the server began to commit it.
func (r *run) ghostCheck(s *Summary) {
	for _, k := range r.keys {
		for _, f := range k.failed {
			s.FailedWrites++
			at, ok := r.applied.when(appliedKey{table: k.table, id: k.id, qty: f.qty})
			if !ok || !at.After(f.failed) {
				continue
			}
			s.GhostWrites++
			r.problem("ghost write: %s %s quantity %d, sent at %.3fs, failed for its caller at %.3fs (%s), was applied by the server at %.3fs, %s after its caller gave up",
				f.how, k.key(), f.qty, r.tl.at(f.sent).Seconds(), r.tl.at(f.failed).Seconds(), f.err, r.tl.at(at).Seconds(), at.Sub(f.failed).Round(time.Millisecond))
		}
	}
}
